import colorsys
import math

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pass.pretraining import augment
from tests.helpers import once_under_tensorflow

# `keras_pass.pretraining.augment` is stateless tf ops in tf.data, no Keras op: the backend cannot
# change what is checked here.
pytestmark = once_under_tensorflow


def _seed(value):
    return tf.constant([value, 0], tf.int64)


def torchvision_crop_params(rng, height, width, scale, ratio):
    """Plain transcription of torchvision's RandomResizedCrop.get_params."""
    area = height * width
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(*log_ratio))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            return rng.integers(0, height - h + 1), rng.integers(0, width - w + 1), h, w, False
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w, True


def numpy_blur(image, sigma, radius=6):
    """Gaussian blur of one (H, W, C) image, edge pixels extended."""
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    out = image.astype(np.float64)
    for axis in (0, 1):
        padded = np.pad(out, [(radius, radius) if a == axis else (0, 0) for a in range(3)], mode="edge")
        size = out.shape[axis]
        out = sum(
            k * np.take(padded, np.arange(i, i + size), axis=axis) for i, k in enumerate(kernel)
        )
    return out


class TestAugment:
    def setup_method(self):
        self.rng = np.random.default_rng(0)
        self.views = self.rng.uniform(size=(6, 12, 10, 3)).astype("float32")

    # ------------------------------------------------------------ geometry --

    @pytest.mark.parametrize(
        "box,size",
        [((3, 2, 17, 9), (8, 4)), ((0, 0, 40, 20), (40, 20)), ((5, 6, 7, 5), (16, 12)), ((10, 0, 30, 20), (9, 11))],
    )
    def test_resized_crop_matches_pil_bicubic(self, box, size):
        image = self.rng.uniform(size=(40, 20, 3)).astype("float32")
        top, left, h, w = box
        expected = np.stack(
            [
                np.asarray(
                    Image.fromarray(image[..., c], mode="F")
                    .crop((left, top, left + w, top + h))
                    .resize((size[1], size[0]), Image.BICUBIC)
                )
                for c in range(3)
            ],
            axis=-1,
        )
        boxes = tf.constant([box, box], tf.int32)
        out = augment.resized_crops(image, boxes, size, tf.constant([False, True])).numpy()
        np.testing.assert_allclose(out[0], np.clip(expected, 0, 1), atol=2e-5)
        np.testing.assert_allclose(out[1], np.clip(expected, 0, 1)[:, ::-1], atol=2e-5)

    @pytest.mark.parametrize(
        "height,width,scale", [(256, 128, (0.4, 1.0)), (128, 128, (0.1, 0.8)), (64, 160, (0.05, 0.4))]
    )
    def test_crop_box_statistics_follow_torchvision(self, height, width, scale):
        ratio = (3 / 4, 4 / 3)
        n = 4000
        boxes = augment.sample_crop_boxes(
            _seed(3), tf.fill([n], height), tf.fill([n], width), scale, ratio
        ).numpy()
        top, left, h, w = boxes.T
        assert np.all((top >= 0) & (left >= 0) & (top + h <= height) & (left + w <= width))
        assert np.all((h > 0) & (w > 0))
        rng = np.random.default_rng(1)
        ref = np.array([torchvision_crop_params(rng, height, width, scale, ratio) for _ in range(n)])
        fallback = tuple(ref[ref[:, 4] == 1][:1, :4].ravel()) or None
        for stat in (
            lambda t, l, h, w: h * w / (height * width),
            lambda t, l, h, w: np.log(w / h),
            lambda t, l, h, w: (t + h / 2) / height,
            lambda t, l, h, w: (l + w / 2) / width,
        ):
            ours, theirs = stat(top, left, h, w), stat(*ref[:, :4].T)
            np.testing.assert_allclose(ours.mean(), theirs.mean(), atol=0.02)
            np.testing.assert_allclose(
                np.quantile(ours, [0.1, 0.5, 0.9]), np.quantile(theirs, [0.1, 0.5, 0.9]), atol=0.04
            )
        if fallback is not None:
            ours_rate = np.mean(np.all(boxes == np.array(fallback), axis=1))
            theirs_rate = np.mean(np.all(ref[:, :4] == np.array(fallback), axis=1))
            assert abs(ours_rate - theirs_rate) < 0.02
        if (height, width) == (256, 128):  # the spec: ~12% of global draws fall back
            assert 0.08 < np.mean(ref[:, 4]) < 0.16

    @pytest.mark.parametrize("height,width,expected", [(100, 10, (43, 0, 13, 10)), (10, 100, (0, 43, 10, 13))])
    def test_crop_box_fallback_is_the_clamped_centre_crop(self, height, width, expected):
        boxes = augment.sample_crop_boxes(
            _seed(0), tf.fill([5], height), tf.fill([5], width), (0.9, 1.0), (3 / 4, 4 / 3)
        ).numpy()
        np.testing.assert_array_equal(boxes, np.tile(expected, (5, 1)))

    def test_crop_boxes_are_deterministic_per_seed(self):
        sample = lambda s: augment.sample_crop_boxes(
            _seed(s), tf.fill([50], 64), tf.fill([50], 32), (0.1, 1.0), (0.5, 2.0)
        ).numpy()
        np.testing.assert_array_equal(sample(1), sample(1))
        assert np.any(sample(1) != sample(2))

    # ---------------------------------------------------------- photometry --

    def test_brightness_contrast_saturation_match_torchvision_formulas(self):
        x = self.views.astype(np.float64)
        f = np.array([0.6, 1.4, 1.0, 0.8, 1.2, 0.0])
        gray = (x * [0.299, 0.587, 0.114]).sum(-1, keepdims=True)
        fv = f[:, None, None, None]
        np.testing.assert_allclose(
            augment.adjust_brightness(self.views, f).numpy(), np.clip(x * fv, 0, 1), atol=1e-6
        )
        mean = gray.mean(axis=(1, 2, 3), keepdims=True)
        np.testing.assert_allclose(
            augment.adjust_contrast(self.views, f).numpy(),
            np.clip(fv * x + (1 - fv) * mean, 0, 1),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            augment.adjust_saturation(self.views, f).numpy(),
            np.clip(fv * x + (1 - fv) * gray, 0, 1),
            atol=1e-6,
        )

    def test_hue_shift_matches_colorsys(self):
        views = self.views[:, :3, :3]
        delta = np.array([-0.1, 0.05, 0.0, 0.1, -0.03, 0.5])
        expected = np.empty_like(views)
        for v in range(views.shape[0]):
            for i in range(3):
                for j in range(3):
                    h, s, val = colorsys.rgb_to_hsv(*views[v, i, j])
                    expected[v, i, j] = colorsys.hsv_to_rgb((h + delta[v]) % 1.0, s, val)
        np.testing.assert_allclose(augment.adjust_hue(views, delta).numpy(), expected, atol=1e-5)

    def test_color_jitter_applies_ops_in_each_views_order(self):
        views = self.views[:4]
        factors = np.array([[1.3, 0.7, 1.2, 0.08], [0.7, 1.3, 0.8, -0.06]] * 2, "float32")
        order = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1], [1, 3, 0, 2]], "int32")
        apply = np.array([True, True, True, False])
        out = augment.color_jitter(views, factors, order, apply).numpy()
        ops = [augment.adjust_brightness, augment.adjust_contrast, augment.adjust_saturation, augment.adjust_hue]
        for v in range(4):
            expected = views[v : v + 1]
            if apply[v]:
                for op_index in order[v]:
                    expected = ops[op_index](expected, factors[v : v + 1, op_index])
            np.testing.assert_allclose(out[v], np.asarray(expected)[0], atol=1e-5)
        # The order matters: two orders give different results.
        swapped = augment.color_jitter(views, factors, order[[1, 0, 3, 2]], apply).numpy()
        assert np.abs(swapped[0] - out[0]).max() > 1e-3

    def test_grayscale_solarize_normalize(self):
        apply = np.array([True, False, True, False, True, False])
        gray = augment.random_grayscale(self.views, apply).numpy()
        luma = (self.views * [0.299, 0.587, 0.114]).sum(-1)
        np.testing.assert_allclose(gray[apply], np.repeat(luma[apply][..., None], 3, -1), atol=1e-6)
        np.testing.assert_array_equal(gray[~apply], self.views[~apply])

        solar = augment.solarize(self.views, apply).numpy()
        expected = np.where(self.views >= 128 / 255, 1 - self.views, self.views)
        np.testing.assert_allclose(solar[apply], expected[apply], atol=1e-7)
        np.testing.assert_array_equal(solar[~apply], self.views[~apply])

        norm = augment.normalize(self.views).numpy()
        mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
        np.testing.assert_allclose(norm, (self.views - mean) / std, atol=1e-5)

    def test_gaussian_blur_matches_numpy_per_view_sigma(self):
        sigma = np.array([0.1, 0.5, 1.0, 2.0, 1.5, 0.7], "float32")
        apply = np.array([True, True, True, True, False, True])
        out = augment.gaussian_blur(self.views, sigma, apply).numpy()
        for v in range(6):
            expected = numpy_blur(self.views[v], sigma[v]) if apply[v] else self.views[v]
            np.testing.assert_allclose(out[v], expected, atol=1e-5)

    # --------------------------------------------------------------- views --

    def test_view_parameter_probabilities(self):
        views = augment.dino_view_augmentations()
        n = 400
        configs = [views["global_1"]] * n + [views["global_2"]] * n + [views["local"]] * n
        params = {k: v.numpy() for k, v in augment.sample_view_parameters(_seed(7), configs).items()}
        rate = lambda key, group: params[key][group * n : (group + 1) * n].mean()
        for group in range(3):
            assert abs(rate("flip", group) - 0.5) < 0.08
            assert abs(rate("color_jitter", group) - 0.8) < 0.06
            assert abs(rate("grayscale", group) - 0.2) < 0.06
        assert rate("blur", 0) == 1.0
        assert abs(rate("blur", 1) - 0.1) < 0.05
        assert abs(rate("blur", 2) - 0.5) < 0.08
        assert rate("solarize", 0) == 0.0 and rate("solarize", 2) == 0.0
        assert abs(rate("solarize", 1) - 0.2) < 0.06

        factors = params["jitter_factors"]
        for column, (low, high) in enumerate([(0.6, 1.4), (0.6, 1.4), (0.8, 1.2), (-0.1, 0.1)]):
            assert factors[:, column].min() >= low and factors[:, column].max() <= high
            assert abs(factors[:, column].mean() - (low + high) / 2) < 0.03 * (high - low) * 2
        np.testing.assert_array_equal(np.sort(params["jitter_order"], axis=1), np.tile(np.arange(4), (3 * n, 1)))
        first_op_rates = np.bincount(params["jitter_order"][:, 0], minlength=4) / (3 * n)
        np.testing.assert_allclose(first_op_rates, 0.25, atol=0.05)
        sigma = params["blur_sigma"]
        assert sigma.min() >= 0.1 and sigma.max() <= 2.0 and abs(sigma.mean() - 1.05) < 0.1

    def test_rendered_views_follow_their_parameters(self):
        # An image whose halves and colours make flip, grayscale and
        # solarization visible in the pixels.
        image = np.zeros((16, 8, 3), "float32")
        image[:, :4] = [0.9, 0.2, 0.1]
        image[:, 4:] = [0.1, 0.3, 0.4]
        n = 400
        config = {**augment.no_view_augmentations()["global_2"], "flip_probability": 0.5,
                  "grayscale_probability": 0.2, "solarize_probability": 0.2}
        params = augment.sample_view_parameters(_seed(11), [config] * n)
        boxes = tf.constant([[0, 0, 16, 8]] * n, tf.int32)
        out = augment.render_views(image, boxes, (16, 8), params).numpy()
        out = out * np.array([0.229, 0.224, 0.225]) + np.array([0.485, 0.456, 0.406])
        params = {k: v.numpy() for k, v in params.items()}
        flipped = out[:, :, :4].mean((1, 2, 3)) < out[:, :, 4:].mean((1, 2, 3))
        gray = np.abs(out[..., 0] - out[..., 1]).max((1, 2)) < 1e-5
        solarized = out[..., 0].max((1, 2)) < 0.2  # the red 0.9 became 0.1
        np.testing.assert_array_equal(gray, params["grayscale"])
        np.testing.assert_array_equal(solarized, params["solarize"] & ~params["grayscale"])
        # Flip detection from colour is unambiguous once not solarized.
        plain = ~params["solarize"]
        np.testing.assert_array_equal(flipped[plain], params["flip"][plain])
        assert abs(params["flip"].mean() - 0.5) < 0.08


def test_blur_scale_scales_only_the_blur_sigma():
    from keras_pass.pretraining.augment import dino_view_augmentations

    release, small = dino_view_augmentations(), dino_view_augmentations(blur_scale=0.25)
    for name in release:
        assert small[name]["blur_sigma"] == pytest.approx((0.025, 0.5))
        assert {k: v for k, v in small[name].items() if k != "blur_sigma"} == {
            k: v for k, v in release[name].items() if k != "blur_sigma"}
