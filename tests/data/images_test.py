import io
import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pass.data.images import (
    SkippedImages,
    check_images,
    check_some_image_decodes,
    decode_image,
    find_unreadable_images,
    image_file_problem,
    list_image_files,
    read_image,
    readable_images,
    undecodable_error,
)
from tests.helpers import once_under_tensorflow, write_image

# `keras_pass.data.images` decodes and checks files with TensorFlow and PIL, no Keras op: the
# backend cannot change what is checked here.
pytestmark = once_under_tensorflow


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


# === The one up-front image check: size, magic bytes and end marker of
# every file; the readers that use it ===

def truncate(path, keep=0.5):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: int(len(data) * keep)])


@pytest.fixture
def folder(tmp_path):
    """Two sound JPEGs, a sound PNG, a truncated JPEG, a truncated PNG, an
    empty file and a text file named .jpg."""
    for name in ("good0.jpg", "good1.jpg", "good.png", "cut.jpg", "cut.png"):
        write_image(str(tmp_path / name), len(name))
    truncate(tmp_path / "cut.jpg")
    truncate(tmp_path / "cut.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("hello")
    return tmp_path


def test_problems_are_named(folder):
    assert image_file_problem(folder / "good0.jpg") is None and image_file_problem(folder / "good.png") is None
    assert image_file_problem(folder / "empty.jpg") == "empty file"
    assert "truncated JPEG" in image_file_problem(folder / "cut.jpg")
    assert "truncated PNG" in image_file_problem(folder / "cut.png")
    assert "not a JPEG" in image_file_problem(folder / "text.jpg")
    assert "No such file" in image_file_problem(folder / "missing.jpg")


def test_every_bad_file_is_found_in_order(folder):
    paths = sorted(str(p) for p in folder.iterdir())
    assert [os.path.basename(p) for p, _ in find_unreadable_images(paths)] == [
        "cut.jpg", "cut.png", "empty.jpg", "text.jpg"]


def test_check_images_is_one_error_naming_the_files(folder):
    paths = [str(folder / n) for n in ("good0.jpg", "cut.jpg", "empty.jpg")]
    with pytest.raises(ValueError, match=r"2 of 3 images unreadable: .*cut.jpg .*empty.jpg") as error:
        check_images(paths, "the query set")
    assert "the query set" in str(error.value) and "\n" not in str(error.value)
    assert check_images(paths[:1]) == paths[:1]


def test_readable_images_skips_and_warns(folder, caplog):
    paths = [str(folder / n) for n in ("good0.jpg", "cut.jpg", "good1.jpg", "empty.jpg")]
    with caplog.at_level(logging.WARNING, logger="keras_pass"):
        kept = readable_images(paths, "the train set")
    assert kept == [paths[0], paths[2]]
    assert "2 of 4 images unreadable" in caplog.text and "cut.jpg" in caplog.text
    with pytest.raises(ValueError, match="at least one readable image in the train set"):
        readable_images([paths[1], paths[3]], "the train set")


def test_some_image_decodes_stops_at_the_first(folder):
    good = str(folder / "good0.jpg")
    assert check_some_image_decodes([str(folder / "cut.jpg"), good, str(folder / "empty.jpg")]) == good
    with pytest.raises(ValueError, match="cut.jpg.*empty.jpg"):
        check_some_image_decodes([str(folder / "cut.jpg"), str(folder / "empty.jpg")], "folder")


def test_pretraining_on_a_folder_where_nothing_decodes_is_an_error(folder):
    """It used to wait forever for a readable image."""
    from keras_pass.pretraining.data import make_pass_dataset

    for name in ("good0.jpg", "good1.jpg", "good.png"):
        os.remove(folder / name)
    with pytest.raises(ValueError, match="Expected at least one readable image"):
        make_pass_dataset(str(folder), batch_size=2, global_size=(64, 32), local_size=(32, 16))


def test_fine_tuning_train_set_leaves_bad_files_out(tmp_path, caplog):
    from keras_pass.reid.data import make_train_dataset, readable_train_records
    from keras_pass.reid.datasets import ImageRecords

    paths = []
    for i in range(8):
        paths.append(str(tmp_path / f"{i}.jpg"))
        write_image(paths[-1], i)
    truncate(paths[3])
    open(paths[5], "wb").close()
    records = ImageRecords(tuple(paths), np.arange(8) // 2, np.zeros(8, np.int64))
    with caplog.at_level(logging.WARNING, logger="keras_pass"):
        kept = readable_train_records(records)
    assert kept.paths == tuple(p for i, p in enumerate(paths) if i not in (3, 5))
    assert kept.pids.tolist() == [0, 0, 1, 2, 3, 3]
    assert "3.jpg" in caplog.text and "5.jpg" in caplog.text
    dataset, _ = make_train_dataset(records, (32, 16), batch_size=4, num_instances=2)
    images, pids = next(iter(dataset))  # decodes: no bad file reaches tf.data
    assert images.shape == (4, 32, 16, 3) and np.isfinite(images.numpy()).all()


def test_full_decodes_keep_libjpeg_off_stderr(folder, capfd):
    """libjpeg writes "Corrupt JPEG data: ..." with C stdio (file descriptor
    2): silenced around the checks' own decodes, whose failures are named
    in the error instead."""
    from keras_pass.data.images import decode_problem
    from tests.helpers import garble_image

    garbled = str(folder / "good1.jpg")
    garble_image(garbled)  # sound start and end markers: only a full decode fails
    assert decode_problem(garbled)  # unsilenced, as a reference: libjpeg speaks
    assert "JPEG" in capfd.readouterr().err
    with pytest.raises(ValueError, match="good1.jpg"):
        check_some_image_decodes([garbled])
    assert "good1.jpg" in str(undecodable_error([str(folder / "good0.jpg"), garbled]))
    assert "JPEG" not in capfd.readouterr().err
