import logging
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pass.data.synthetic import write_unlabeled
from keras_pass.pretraining.data import make_pass_dataset
from keras_pass.data.images import IMAGENET_MEAN, IMAGENET_STD
from tests.helpers import once_under_tensorflow

# `make_pass_dataset` is a tf.data pipeline (no Keras op): the backend cannot
# change what it yields.
pytestmark = once_under_tensorflow

REGIONS = ((0.0, 0.5), (0.25, 0.75), (0.5, 1.0))


def write_image(path, array):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(array).save(path)


def write_random_images(folder, count, seed=0, height=48, width=24):
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"{i:03d}.jpg")
        write_image(path, rng.integers(0, 256, (height + 4 * i, width, 3), dtype=np.uint8))
        paths.append(path)
    return paths


def row_coded_image(height=128, width=32):
    """Pixel value 2 * row: the row a resized pixel comes from is value / 2."""
    rows = (2 * np.arange(height)).astype(np.uint8)
    return np.repeat(np.repeat(rows[:, None, None], width, 1), 3, 2)


def unnormalize(x):
    return x * np.array(IMAGENET_STD) + np.array(IMAGENET_MEAN)


def collect(dataset, max_batches=100):
    batches = [tf.nest.map_structure(lambda t: t.numpy(), b) for b in dataset.take(max_batches)]
    return {k: np.concatenate([b[k] for b in batches]) for k in ("global_crops", "local_crops")}


