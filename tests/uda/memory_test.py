import keras
import numpy as np
import pytest

from keras_pass.uda.memory import ClusterMemory, hard_update


def normalized(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def reference_hard_update(memory, features, labels, momentum):
    memory = memory.copy()
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        hardest = members[np.argmin(features[members] @ memory[c])]
        moved = momentum * memory[c] + (1 - momentum) * features[hardest]
        memory[c] = moved / np.linalg.norm(moved)
    return memory


def batch(seed=0, clusters=6, size=12, dim=8):
    rng = np.random.default_rng(seed)
    memory = normalized(rng.normal(size=(clusters, dim)))
    labels = rng.choice([0, 2, 3, 5], size=size)  # clusters 1 and 4 absent
    features = normalized(memory[labels] + 0.8 * rng.normal(size=(size, dim)))
    return memory, features, labels


def test_hard_update_matches_the_rule():
    memory, features, labels = batch()
    expected = reference_hard_update(memory, features, labels, 0.2)
    actual = keras.ops.convert_to_numpy(hard_update(memory, features, labels, 0.2))
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    np.testing.assert_array_equal(actual[[1, 4]], memory[[1, 4]])  # absent: unchanged
    assert not np.allclose(actual[[0, 2, 3, 5]], memory[[0, 2, 3, 5]])


def test_reset_pads_and_logits_mask_unused_rows():
    memory = ClusterMemory(4, capacity=5, temperature=0.5)
    memory.reset(np.array([[2, 0, 0, 0], [0, 3, 0, 0]], np.float32))
    logits = keras.ops.convert_to_numpy(memory.logits(np.array([[1, 1, 0, 0]], np.float32)))
    np.testing.assert_allclose(logits[0, :2], [2 ** -0.5 / 0.5] * 2, rtol=1e-6)
    assert (logits[0, 2:] < -1e8).all()
    with pytest.raises(ValueError, match="capacity"):
        memory.reset(np.eye(6, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="shape"):
        memory.reset(np.eye(2, 3, dtype=np.float32))


def test_loss_is_cross_entropy_on_the_old_memory_then_memory_updates():
    centroids, features, labels = batch(seed=1)
    memory = ClusterMemory(8, capacity=9, temperature=0.05, momentum=0.2)
    memory.reset(centroids)
    loss = float(keras.ops.convert_to_numpy(memory.loss_and_update(features, labels)))
    logits = features @ centroids.T / 0.05
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    np.testing.assert_allclose(loss, -log_probs[np.arange(len(labels)), labels].mean(), rtol=1e-5)
    updated = keras.ops.convert_to_numpy(memory.centroids)
    expected = reference_hard_update(centroids, features, labels, 0.2)
    np.testing.assert_allclose(updated[:6], expected, atol=1e-6)
    np.testing.assert_array_equal(updated[6:], 0)


@pytest.mark.slow
def test_two_device_data_parallel_updates_the_memory_as_one_device(tmp_path):
    """Two simulated devices need a fresh process (set up before the backend
    starts); the one-device run is this process's, meanwhile."""
    from tests.state_files import finish_fresh, start_fresh
    from tests.uda.tiny_memory_run import run

    two = start_fresh("tests.uda.tiny_memory_run", (tmp_path / "two.npz", "--devices", 2))
    run(tmp_path / "one.npz")
    finish_fresh(two)
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    for key in ("memory", "kernel"):
        np.testing.assert_allclose(two[key], one[key], atol=1e-5, err_msg=key)
