import numpy as np
import pytest

from keras_pass.pretraining.loss import pass_loss, update_centers
from keras_pass.pretraining.loss import collapse_metrics, pass_loss_terms
from tests.helpers import to_numpy


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _reference_loss(teacher_global, student_global, student_local, centers, tau_t, tau_s):
    """The spec's formula written as the release's loops over view lists."""
    num_parts, crops = student_local.shape[:2]
    q = [_softmax((teacher_global[g] - centers) / tau_t) for g in range(2)]  # (B, 1+L, K)
    log_p = lambda logits: np.log(_softmax(logits / tau_s))  # noqa: E731
    # Student view lists: CLS of every view; PART_i of the globals + region-i crops.
    cls_views = [student_global[g][:, 0] for g in range(2)] + [
        student_local[i, j][:, 0] for i in range(num_parts) for j in range(crops)
    ]
    part_views = [
        [student_global[g][:, 1 + i] for g in range(2)] + [student_local[i, j][:, 1] for j in range(crops)]
        for i in range(num_parts)
    ]
    total, terms = 0.0, 0
    for token, views in [(0, cls_views)] + [(1 + i, part_views[i]) for i in range(num_parts)]:
        for g in range(2):
            for v, student in enumerate(views):
                if v == g:
                    continue
                total += np.mean(np.sum(-q[g][:, token] * log_p(student), axis=-1))
                terms += 1
    return total / terms, terms


@pytest.mark.parametrize("num_parts,crops", [(3, 3), (2, 1)])
def test_loss_matches_numpy_transcription_of_the_spec(num_parts, crops):
    rng = np.random.default_rng(0)
    batch, k = 4, 11
    teacher_global = rng.normal(size=(2, batch, 1 + num_parts, k)).astype("float32")
    student_global = rng.normal(size=(2, batch, 1 + num_parts, k)).astype("float32")
    student_local = rng.normal(size=(num_parts, crops, batch, 2, k)).astype("float32")
    centers = rng.normal(scale=0.3, size=(1 + num_parts, k)).astype("float32")
    expected, terms = _reference_loss(teacher_global, student_global, student_local, centers, 0.04, 0.1)
    ours = to_numpy(pass_loss(teacher_global, student_global, student_local, centers, 0.04))
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)
    _, cls_count, _, part_count = pass_loss_terms(
        teacher_global, student_global, student_local, centers, 0.04
    )
    assert cls_count + part_count == terms
    if num_parts == 3 and crops == 3:
        assert terms == 44  # 2*10 CLS + 3 parts * 2 * 4, as in the release


def test_center_update_matches_numpy():
    rng = np.random.default_rng(1)
    teacher_global = rng.normal(size=(2, 5, 4, 9)).astype("float32")
    centers = rng.normal(size=(4, 9)).astype("float32")
    expected = 0.9 * centers + 0.1 * teacher_global.reshape(10, 4, 9).mean(0)
    np.testing.assert_allclose(to_numpy(update_centers(centers, teacher_global)), expected, atol=1e-6)


def test_collapse_metrics():
    k = 16
    uniform = np.zeros((2, 3, 4, k), "float32")
    entropy, kl = (float(to_numpy(x)) for x in collapse_metrics(uniform, np.zeros((4, k), "float32"), 0.04))
    np.testing.assert_allclose(entropy, np.log(k), rtol=1e-5)
    np.testing.assert_allclose(kl, 0.0, atol=1e-5)
    peaked = uniform.copy()
    peaked[..., 0] = 10.0
    entropy, kl = (float(to_numpy(x)) for x in collapse_metrics(peaked, np.zeros((4, k), "float32"), 0.04))
    assert entropy < 1e-3 and kl > 0.9 * np.log(k)


def _reference_dino_loss(teacher_cls, student_views, center, tau_t, tau_s):
    """DINO's `DINOLoss.forward` as its loops: teacher chunk iq against every
    student chunk v != iq, each a batch-mean cross-entropy, one flat mean."""
    total, terms = 0.0, 0
    for iq in range(2):
        q = _softmax((teacher_cls[iq] - center) / tau_t)
        for v, student in enumerate(student_views):
            if v == iq:
                continue
            total += np.mean(np.sum(-q * np.log(_softmax(student / tau_s)), axis=-1))
            terms += 1
    return total / terms, terms


@pytest.mark.parametrize("num_local", [9, 1])
def test_dino_loss_matches_the_release_loops(num_local):
    from keras_pass.pretraining.loss import dino_loss_terms

    rng = np.random.default_rng(3)
    batch, k = 5, 13
    teacher_cls = rng.normal(size=(2, batch, k)).astype("float32")
    student_global = rng.normal(size=(2, batch, k)).astype("float32")
    student_local = rng.normal(size=(num_local, batch, k)).astype("float32")
    center = rng.normal(scale=0.3, size=(1, k)).astype("float32")
    views = list(student_global) + list(student_local)
    expected, terms = _reference_dino_loss(teacher_cls, views, center, 0.04, 0.1)
    loss_sum, count = dino_loss_terms(teacher_cls, student_global, student_local, center, 0.04, 0.1)
    assert count == terms == 2 * (2 + num_local) - 2
    np.testing.assert_allclose(to_numpy(loss_sum) / count, expected, rtol=1e-5, atol=1e-5)