class TestMakePassDataset:
    def setup_method(self):
        self.init_kwargs = dict(global_size=(64, 32), local_size=(32, 16), seed=1)

    def test_element_format(self, tmp_path):
        write_random_images(str(tmp_path), 5)
        dataset = make_pass_dataset(str(tmp_path), 2, **self.init_kwargs)
        assert dataset.element_spec == {
            "global_crops": tf.TensorSpec((2, 2, 64, 32, 3), tf.float32),
            "local_crops": tf.TensorSpec((2, 3, 3, 32, 16, 3), tf.float32),
        }
        data = collect(dataset)
        assert data["global_crops"].shape == (4, 2, 64, 32, 3)  # 5 images, last dropped
        assert np.all(np.isfinite(data["local_crops"]))
        pixels = unnormalize(data["local_crops"])
        assert pixels.min() > -1e-4 and pixels.max() < 1 + 1e-4

        other = make_pass_dataset(
            str(tmp_path), 2, num_parts=2, local_crops_per_part=4, drop_remainder=False,
            **self.init_kwargs,
        )
        data = collect(other)
        assert data["local_crops"].shape == (5, 2, 4, 32, 16, 3)

    def test_local_crops_stay_inside_their_region(self, tmp_path):
        height = 128
        for i in range(4):
            write_image(str(tmp_path / f"{i}.png"), row_coded_image(height, 32 + 8 * i))
        dataset = make_pass_dataset(
            str(tmp_path), 4, view_augmentations="none", region_bounds=REGIONS, **self.init_kwargs
        )
        epochs = [collect(dataset) for _ in range(4)]  # 16 images, 144 local crops
        local = np.concatenate([e["local_crops"] for e in epochs])
        rows = unnormalize(local)[..., 0] * 255 / 2  # (N, part, crop, h, w)
        lowest, highest = rows.min(axis=(3, 4)), rows.max(axis=(3, 4))
        for part, (low, high) in enumerate(REGIONS):
            first, last = low * height, high * height - 1
            # Bicubic lobes may overshoot a crop's edge rows by a fraction of a row.
            assert lowest[:, part].min() >= first - 0.5, part
            assert highest[:, part].max() <= last + 0.5, part
            # ... and the crops do reach both ends of their region.
            assert lowest[:, part].min() < first + 4 and highest[:, part].max() > last - 4
        # Global crops are cut from the whole image: with an aspect-ratio range
        # that admits these tall images, they span rows of every region.
        wide = make_pass_dataset(
            str(tmp_path), 4, view_augmentations="none", global_scale=(0.9, 1.0),
            ratio=(0.2, 0.5), **self.init_kwargs,
        )
        rows = unnormalize(collect(wide)["global_crops"])[..., 0] * 255 / 2
        assert np.any((rows.min(axis=(2, 3)) < 8) & (rows.max(axis=(2, 3)) > height - 9))

    def test_same_seed_same_crops_other_seed_or_epoch_differs(self, tmp_path):
        write_random_images(str(tmp_path), 4)
        first = make_pass_dataset(str(tmp_path), 2, **self.init_kwargs)
        again = make_pass_dataset(str(tmp_path), 2, **self.init_kwargs)
        epoch_0, epoch_1 = collect(first), collect(first)
        np.testing.assert_array_equal(collect(again)["local_crops"], epoch_0["local_crops"])
        np.testing.assert_array_equal(collect(again)["global_crops"], epoch_1["global_crops"])
        assert np.abs(epoch_0["global_crops"] - epoch_1["global_crops"]).max() > 0.1

        serial = make_pass_dataset(str(tmp_path), 2, num_parallel_calls=1, **self.init_kwargs)
        np.testing.assert_array_equal(collect(serial)["global_crops"], epoch_0["global_crops"])
        other_seed = collect(make_pass_dataset(str(tmp_path), 2, **{**self.init_kwargs, "seed": 2}))
        assert np.abs(other_seed["global_crops"] - epoch_0["global_crops"]).max() > 0.1

        resumed = make_pass_dataset(str(tmp_path), 2, initial_epoch=1, **self.init_kwargs)
        np.testing.assert_array_equal(collect(resumed)["global_crops"], epoch_1["global_crops"])
        endless = make_pass_dataset(str(tmp_path), 2, repeat=True, **self.init_kwargs)
        stream = collect(endless.take(4))
        np.testing.assert_array_equal(stream["local_crops"][:4], epoch_0["local_crops"])
        np.testing.assert_array_equal(stream["local_crops"][4:], epoch_1["local_crops"])

    def test_each_epoch_is_a_permutation(self, tmp_path):
        levels = [20 * i + 10 for i in range(7)]
        for i, level in enumerate(levels):
            write_image(str(tmp_path / f"{i}.png"), np.full((32, 16, 3), level, np.uint8))
        kwargs = dict(view_augmentations="none", drop_remainder=False, **self.init_kwargs)

        def order(dataset):
            crops = unnormalize(collect(dataset)["global_crops"])[:, 0, ..., 0]
            return [int(np.argmin(np.abs(np.array(levels) - v * 255))) for v in crops.mean((1, 2))]

        dataset = make_pass_dataset(str(tmp_path), 3, **kwargs)
        orders = [order(dataset) for _ in range(3)]
        for epoch_order in orders:
            assert sorted(epoch_order) == list(range(7))
        assert len({tuple(o) for o in orders}) > 1
        assert order(make_pass_dataset(str(tmp_path), 3, shuffle=False, **kwargs)) == list(range(7))

    def test_unreadable_images_are_left_out_up_front_or_skipped_and_replaced(self, tmp_path, caplog):
        from keras_pass.data.images import SkippedImages
        from tests.helpers import garble_image

        levels = [40, 80, 120, 160, 200]
        for i, level in enumerate(levels):
            write_image(str(tmp_path / f"{i}.png"), np.full((32, 16, 3), level, np.uint8))
        (tmp_path / "bad.png").write_bytes(b"not an image at all")
        source = write_random_images(str(tmp_path / "src"), 2)
        with open(source[0], "rb") as f:
            (tmp_path / "truncated.jpg").write_bytes(f.read()[:200])
        os.replace(source[1], tmp_path / "zz_garbled.jpg")  # sound header and end: fails at decode
        garble_image(str(tmp_path / "zz_garbled.jpg"))
        (tmp_path / "zz_empty.jpg").write_bytes(b"")
        listing = tmp_path / "list.txt"
        names = sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".jpg", ".png"))
        listing.write_text("\n".join(names + ["missing.jpg"]) + "\n")

        skipped = SkippedImages(list_file=str(tmp_path / "out" / "unreadable.txt"))
        with caplog.at_level(logging.WARNING, logger="keras_pass"):
            dataset = make_pass_dataset(str(listing), 3, shuffle=False, view_augmentations="none",
                                        skipped_images=skipped, **self.init_kwargs)
            up_front = caplog.messages
            assert dataset.steps_per_epoch == len(dataset) == 2  # 10 listed, 4 left out
            assert len(up_front) == 1 and "4 of 10 images unreadable" in up_front[0]
            assert "unreadable.txt" in up_front[0]
            listed = (tmp_path / "out" / "unreadable.txt").read_text().splitlines()
            assert sorted(os.path.basename(line.split("\t")[0]) for line in listed) == [
                "bad.png", "missing.jpg", "truncated.jpg", "zz_empty.jpg"]
            data = collect(dataset)
            collect(dataset)
        # Every epoch keeps its length: the garbled image is replaced by good ones.
        assert data["global_crops"].shape[0] == 6
        means = unnormalize(data["global_crops"])[:, 0].mean(axis=(1, 2, 3)) * 255
        assert np.all(np.min(np.abs(means[:, None] - np.array(levels)), axis=1) < 1)
        np.testing.assert_allclose(means[:5], levels, atol=1)  # in order, not shuffled
        assert os.path.basename(skipped.paths[-1]) == "zz_garbled.jpg" and len(skipped.paths) == 5
        assert skipped.count >= 4 + 2  # once per epoch
        assert caplog.text.count("Skipped an unreadable image") == 1  # each file named once

    def test_no_readable_image_raises_instead_of_looping(self, tmp_path):
        (tmp_path / "a.jpg").write_bytes(b"broken")
        with pytest.raises(ValueError, match="at least one readable image.*a.jpg"):  # up front
            make_pass_dataset(str(tmp_path), 1, repeat=True, **self.init_kwargs)

    def test_list_file_list_of_paths_and_nested_folders(self, tmp_path):
        root = tmp_path / "lup"
        write_random_images(str(root / "a" / "b" / "c"), 2)
        write_image(str(root / "x" / "UPPER.JPG"), np.zeros((40, 20, 3), np.uint8))
        (root / "x" / "notes.txt").write_text("not an image")
        nested = collect(make_pass_dataset(str(root), 1, **self.init_kwargs))
        assert nested["global_crops"].shape[0] == 3

        listing = root / "x" / "train.txt"
        listing.write_text("# comment\n../a/b/c/000.jpg\n\n" + str(root / "a/b/c/001.jpg") + "\n")
        from_list = make_pass_dataset(str(listing), 1, **self.init_kwargs)
        assert collect(from_list)["global_crops"].shape[0] == 2
        assert from_list.skipped_images.count == 0

        paths = [str(root / "a/b/c/000.jpg"), root / "x" / "UPPER.JPG"]
        assert collect(make_pass_dataset(paths, 2, **self.init_kwargs))["local_crops"].shape[0] == 2

    @pytest.mark.parametrize(
        "kwargs,match",
        [
            (dict(region_bounds=((0.0, 0.5), (0.5, 1.0))), "region_bounds"),
            (dict(region_bounds=((0.0, 0.5), (0.6, 0.4), (0.5, 1.0))), "region_bounds"),
            (dict(region_bounds=((0.0, 0.5), (0.25, 0.75), (0.5, 1.2))), "region_bounds"),
            (dict(global_size=(64,)), "global_size"),
            (dict(local_size=(32, 0)), "local_size"),
            (dict(local_size=(32.0, 16)), "local_size"),
            (dict(global_scale=(0.0, 1.0)), "global_scale"),
            (dict(local_scale=(0.8, 0.1)), "local_scale"),
            (dict(ratio=(2.0, 0.5)), "ratio"),
            (dict(num_parts=0), "num_parts"),
            (dict(local_crops_per_part=-1), "local_crops_per_part"),
            (dict(view_augmentations={"global_3": {}}), "view_augmentations"),
            (dict(view_augmentations={"local": {"blur_probability": 1.5}}), "blur_probability"),
            (dict(view_augmentations={"local": {"blur_sigma": (0.0, 2.0)}}), "blur_sigma"),
        ],
    )
    def test_bad_arguments_raise(self, tmp_path, kwargs, match):
        write_random_images(str(tmp_path), 2)
        with pytest.raises(ValueError, match=f"Expected.*Received: .*{match}"):
            make_pass_dataset(str(tmp_path), 2, **{**self.init_kwargs, **kwargs})

    def test_bad_sources_raise(self, tmp_path):
        missing = str(tmp_path / "nowhere")
        with pytest.raises(ValueError, match=f"Received: files_or_dir={missing} \\(no such file or folder\\)"):
            make_pass_dataset(missing, 2)
        (tmp_path / "empty" / "deep").mkdir(parents=True)
        (tmp_path / "empty" / "deep" / "readme.txt").write_text("x")
        with pytest.raises(ValueError, match="at least one image.*empty"):
            make_pass_dataset(str(tmp_path / "empty"), 2)
        with pytest.raises(ValueError, match="at least one image"):
            make_pass_dataset([], 2)
        write_random_images(str(tmp_path / "ok"), 1)
        with pytest.raises(ValueError, match="batch_size"):
            make_pass_dataset(str(tmp_path / "ok"), 0)
        with pytest.raises(ValueError, match="at least batch_size=2 images"):
            make_pass_dataset(str(tmp_path / "ok"), 2)
        assert len(make_pass_dataset(str(tmp_path / "ok"), 2, drop_remainder=False)) == 1


