import os

import numpy as np
import pytest

from keras_pass.reid import datasets
from tests.helpers import (
    MINI_MARKET,
    make_dukemtmc,
    make_generic,
    make_market1501,
    make_msmt17,
    once_under_tensorflow,
    write_image,
)

# `keras_pass.reid.datasets` parses folder layouts and file names, no Keras op: the backend cannot
# change what is checked here.
pytestmark = once_under_tensorflow


@pytest.fixture
def market(tmp_path):
    return make_market1501(tmp_path)


def expected_split(truth, folder):
    """(file name, pid, camid) without junk, sorted by name."""
    return sorted((name, pid, cam) for name, pid, cam in truth[folder] if pid != -1)


class TestMarket1501:
    def test_splits_match_the_generated_files(self, tmp_path, market):
        directory, truth = market
        dataset = datasets.load_dataset("market1501", tmp_path)
        assert dataset.root == directory
        for split, folder in [("query", "query"), ("gallery", "bounding_box_test")]:
            records = getattr(dataset, split)
            expected = expected_split(truth, folder)
            assert [os.path.basename(p) for p in records.paths] == [e[0] for e in expected]
            assert records.pids.tolist() == [e[1] for e in expected]
            assert records.camids.tolist() == [e[2] for e in expected]
        assert -1 not in dataset.gallery.pids and 0 in dataset.gallery.pids  # distractors stay

    def test_train_ids_are_relabelled_in_sorted_order(self, market):
        directory, truth = market
        train = datasets.market1501(directory).train
        original = [pid for _, pid, _ in expected_split(truth, "bounding_box_train")]
        mapping = {pid: label for label, pid in enumerate(sorted(set(original)))}
        assert train.pids.tolist() == [mapping[pid] for pid in original]
        assert train.num_ids == 4 and len(train) == sum(
            c for p, _, c in MINI_MARKET["bounding_box_train"] if p != -1)

    def test_summary_table(self, market):
        summary = datasets.market1501(market[0]).summary()
        assert "  train    |     4 |       18 |         3" in summary
        assert "  gallery  |     5 |       16 |         3" in summary

    def test_missing_folder(self, tmp_path):
        with pytest.raises(ValueError, match="bounding_box_train"):
            datasets.market1501(str(tmp_path / "nowhere"))

    def test_missing_split_folder_names_its_path(self, market):
        directory, _ = market
        os.rename(os.path.join(directory, "query"), os.path.join(directory, "queries"))
        with pytest.raises(ValueError, match=r"'query' folder at .*query"):
            datasets.market1501(directory)

    def test_unparseable_name(self, market):
        directory, _ = market
        bad = os.path.join(directory, "query", "person_01.jpg")
        write_image(bad, 0)
        with pytest.raises(ValueError, match="PPPP_cCsS_FFFFFF_NN.jpg.*person_01.jpg"):
            datasets.market1501(directory)

    def test_empty_split(self, tmp_path):
        directory, _ = make_market1501(
            tmp_path, {"bounding_box_train": [(1, 1, 1)], "query": [(-1, 1, 1)],
                       "bounding_box_test": [(1, 2, 1)]})
        with pytest.raises(ValueError, match=r"at least one \(non-junk\) image in .*query"):
            datasets.market1501(directory)

    def test_parse_image_name(self):
        assert datasets.parse_image_name("x/0002_c3s1_000451_03.jpg") == (2, 2)
        assert datasets.parse_image_name("-1_c1s1_000401_03.jpg") == (-1, 0)
        with pytest.raises(ValueError, match="camera >= 1"):
            datasets.parse_image_name("0002_c0s1_000451_03.jpg")


