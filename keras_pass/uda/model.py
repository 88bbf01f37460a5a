"""`ClusterContrastModel`: PASS backbone -> BN neck(s) -> cluster memory.

As the release's cluster-contrast ViT: the feature is the BN-necked fused
feature (`after` of `ReIDModel`: one BN on concat(CLS, mean PART) for USL,
one BN per token for UDA's multi-neck), L2-normalised, both for clustering /
testing and as the input of the memory loss. There is no classifier; the
memory (`ClusterMemory`) plays its role and is updated inside the train
step (`compute_loss`), which works unchanged in JAX's stateless step and
TensorFlow's (`tf.distribute` included: see `keras_pass.uda.memory`).
"""

import keras

from keras_pass.backend.distribution import scale_loss_for_replicas
from keras_pass.reid.model import ReIDModel
from keras_pass.uda.memory import ClusterMemory, l2_normalize


@keras.saving.register_keras_serializable(package="keras_pass")
class ClusterContrastModel(keras.Model):
    """Unsupervised / domain-adaptive ReID model trained with cluster contrast.

    Args:
        backbone: a `PASSBackbone` at the training size.
        capacity: the most clusters the memory holds (the number of train
            images always suffices).
        feature_fusion: "cat" (Market targets) or "mean" (MSMT targets), or
            "cls_only" / "parts_only".
        multi_neck: one BN per token (UDA) or one BN on the fused feature (USL).
        temperature, momentum: the memory's (0.05, 0.2).
    """

    def __init__(self, backbone, capacity, feature_fusion="cat", multi_neck=False,
                 temperature=0.05, momentum=0.2, **kwargs):
        super().__init__(**kwargs)
        # ReIDModel provides the necks and fusion; its 1-way classifier is unused.
        self.encoder = ReIDModel(backbone, 1, feature_fusion=feature_fusion,
                                 multi_neck=multi_neck, test_feature="after", name="encoder")
        self.encoder.classifier.trainable = False
        self.memory = ClusterMemory(self.encoder.feature_dim, capacity, temperature, momentum,
                                    name="memory")
        self.build(None)

    def build(self, input_shape=None):
        self.built = True

    @property
    def backbone(self):
        return self.encoder.backbone

    @property
    def feature_dim(self):
        return self.encoder.feature_dim

    def call(self, images, training=False):
        _, after = self.encoder.features(images, training=training)
        return l2_normalize(after)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.memory.loss_and_update(y_pred, y, update=training)
        return scale_loss_for_replicas(loss)

    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "capacity": self.memory.capacity,
            "feature_fusion": self.encoder.feature_fusion,
            "multi_neck": self.encoder.multi_neck,
            "temperature": self.memory.temperature,
            "momentum": self.memory.momentum,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)