# === Per-process input of pre-training: each process's slice of every
# global batch, together exactly the single-process batch ===
SMALL = dict(global_size=(16, 8), local_size=(8, 4), local_crops_per_part=1, view_augmentations="none")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("lup"))
    write_unlabeled(root, num_identities=7, views=(1, 1), image_size=(32, 16), seed=3)
    return root


def _batches(folder, batch_size, epochs=1, **kwargs):
    dataset = make_pass_dataset(folder, batch_size, seed=4, repeat=True, **SMALL, **kwargs)
    steps = dataset.steps_per_epoch
    return [b["global_crops"] for b in dataset.take(epochs * steps).as_numpy_iterator()], steps


@pytest.mark.parametrize("num_shards", [2])
def test_process_slices_concatenate_to_the_global_batch(folder, num_shards):
    batch = 6
    whole, steps = _batches(folder, batch)
    slices = [_batches(folder, batch, num_shards=num_shards, shard_index=k) for k in range(num_shards)]
    assert all(s == steps for _, s in slices)  # the global number of steps
    for step, expected in enumerate(whole):
        parts = [batches[step] for batches, _ in slices]
        assert all(len(p) == batch // num_shards for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), expected)


def test_bad_shard_arguments_are_value_errors(folder):
    with pytest.raises(ValueError, match="shard_index < num_shards=2"):
        make_pass_dataset(folder, 4, num_shards=2, shard_index=2, **SMALL)
    with pytest.raises(ValueError, match="divisible by num_shards=2"):
        make_pass_dataset(folder, 5, num_shards=2, shard_index=0, **SMALL)
