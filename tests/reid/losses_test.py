import numpy as np
import pytest

from keras_pass.reid.losses import ReIDLoss, batch_hard_triplet_loss, cross_entropy
from tests.helpers import to_numpy


def numpy_cross_entropy(labels, logits, eps):
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    targets = np.eye(logits.shape[1])[labels] * (1 - eps) + eps / logits.shape[1]
    return -(targets * log_probs).sum(1).mean()


def loop_triplet(labels, features, margin):
    losses = []
    for i in range(len(labels)):
        dist = [max(np.sqrt(((features[i] - f) ** 2).sum()), 1e-6) for f in features]
        positive = max(d for d, l in zip(dist, labels) if l == labels[i])
        negative = min(d for d, l in zip(dist, labels) if l != labels[i])
        gap = positive - negative
        losses.append(np.log1p(np.exp(gap)) if margin is None else max(0.0, gap + margin))
    return np.mean(losses)


class TestLosses:
    def setup_method(self):
        rng = np.random.default_rng(0)
        self.labels = np.repeat([3, 1, 4, 0], 4)
        self.features = rng.normal(size=(16, 6)).astype("float32")
        self.logits = rng.normal(size=(16, 5)).astype("float32")

    @pytest.mark.parametrize("eps", [0.0, 0.1])
    def test_cross_entropy(self, eps):
        expected = numpy_cross_entropy(self.labels, self.logits, eps)
        np.testing.assert_allclose(to_numpy(cross_entropy(self.labels, self.logits, eps)),
                                   expected, rtol=1e-5)

    @pytest.mark.parametrize("margin", [None, 0.3])
    def test_batch_hard_triplet(self, margin):
        expected = loop_triplet(self.labels, self.features, margin)
        actual = batch_hard_triplet_loss(self.labels, self.features, margin)
        np.testing.assert_allclose(to_numpy(actual), expected, rtol=1e-5)

    def test_weighted_total(self):
        loss = ReIDLoss(id_loss_weight=0.5, triplet_loss_weight=2.0, label_smoothing=0.1)
        total, id_loss, triplet = (to_numpy(x) for x in loss(self.labels, self.logits, self.features))
        np.testing.assert_allclose(id_loss, numpy_cross_entropy(self.labels, self.logits, 0.1), rtol=1e-5)
        np.testing.assert_allclose(triplet, loop_triplet(self.labels, self.features, None), rtol=1e-5)
        np.testing.assert_allclose(total, 0.5 * id_loss + 2.0 * triplet, rtol=1e-6)
        assert ReIDLoss.from_config(loss.get_config()).get_config() == loss.get_config()

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="label_smoothing"):
            ReIDLoss(label_smoothing=1.0)
        with pytest.raises(ValueError, match="triplet_margin"):
            ReIDLoss(triplet_margin=-0.1)
