"""Fine-tuning losses as formulas in keras.ops (every backend).

- identity loss: softmax cross-entropy over train ids, optionally with
  label smoothing `y = (1 - eps) * onehot + eps / num_classes`;
- batch-hard triplet loss (Hermans et al. 2017) on un-normalised Euclidean
  distances: for each anchor, the farthest positive d_ap and the closest
  negative d_an; soft margin `log(1 + exp(d_ap - d_an))` (PASS's setting)
  or hinge `max(0, d_ap - d_an + margin)`.
"""

import keras
from keras import ops


def cross_entropy(labels, logits, label_smoothing=0.0):
    """Mean cross-entropy of integer `labels` (B,) and `logits` (B, C)."""
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    targets = ops.one_hot(ops.cast(ops.reshape(labels, (-1,)), "int32"), ops.shape(logits)[-1])
    if label_smoothing:
        num_classes = ops.cast(ops.shape(logits)[-1], "float32")
        targets = (1.0 - label_smoothing) * targets + label_smoothing / num_classes
    return ops.mean(-ops.sum(targets * log_probs, axis=-1))


def euclidean_distances(features):
    """(B, B) Euclidean distances, clamped at 1e-12 before the square root
    as the reference does (keeps the gradient finite on the diagonal)."""
    squares = ops.sum(ops.square(features), axis=-1)
    distances = squares[:, None] + squares[None, :] - 2.0 * ops.matmul(features, ops.transpose(features))
    return ops.sqrt(ops.maximum(distances, 1e-12))


def hardest_pairs(distances, labels):
    """Per anchor: the largest positive and the smallest negative distance.

    The anchor counts as its own positive (distance ~1e-6, as in the
    reference), so a lone identity gets d_ap ~ 0; an anchor without any
    negative in the batch gets the batch's largest distance as d_an.
    """
    labels = ops.reshape(labels, (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    largest = ops.max(distances)
    hardest_positive = ops.max(ops.where(same, distances, 0.0), axis=1)
    hardest_negative = ops.min(ops.where(same, largest, distances), axis=1)
    return hardest_positive, hardest_negative


def batch_hard_triplet_loss(labels, features, margin=None):
    """Mean batch-hard triplet loss; `margin=None` is the soft margin."""
    features = ops.cast(features, "float32")
    positive, negative = hardest_pairs(euclidean_distances(features), labels)
    if margin is None:
        return ops.mean(ops.softplus(positive - negative))
    return ops.mean(ops.relu(positive - negative + margin))


@keras.saving.register_keras_serializable(package="keras_pass")
class ReIDLoss:
    """`id_weight * CE(logits) + triplet_weight * triplet(features)`.

    Returns the total and the two terms (for logging).
    """

    def __init__(self, id_loss_weight=1.0, triplet_loss_weight=1.0, label_smoothing=0.0,
                 triplet_margin=None):
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"Expected 0 <= label_smoothing < 1. Received: label_smoothing={label_smoothing}"
            )
        if triplet_margin is not None and triplet_margin < 0:
            raise ValueError(
                f"Expected triplet_margin None (soft margin) or >= 0. Received: {triplet_margin}"
            )
        self.id_loss_weight = id_loss_weight
        self.triplet_loss_weight = triplet_loss_weight
        self.label_smoothing = label_smoothing
        self.triplet_margin = triplet_margin

    def __call__(self, labels, logits, features):
        id_loss = cross_entropy(labels, logits, self.label_smoothing)
        triplet_loss = batch_hard_triplet_loss(labels, features, self.triplet_margin)
        total = self.id_loss_weight * id_loss + self.triplet_loss_weight * triplet_loss
        return total, id_loss, triplet_loss

    def get_config(self):
        return {
            "id_loss_weight": self.id_loss_weight,
            "triplet_loss_weight": self.triplet_loss_weight,
            "label_smoothing": self.label_smoothing,
            "triplet_margin": self.triplet_margin,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
