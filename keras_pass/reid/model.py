"""`ReIDModel`: PASS backbone -> fused feature -> BNNeck(s) -> classifier.

As `PASS_transreid` (`build_transformer_pass`): the backbone gives CLS and
the L part tokens; `before` is the fused feature (the triplet loss input and
the default test feature); `after` applies the BatchNorm neck(s), whose
betas are frozen at 0, and feeds a bias-free linear classifier.

    feature_fusion   before                       after (multi_neck)
    "cat"            [cls, mean(parts)]  (2D)     [BN(cls), mean(BN_i(part_i))]
    "mean"           (cls + mean(parts)) / 2      (BN(cls) + mean(BN_i(part_i))) / 2
    "cls_only"       cls                          BN(cls)
    "parts_only"     mean(parts)                  mean(BN_i(part_i))

With `multi_neck=False` a single BN is applied to `before`. Called with
`training=True` the model returns `{"logits", "features"}` for the losses;
otherwise the L2-normalised test feature (`test_feature="before"` as the
official configs, or `"after"`), so `model.predict(images)` gives
retrieval embeddings. BatchNorm: momentum 0.9 and epsilon 1e-5 as
PyTorch's BatchNorm1d; its moving variance uses the biased batch variance
(PyTorch keeps the unbiased one: a 1/(B-1) difference). Under data
parallelism, batch-hard mining and BatchNorm statistics see each replica's
share of the P x K batch (the official runs use one GPU).
"""

import keras
from keras import ops

from keras_pass.backend.distribution import scale_loss_for_replicas
from keras_pass.reid.losses import ReIDLoss

FEATURE_FUSIONS = ("cat", "mean", "cls_only", "parts_only")
TEST_FEATURES = ("before", "after")


def _neck(name, dtype):
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype, name=name)


@keras.saving.register_keras_serializable(package="keras_pass")
class ReIDModel(keras.Model):
    """Supervised ReID fine-tuning model around a `PASSBackbone`.

    Args:
        backbone: a `PASSBackbone` at the fine-tuning size/stride.
        num_classes: number of train identities.
        feature_fusion: "cat" (default), "mean", "cls_only" or "parts_only".
        multi_neck: one BN for CLS and one per part (official default) or a
            single BN on the fused feature.
        test_feature: "before" (official) or "after" the neck.
        id_loss_weight, triplet_loss_weight, label_smoothing, triplet_margin:
            see `ReIDLoss` (defaults: PASS's 1, 1, off, soft margin).
    """

    def __init__(self, backbone, num_classes, feature_fusion="cat", multi_neck=True,
                 test_feature="before", id_loss_weight=1.0, triplet_loss_weight=1.0,
                 label_smoothing=0.0, triplet_margin=None, **kwargs):
        super().__init__(**kwargs)
        if feature_fusion not in FEATURE_FUSIONS:
            raise ValueError(
                f"Expected feature_fusion in {FEATURE_FUSIONS}. Received: feature_fusion={feature_fusion}"
            )
        if test_feature not in TEST_FEATURES:
            raise ValueError(
                f"Expected test_feature in {TEST_FEATURES}. Received: test_feature={test_feature}"
            )
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"Expected num_classes >= 1. Received: num_classes={num_classes}")
        self.backbone = backbone
        self.num_classes = num_classes
        self.feature_fusion = feature_fusion
        self.multi_neck = multi_neck
        self.test_feature = test_feature
        self.reid_loss = ReIDLoss(id_loss_weight, triplet_loss_weight, label_smoothing, triplet_margin)
        if multi_neck:
            # The model's own dtype policy (a mixed-precision model loaded where the
            # global policy is float32 keeps its heads in the policy it was saved with).
            self.cls_neck = _neck("cls_neck", self.dtype_policy)
            self.part_necks = [_neck(f"part_neck_{i}", self.dtype_policy) for i in range(backbone.num_parts)]
        else:
            self.neck = _neck("neck", self.dtype_policy)
        self.classifier = keras.layers.Dense(
            num_classes, use_bias=False, dtype=self.dtype_policy, name="classifier",
            kernel_initializer=keras.initializers.RandomNormal(stddev=0.001),
        )
        self.id_loss_tracker = keras.metrics.Mean(name="id_loss")
        self.triplet_loss_tracker = keras.metrics.Mean(name="triplet_loss")
        # The backbone is built, so the heads can be: fit() callbacks such as
        # BackupAndRestore need a built model before the first batch.
        self.build(None)

    @property
    def feature_dim(self):
        return self.backbone.hidden_dim * (2 if self.feature_fusion == "cat" else 1)

    def build(self, input_shape=None):
        if self.built:
            return
        hidden = self.backbone.hidden_dim
        if self.multi_neck:
            for layer in [self.cls_neck, *self.part_necks]:
                layer.build((None, hidden))
                layer.beta.trainable = False  # bias frozen at 0 (requires_grad False)
        else:
            self.neck.build((None, self.feature_dim))
            self.neck.beta.trainable = False
        self.classifier.build((None, self.feature_dim))
        self.built = True

    @staticmethod
    def _fuse(fusion, cls, parts_mean):
        if fusion == "cat":
            return ops.concatenate([cls, parts_mean], axis=-1)
        if fusion == "mean":
            return (cls + parts_mean) / 2.0
        return cls if fusion == "cls_only" else parts_mean

    def features(self, images, training=False):
        """`(before, after)` fused features of NHWC images."""
        outputs = self.backbone(images, training=training)
        cls, parts = outputs["cls"], outputs["parts"]
        before = self._fuse(self.feature_fusion, cls, ops.mean(parts, axis=1))
        if not self.multi_neck:
            return before, self.neck(before, training=training)
        necked_parts = [neck(parts[:, i], training=training) for i, neck in enumerate(self.part_necks)]
        parts_mean = ops.mean(ops.stack(necked_parts, axis=1), axis=1)
        after = self._fuse(self.feature_fusion, self.cls_neck(cls, training=training), parts_mean)
        return before, after

    def call(self, images, training=False):
        before, after = self.features(images, training=training)
        if training:
            return {"logits": self.classifier(after), "features": before}
        test = before if self.test_feature == "before" else after
        return test / ops.maximum(ops.norm(test, axis=-1, keepdims=True), 1e-12)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total, id_loss, triplet_loss = self.reid_loss(y, y_pred["logits"], y_pred["features"])
        self.id_loss_tracker.update_state(id_loss)
        self.triplet_loss_tracker.update_state(triplet_loss)
        return scale_loss_for_replicas(total)

    @property
    def metrics(self):
        return [*super().metrics, self.id_loss_tracker, self.triplet_loss_tracker]

    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "feature_fusion": self.feature_fusion,
            "multi_neck": self.multi_neck,
            "test_feature": self.test_feature,
            **self.reid_loss.get_config(),
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
