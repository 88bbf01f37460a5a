import keras
import numpy as np
import pytest

from keras_pass.pretraining import ScheduledAdamW
from tests.helpers import to_numpy

LR, WD, EPS = 1e-3, 0.04, 1e-7


def _keras_run(grads, frozen_steps):
    """ScheduledAdamW on a frozen and a free variable with the same gradients."""
    initial = np.linspace(-1.0, 1.0, 15, dtype="float32").reshape(5, 3)
    frozen, free = keras.Variable(initial, name="frozen"), keras.Variable(initial, name="free")
    optimizer = ScheduledAdamW(learning_rate=LR, weight_decay=WD, epsilon=EPS)
    optimizer.build([frozen, free])
    optimizer.freeze([frozen], frozen_steps)
    history = []
    for grad in grads:
        optimizer.apply([grad, grad], [frozen, free])
        history.append((to_numpy(frozen).copy(), to_numpy(free).copy()))
    return initial, history


def test_frozen_variable_matches_torch_adamw_with_grad_none():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(5, 3)).astype("float32") for _ in range(7)]
    initial, history = _keras_run(grads, frozen_steps=3)
    params = [torch.nn.Parameter(torch.tensor(initial)) for _ in range(2)]
    reference = torch.optim.AdamW(params, lr=LR, weight_decay=WD, eps=EPS)
    for step, grad in enumerate(grads):
        params[0].grad = None if step < 3 else torch.tensor(grad)  # the release's frozen last layer
        params[1].grad = torch.tensor(grad)
        reference.step()
        for ours, theirs in zip(history[step], params):
            # atol: Keras adds epsilon after the bias correction, PyTorch before it.
            np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-5, atol=1e-3 * LR)
    np.testing.assert_array_equal(history[2][0], initial)  # no decay either while frozen


@pytest.mark.parametrize("frozen_steps", [20, 200])
def test_first_unfrozen_step_moves_by_lr_as_adams_closed_form(frozen_steps):
    # Adam's first step moves each element by lr * |g| / (|g| + eps / sqrt(1 - beta_2)) (Keras'
    # epsilon, added after the bias correction), after the decay by lr * wd * w.
    rng = np.random.default_rng(1)
    grads = [rng.normal(size=(5, 3)).astype("float32") for _ in range(frozen_steps + 1)]
    initial, history = _keras_run(grads, frozen_steps)
    np.testing.assert_array_equal(history[frozen_steps - 1][0], initial)
    before = initial * (1 - LR * WD)
    moved = np.abs(history[frozen_steps][0] - before)
    g = np.abs(grads[frozen_steps])
    np.testing.assert_allclose(moved, LR * g / (g + EPS / np.sqrt(1 - 0.999)), rtol=1e-4)
