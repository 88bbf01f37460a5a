import io
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pass.data.images import SkippedImages, decode_image, list_image_files, read_image


def save(path, array, **kwargs):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)


class TestImages:
    def setup_method(self):
        self.rgb = np.random.default_rng(0).integers(0, 256, (12, 7, 3), dtype=np.uint8)

    def test_folder_listing_is_recursive_sorted_and_filtered(self, tmp_path):
        for name in ["b/2.jpg", "a/x/1.PNG", "a/0.jpeg", "c.png", "z/readme.txt", "z/img.gif"]:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        found = [os.path.relpath(p, tmp_path) for p in list_image_files(str(tmp_path))]
        assert found == ["a/0.jpeg", "a/x/1.PNG", "b/2.jpg", "c.png"]
        assert list_image_files(tmp_path) == list_image_files(str(tmp_path))

    def test_list_file_resolves_relative_paths(self, tmp_path):
        (tmp_path / "lists").mkdir()
        listing = tmp_path / "lists" / "train.txt"
        listing.write_text("# LUPerson subset\n../img/a.jpg\n\n  /abs/b.png  \nc.jpg\n")
        assert list_image_files(str(listing)) == [
            str(tmp_path / "img" / "a.jpg"), "/abs/b.png", str(tmp_path / "lists" / "c.jpg")
        ]
        assert list_image_files(["x.jpg", tmp_path / "y.png"]) == ["x.jpg", str(tmp_path / "y.png")]

    @pytest.mark.parametrize("source", ["missing", "empty", "list", 3])
    def test_bad_sources_raise_value_error(self, tmp_path, source):
        (tmp_path / "empty").mkdir()
        (tmp_path / "list").write_text("# nothing\n\n")
        arg = source if source == 3 else str(tmp_path / source)
        with pytest.raises(ValueError, match="Expected .*Received: files_or_dir="):
            list_image_files(arg)

    def test_decode_png_and_jpeg_like_pil(self, tmp_path):
        save(str(tmp_path / "a.png"), self.rgb)
        np.testing.assert_allclose(read_image(str(tmp_path / "a.png")).numpy(), self.rgb / 255.0, atol=1e-6)
        save(str(tmp_path / "a.jpg"), self.rgb, quality=90)
        expected = np.asarray(Image.open(tmp_path / "a.jpg").convert("RGB")) / 255.0
        decoded = read_image(str(tmp_path / "a.jpg")).numpy()
        assert decoded.dtype == np.float32 and decoded.shape == (12, 7, 3)
        # Accurate integer DCT, as PIL: identical pixels (TF's default differs by up to 5).
        np.testing.assert_allclose(decoded, expected, atol=1e-6)

    def test_decode_gray_and_rgba_to_rgb(self):
        gray, rgba = io.BytesIO(), io.BytesIO()
        Image.fromarray(self.rgb[..., 0]).save(gray, format="PNG")
        Image.fromarray(np.dstack([self.rgb, self.rgb[..., :1]])).save(rgba, format="PNG")
        out = decode_image(tf.constant(gray.getvalue())).numpy()
        np.testing.assert_allclose(out, np.repeat(self.rgb[..., :1], 3, -1) / 255.0, atol=1e-6)
        rgb = decode_image(tf.constant(rgba.getvalue())).numpy()
        np.testing.assert_allclose(rgb, self.rgb / 255.0, atol=1e-6)

    def test_skipped_images_counts_and_names(self, caplog):
        skipped = SkippedImages(max_paths=2)
        with caplog.at_level(logging.WARNING, logger="keras_pass"):
            skipped.record([b"/a.jpg", "/b.jpg"])
            skipped.record(["/a.jpg", "/c.jpg"], count=5)
        assert skipped.count == 7
        assert skipped.paths == ["/a.jpg", "/b.jpg"]
        assert "/c.jpg" in caplog.text and "3 more" in caplog.text
