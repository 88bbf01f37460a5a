import math

import numpy as np
import pytest

from keras_pass.pretraining import cosine_schedule, pass_schedules
from tests.helpers import repeated_dataset, tiny_crops, tiny_pretrainer, to_numpy


def _dino_cosine_scheduler(base, final, epochs, niter, warmup_epochs=0, start_warmup=0.0):
    """DINO's utils.cosine_scheduler, transcribed from its definition."""
    warmup = np.linspace(start_warmup, base, warmup_epochs * niter) if warmup_epochs else np.array([])
    iters = np.arange(epochs * niter - warmup_epochs * niter)
    decay = final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((warmup, decay))


@pytest.mark.parametrize("warmup_epochs", [0, 2])
def test_cosine_schedule_matches_dino(warmup_epochs):
    expected = _dino_cosine_scheduler(2e-3, 1e-6, 5, 7, warmup_epochs)
    np.testing.assert_array_equal(cosine_schedule(2e-3, 1e-6, 35, warmup_epochs * 7), expected)


def test_release_defaults():
    schedules = pass_schedules(epochs=100, steps_per_epoch=10, batch_size=1024)
    assert schedules.lr[100] == pytest.approx(5e-4 * 1024 / 256)  # end of 10 warm-up epochs
    assert schedules.lr[0] == 0.0 and schedules.lr[999] < 1e-5
    assert schedules.weight_decay[0] == pytest.approx(0.04) and schedules.weight_decay[500] == pytest.approx(0.22)
    assert schedules.teacher_momentum[0] == pytest.approx(0.996) and schedules.teacher_momentum[999] > 0.99999
    assert np.all(schedules.teacher_temp == 0.04) and len(schedules.teacher_temp) == 1000
    assert schedules.freeze_last_layer_steps == 10
    values = {k: float(to_numpy(v)) for k, v in schedules.at(5000).items()}  # past the end: the last values
    assert values["lr"] == pytest.approx(schedules.lr[-1], rel=1e-6)
    assert values["weight_decay"] == pytest.approx(schedules.weight_decay[-1], rel=1e-6)


def test_teacher_temperature_warms_up_per_epoch_as_the_release():
    # The release: np.linspace(warmup, temp, warmup_epochs) per epoch, then temp.
    schedules = pass_schedules(epochs=4, steps_per_epoch=3, batch_size=256, warmup_teacher_temp=0.02,
                               teacher_temp=0.05, warmup_teacher_temp_epochs=2)
    per_epoch = [0.02, 0.05, 0.05, 0.05]
    np.testing.assert_allclose(schedules.teacher_temp, np.repeat(per_epoch, 3))


def test_values_follow_the_iteration_counter_inside_the_step_across_fits():
    model = tiny_pretrainer()
    schedules = pass_schedules(epochs=3, steps_per_epoch=2, batch_size=256, base_lr=1e-3, warmup_epochs=1,
                               teacher_momentum=(0.5, 1.0), freeze_last_layer_epochs=0)
    model.compile(schedules=schedules)
    dataset = repeated_dataset(tiny_crops(), 4)
    model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    history = model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0)
    # The last step ran at iteration 3 (a second fit continues the counter).
    assert int(to_numpy(model.optimizer.iterations)) == 4
    cosine = 0.5 * (1 + math.cos(math.pi * (3 - 2) / (6 - 2)))
    expected = {"lr": 1e-6 + (1e-3 - 1e-6) * cosine,
                "weight_decay": 0.4 + 0.5 * (0.04 - 0.4) * (1 + math.cos(math.pi * 3 / 6)),
                "teacher_momentum": 1.0 + 0.5 * (0.5 - 1.0) * (1 + math.cos(math.pi * 3 / 6)),
                "teacher_temp": 0.04}
    for name, value in expected.items():
        np.testing.assert_allclose(history.history[name][-1], value, rtol=1e-6)
    np.testing.assert_allclose(float(to_numpy(model.optimizer.learning_rate)), expected["lr"], rtol=1e-6)
    np.testing.assert_allclose(float(to_numpy(model.optimizer.weight_decay_value)), expected["weight_decay"],
                               rtol=1e-6)
    np.testing.assert_allclose(float(to_numpy(model.teacher_momentum)), expected["teacher_momentum"], rtol=1e-6)


def test_steps_per_execution_ends_with_the_weights_of_single_steps():
    import keras

    weights = []
    for steps_per_execution in (1, 4):
        keras.utils.set_random_seed(0)
        model = tiny_pretrainer()
        initial = [to_numpy(v) for v in model.weights]
        model.compile(schedules=pass_schedules(epochs=2, steps_per_epoch=4, batch_size=4, warmup_epochs=1),
                      steps_per_execution=steps_per_execution)
        model.fit(repeated_dataset(tiny_crops(batch=8), 4), steps_per_epoch=4, epochs=2, verbose=0)
        weights.append([to_numpy(v) for v in model.weights])
        assert int(to_numpy(model.optimizer.iterations)) == 8
    last_layer = [i for i, v in enumerate(model.weights) if v.path.endswith("last_layer")]
    assert last_layer and all(not np.allclose(weights[1][i], initial[i]) for i in last_layer)
    for single, grouped in zip(*weights):
        np.testing.assert_allclose(grouped, single, rtol=1e-5, atol=1e-6)
