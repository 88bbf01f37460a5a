import math

import keras
import numpy as np
import pytest

from keras_pass.reid.optimizers import L2Adam, ReIDSGD, WarmupCosineSchedule, make_optimizer
from tests.helpers import to_numpy


def timm_epoch_lr(t, peak, warmup_t, warmup_init, lr_min, total):
    """timm CosineLRScheduler._get_lr, one group, t_mul=1, one cycle."""
    if t < warmup_t:
        return warmup_init + t * (peak - warmup_init) / warmup_t
    return lr_min + 0.5 * (peak - lr_min) * (1 + math.cos(math.pi * t / total))


class TestSchedule:
    def test_official_recipe_values_per_step(self):
        optimizer = make_optimizer(steps_per_epoch=3, epochs=120)
        for step in [0, 2, 3, 30, 59, 60, 61, 200, 359]:
            epoch = step // 3
            for schedule, peak in [(optimizer._learning_rate, 4e-4),
                                   (optimizer.bias_learning_rate, 8e-4)]:
                expected = timm_epoch_lr(epoch, peak, 20, 4e-6, 8e-7, 120)
                np.testing.assert_allclose(to_numpy(schedule(step)), expected, rtol=1e-5)

    def test_config_round_trip_and_checks(self):
        schedule = WarmupCosineSchedule(1.0, 10, 4, 2, 0.1, 0.01)
        clone = WarmupCosineSchedule.from_config(schedule.get_config())
        np.testing.assert_allclose(to_numpy(clone(13)), to_numpy(schedule(13)))
        with pytest.raises(ValueError, match="warmup_epochs"):
            WarmupCosineSchedule(1.0, 10, 4, warmup_epochs=11)
        with pytest.raises(ValueError, match="steps_per_epoch"):
            WarmupCosineSchedule(1.0, 10, 0)


class TestReIDSGD:
    def test_matches_pytorch_sgd_with_bias_group(self):
        rng = np.random.default_rng(0)
        kernel = keras.Variable(rng.normal(size=(3, 2)).astype("float32"), name="kernel")
        bias = keras.Variable(rng.normal(size=(2,)).astype("float32"), name="bias")
        beta = keras.Variable(rng.normal(size=(2,)).astype("float32"), name="beta")
        weights_lr = WarmupCosineSchedule(0.1, 4, 2, 1, 0.01, 0.001)
        bias_lr = WarmupCosineSchedule(0.2, 4, 2, 1, 0.01, 0.001)
        optimizer = ReIDSGD(weights_lr, bias_lr, momentum=0.9, weight_decay=0.05)
        variables = [kernel, bias, beta]
        reference = [to_numpy(v).astype(np.float64) for v in variables]
        buffers = [np.zeros_like(r) for r in reference]
        for step in range(6):
            grads = [rng.normal(size=r.shape) for r in reference]
            optimizer.apply([g.astype("float32") for g in grads], variables)
            for i, g in enumerate(grads):  # torch.optim.SGD, dampening 0
                lr = to_numpy((weights_lr if i == 0 else bias_lr)(step))
                buffers[i] = 0.9 * buffers[i] + g + 0.05 * reference[i]
                reference[i] = reference[i] - lr * buffers[i]
        for variable, expected in zip(variables, reference):
            np.testing.assert_allclose(to_numpy(variable), expected, rtol=1e-5, atol=1e-6)

    def test_config_round_trip(self):
        optimizer = make_optimizer(steps_per_epoch=5, epochs=10)
        clone = ReIDSGD.from_config(optimizer.get_config())
        assert clone.get_config() == optimizer.get_config()
        np.testing.assert_allclose(to_numpy(clone.bias_learning_rate(50)),
                                   to_numpy(optimizer.bias_learning_rate(50)))


class TestL2Adam:
    def test_matches_pytorch_adam_with_coupled_weight_decay(self):
        torch = pytest.importorskip("torch")
        rng = np.random.default_rng(0)
        initial = rng.normal(size=(3, 2)).astype("float32")
        variable = keras.Variable(initial, name="kernel")
        optimizer = L2Adam(learning_rate=0.1, weight_decay=0.05)
        reference = torch.nn.Parameter(torch.tensor(initial))
        torch_optimizer = torch.optim.Adam([reference], lr=0.1, weight_decay=0.05)
        for _ in range(5):
            grad = rng.normal(size=initial.shape).astype("float32")
            optimizer.apply([grad], [variable])
            reference.grad = torch.tensor(grad)
            torch_optimizer.step()
        # atol: Keras adds epsilon to sqrt(v) before the bias correction, torch after
        np.testing.assert_allclose(to_numpy(variable), reference.detach().numpy(), atol=2e-5)

    def test_config_round_trip_keeps_the_coupled_decay(self):
        clone = L2Adam.from_config(L2Adam(learning_rate=0.01, weight_decay=5e-4).get_config())
        assert clone.l2_weight_decay == 5e-4 and clone.weight_decay is None
        with pytest.raises(ValueError, match="weight_decay"):
            L2Adam(weight_decay=-1.0)