class TestOtherLayouts:
    def test_dukemtmc(self, tmp_path):
        make_dukemtmc(tmp_path)
        dataset = datasets.load_dataset("dukemtmc", tmp_path)
        assert dataset.train.pids.tolist() == [0, 0, 1, 1]
        assert dataset.train.camids.tolist() == [0, 0, 1, 1]
        assert dataset.gallery.pids.tolist() == [1, 1, 4]

    @pytest.mark.parametrize("version", ["MSMT17_V1", "MSMT17_V2"])
    def test_msmt17_lists_and_version(self, tmp_path, version):
        make_msmt17(tmp_path, version)
        dataset = datasets.load_dataset("msmt17", tmp_path)
        assert dataset.version == version
        # train = list_train + list_val; camera = third '_' field - 1
        assert len(dataset.train) == 6 and dataset.train.num_ids == 2
        assert sorted(dataset.train.camids.tolist()) == [0, 1, 2, 2, 2, 4]
        assert dataset.query.pids.tolist() == [0, 1] and dataset.query.camids.tolist() == [0, 1]
        assert all(os.path.isfile(p) for p in dataset.gallery.paths)
        assert f"({version})" in dataset.summary()

    def test_msmt17_without_val_list(self, tmp_path):
        make_msmt17(tmp_path, with_val=False)
        assert len(datasets.msmt17(str(tmp_path)).train) == 4

    def test_msmt17_bad_list_line(self, tmp_path):
        directory = make_msmt17(tmp_path)
        with open(os.path.join(directory, "list_query.txt"), "a") as handle:
            handle.write("garbage\n")
        with pytest.raises(ValueError, match=r"list_query.txt:3"):
            datasets.msmt17(directory)

    def test_generic_folders_and_csv(self, tmp_path):
        rows = make_generic(tmp_path)
        dataset = datasets.load_dataset("folder", tmp_path)
        assert dataset.train.pids.tolist() == [0, 0, 1, 1]
        assert dataset.query.pids.tolist() == [7] and dataset.gallery.camids.tolist() == [1, 1, 0]
        table = tmp_path / "gallery.csv"
        table.write_text("path,pid,camid\n" + "".join(rows))
        from_csv = datasets.load_folder(str(table))
        assert from_csv.paths == dataset.gallery.paths
        assert from_csv.pids.tolist() == dataset.gallery.pids.tolist()

    def test_generic_bad_inputs(self, tmp_path):
        make_generic(tmp_path)
        write_image(str(tmp_path / "query" / "alice" / "0_000.jpg"), 1)
        with pytest.raises(ValueError, match="integer person-id folder.*alice"):
            datasets.load_folder(str(tmp_path / "query"))
        write_image(str(tmp_path / "train" / "3" / "front.jpg"), 1)
        with pytest.raises(ValueError, match="camera prefix.*front.jpg"):
            datasets.load_folder(str(tmp_path / "train"))
        (tmp_path / "bad.csv").write_text("a.jpg,1\n")
        with pytest.raises(ValueError, match="path,pid,camid.*bad.csv:1"):
            datasets.load_folder(str(tmp_path / "bad.csv"))
        with pytest.raises(ValueError, match="'train' split"):
            datasets.generic(str(tmp_path / "train"))

    def test_unknown_dataset_name(self, tmp_path):
        with pytest.raises(ValueError, match="dataset name in"):
            datasets.load_dataset("cuhk03", tmp_path)

    def test_select(self, tmp_path):
        make_generic(tmp_path)
        records = datasets.load_folder(str(tmp_path / "gallery"))
        picked = records.select(records.pids == 7)
        assert len(picked) == 2 and np.all(picked.pids == 7)


# Query/gallery images checked before training; train images cleaned.
def _cut(path):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])


def test_query_and_gallery_checked_train_cleaned(tmp_path):
    root, truth = make_market1501(tmp_path)
    train_file = next(f for f, pid, _ in truth["bounding_box_train"] if pid > 0)
    open(os.path.join(root, "bounding_box_train", train_file), "wb").close()
    dataset = datasets.check_dataset_images(datasets.market1501(root), verbose=False)
    assert len(dataset.train) == len(datasets.market1501(root).train) - 1
    assert not any(p.endswith(train_file) for p in dataset.train.paths)
    query_file = truth["query"][0][0]
    _cut(os.path.join(root, "query", query_file))
    with pytest.raises(ValueError, match=query_file):
        datasets.check_dataset_images(datasets.market1501(root))
