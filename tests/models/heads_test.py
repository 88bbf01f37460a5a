import numpy as np

from keras_pass.models.heads import DINOHead
from tests.helpers import to_numpy


class TestDINOHead:
    def setup_method(self):
        self.init_kwargs = dict(out_dim=10, hidden_dim=12, bottleneck_dim=6)
        self.x = np.random.default_rng(0).normal(size=(3, 8)).astype("float32")

    def test_output_and_config_round_trip(self):
        head = DINOHead(**self.init_kwargs)
        out = to_numpy(head(self.x))
        assert out.shape == (3, 10)
        clone = DINOHead.from_config(head.get_config())
        clone(self.x)
        clone.set_weights(head.get_weights())
        np.testing.assert_allclose(to_numpy(clone(self.x)), out, atol=1e-6)

    def test_logits_are_cosines_of_normalised_prototypes(self):
        head = DINOHead(**self.init_kwargs)
        out = to_numpy(head(self.x))
        h = self.x
        for i, dense in enumerate(head.mlp):
            h = h @ to_numpy(dense.kernel) + to_numpy(dense.bias)
            if i < 2:
                h = 0.5 * h * (1 + np.vectorize(__import__("math").erf)(h / np.sqrt(2)))
        h = h / np.linalg.norm(h, axis=-1, keepdims=True)
        v = to_numpy(head.last_layer)
        np.testing.assert_allclose(out, h @ (v / np.linalg.norm(v, axis=0)), atol=1e-5)
        assert np.abs(out).max() <= 1.0 + 1e-5
        head.last_layer.assign(v * np.linspace(0.5, 3.0, 10))  # per-prototype gains
        np.testing.assert_allclose(to_numpy(head(self.x)), out, atol=1e-5)
