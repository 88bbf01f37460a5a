import os
import shutil

import pytest
import tensorflow_datasets as tfds

import keras_pass.reid  # noqa: F401  (registers "market1501")
from keras_pass.reid.datasets import market1501
from tests.helpers import make_market1501, once_under_tensorflow

# A TFDS builder over files, no Keras op: the backend cannot change what is checked here.
pytestmark = once_under_tensorflow


def load_all(manual_dir, data_dir):
    config = tfds.download.DownloadConfig(manual_dir=str(manual_dir))
    splits = tfds.load("market1501", split=["train", "query", "gallery"], data_dir=str(data_dir),
                       download_and_prepare_kwargs={"download_config": config})
    return [sorted((ex["filename"].numpy().decode(), int(ex["label"]), int(ex["pid"]),
                    int(ex["camid"]), tuple(ex["image"].shape)) for ex in split)
            for split in splits]


class TestMarket1501Builder:
    @pytest.mark.parametrize("as_zip", [False, True])
    def test_splits_match_the_folder_parser(self, tmp_path, as_zip):
        directory, truth = make_market1501(tmp_path / "download")
        if as_zip:
            shutil.make_archive(str(tmp_path / "zip" / "Market-1501-v15.09.15"), "zip",
                                root_dir=str(tmp_path / "download"))
        manual_dir = tmp_path / ("zip" if as_zip else "download")
        train, query, gallery = load_all(manual_dir, tmp_path / "tfds")
        parsed = market1501(directory)
        for examples, records, folder in [(train, parsed.train, "bounding_box_train"),
                                          (query, parsed.query, "query"),
                                          (gallery, parsed.gallery, "bounding_box_test")]:
            assert [e[0] for e in examples] == [os.path.basename(p) for p in records.paths]
            assert [e[1] for e in examples] == records.pids.tolist()
            assert [e[3] for e in examples] == records.camids.tolist()
            original = {name: pid for name, pid, _ in truth[folder]}
            assert [e[2] for e in examples] == [original[e[0]] for e in examples]
            assert all(e[4] == (48, 24, 3) for e in examples)
        assert {e[2] for e in gallery} >= {0} and -1 not in {e[2] for e in gallery}

    def test_manual_dir_without_the_dataset(self, tmp_path):
        (tmp_path / "wrong").mkdir()
        (tmp_path / "wrong" / "readme.txt").write_text("not the dataset")
        with pytest.raises(ValueError, match="bounding_box_train"):
            load_all(tmp_path / "wrong", tmp_path / "tfds")
