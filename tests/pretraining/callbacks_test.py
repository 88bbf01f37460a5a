import math

import numpy as np
import pytest

from keras_pass.pretraining.callbacks import (
    LearningRateWarmupCosine,
    WeightDecayScheduler,
    cosine_schedule,
    pass_schedules,
)
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
    ours = [cosine_schedule(i, 35, 2e-3, 1e-6, warmup_epochs * 7) for i in range(35)]
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    assert cosine_schedule(99, 35, 2e-3, 1e-6) == pytest.approx(1e-6)  # clamped


def test_release_defaults():
    lr, wd, momentum, temp, freeze = pass_schedules(epochs=100, steps_per_epoch=10, batch_size=1024)
    assert lr.value(100) == pytest.approx(5e-4 * 1024 / 256)  # end of 10 warm-up epochs
    assert lr.value(0) == 0.0 and lr.value(999) < 1e-5
    assert wd.value(0) == pytest.approx(0.04) and wd.value(500) == pytest.approx(0.22)
    assert momentum.value(0) == pytest.approx(0.996) and momentum.value(999) > 0.99999
    assert temp.value(0) == temp.value(999) == 0.04
    assert freeze.value(9) == 1.0 and freeze.value(10) == 0.0


def test_callbacks_follow_the_iteration_counter_across_fits():
    model = tiny_pretrainer()
    model.compile()
    callbacks = [LearningRateWarmupCosine(total_steps=6, warmup_steps=2, batch_size=256, base_lr=1e-3),
                 WeightDecayScheduler(total_steps=6)]
    dataset = repeated_dataset(tiny_crops(), 4)
    model.fit(dataset, steps_per_epoch=2, epochs=1, callbacks=callbacks, verbose=0)
    history = model.fit(dataset, steps_per_epoch=2, epochs=1, callbacks=callbacks, verbose=0)
    # The last step ran at iteration 3 (a second fit continues the counter).
    assert int(to_numpy(model.optimizer.iterations)) == 4
    expected_lr = 1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + math.cos(math.pi * (3 - 2) / (6 - 2)))
    np.testing.assert_allclose(float(to_numpy(model.optimizer.learning_rate)), expected_lr, rtol=1e-5)
    np.testing.assert_allclose(history.history["lr"][-1], expected_lr, rtol=1e-5)
    expected_wd = 0.4 + 0.5 * (0.04 - 0.4) * (1 + math.cos(math.pi * 3 / 6))
    np.testing.assert_allclose(float(to_numpy(model.optimizer.weight_decay_value)), expected_wd, rtol=1e-5)
