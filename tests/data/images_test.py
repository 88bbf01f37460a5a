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
        for name in ["b/2.jpg", "a/x/1.PNG", "a/0.jpeg", "c.png", "z/readme.txt", "z/img.gif", "z/i.BMP",
                     "z/w.webp", "z/v.tiff"]:
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
        (tmp_path / "folder.jpg").mkdir()  # a folder named like an image: walked, not listed
        found = [os.path.relpath(p, tmp_path) for p in list_image_files(str(tmp_path))]
        assert found == ["a/0.jpeg", "a/x/1.PNG", "b/2.jpg", "c.png", "z/i.BMP", "z/img.gif", "z/w.webp"]
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


class TestWalk:
    """Each real folder once, whatever links point back into the tree."""

    def tree(self, tmp_path):
        for name in ("a.jpg", "sub/b.png", "sub/deeper/c.jpg"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_bytes(b"")
        return tmp_path

    @pytest.mark.parametrize("link, target", [("loop", "."), ("sub/deeper/up", "../.."),
                                              ("sub/again", "deeper"), ("elsewhere", "sub")])
    def test_links_to_walked_folders_are_cut_and_said_once(self, tmp_path, caplog, link, target):
        root = self.tree(tmp_path)
        os.symlink(target, root / link)
        with caplog.at_level(logging.WARNING, logger="keras_pass"):
            found = list_image_files(str(root))
        assert [os.path.relpath(p, root) for p in found] == ["a.jpg", "sub/b.png", "sub/deeper/c.jpg"]
        assert len(caplog.records) == 1 and "symbolic link" in caplog.text and "\n" not in caplog.messages[0]

    def test_a_link_to_a_folder_outside_is_walked(self, tmp_path, caplog):
        self.tree(tmp_path / "outside")
        (tmp_path / "root").mkdir()
        os.symlink(tmp_path / "outside", tmp_path / "root" / "link")
        with caplog.at_level(logging.WARNING, logger="keras_pass"):
            assert len(list_image_files(str(tmp_path / "root"))) == 3
        assert not caplog.records

    @pytest.mark.parametrize("target", ["self.jpg", "missing.jpg"])
    def test_broken_file_links_are_listed_and_named_by_the_checks(self, tmp_path, target):
        from keras_pass.data.images import image_file_problem

        os.symlink(target, tmp_path / "self.jpg")
        assert list_image_files(str(tmp_path)) == [str(tmp_path / "self.jpg")]
        assert "symbolic link" in image_file_problem(str(tmp_path / "self.jpg"))

    def test_an_image_or_binary_file_is_not_a_list_file(self, tmp_path):
        save(str(tmp_path / "a.jpg"), np.zeros((4, 4, 3), np.uint8))
        with pytest.raises(ValueError, match="image folder or a list file.*a.jpg \\(an image file\\)"):
            list_image_files(str(tmp_path / "a.jpg"))
        (tmp_path / "bm.txt").write_text("BMW/a.jpg\n")  # starts like a BMP: still a list
        assert list_image_files(str(tmp_path / "bm.txt")) == [str(tmp_path / "BMW" / "a.jpg")]
        (tmp_path / "blob").write_bytes(b"\xff\xfe\x00\x81")
        with pytest.raises(ValueError, match="blob \\(a binary file\\)"):
            list_image_files(str(tmp_path / "blob"))


@pytest.mark.parametrize("kind, extension", [("BMP", ".bmp"), ("GIF", ".gif"), ("WEBP", ".webp"),
                                             ("GIF", ".jpg")])  # read by content, whatever the name
def test_every_listed_format_decodes_and_passes_the_checks(tmp_path, kind, extension):
    from keras_pass.data.formats import IMAGE_EXTENSIONS, IMAGE_FORMATS_HELP
    from keras_pass.data.images import image_file_problem

    assert all(ext in IMAGE_FORMATS_HELP for ext in IMAGE_EXTENSIONS)
    if extension not in IMAGE_EXTENSIONS and extension != ".jpg":
        pytest.skip(f"this TensorFlow does not decode {kind}")
    rgb = np.random.default_rng(0).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    path = str(tmp_path / f"x{extension}")
    save(path, rgb, format=kind, **({"lossless": True} if kind == "WEBP" else {}))
    assert list_image_files(str(tmp_path)) == [path] and image_file_problem(path) is None
    expected = np.asarray(Image.open(path).convert("RGB")) / 255.0  # GIF: PIL's palette
    np.testing.assert_allclose(read_image(path).numpy(), expected, atol=1e-6)
