"""TFDS builder `market1501` (manual download; nothing is fetched).

    import keras_pass.reid  # registers the builder
    import tensorflow_datasets as tfds

    config = tfds.download.DownloadConfig(manual_dir="/data/market")
    train = tfds.load("market1501", split="train", data_dir="/data/tfds",
                      download_and_prepare_kwargs={"download_config": config})

`manual_dir` holds the unzipped folder (`Market-1501-v15.09.15/` or
`market1501/`, or is itself that folder) or the zip
`Market-1501-v15.09.15.zip`. Splits: `train` (12,936 images), `query`
(3,368), `gallery` (15,913); junk images (id -1) are left out, distractors
(id 0) stay in the gallery.
"""

import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from keras_pass.reid.datasets import market1501, parse_image_name

ZIP_NAME = "Market-1501-v15.09.15.zip"


class Market1501(tfds.core.GeneratorBasedBuilder):
    """Market-1501 person re-identification (Zheng et al., ICCV 2015)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release (keras-pass)."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Download Market-1501-v15.09.15.zip (see "
        "https://zheng-lab-anu.github.io/Project/project_reid.html) and place "
        "the zip, or the folder it unzips to, in `manual_dir`."
    )

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls):
        # TFDS's default probes `importlib_resources`, which its wheel does
        # not require (ModuleNotFoundError on a plain install).
        return epath.Path(__file__)

    def _info(self):
        return self.dataset_info_from_configs(
            description=(
                "Market-1501: 1,501 identities from 6 cameras. `label`: train ids "
                "relabelled 0..750 as the official loader does; query and gallery keep "
                "the file's person id. `pid`: the id in the file name; `camid`: 0-based."
            ),
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.Scalar(dtype=np.int64),
                "pid": tfds.features.Scalar(dtype=np.int64),
                "camid": tfds.features.Scalar(dtype=np.int64),
                "filename": tfds.features.Text(),
            }),
            supervised_keys=("image", "label"),
            homepage="https://zheng-lab-anu.github.io/Project/project_reid.html",
        )

    def _dataset_root(self, dl_manager):
        manual_dir = os.fspath(dl_manager.manual_dir)
        archive = os.path.join(manual_dir, ZIP_NAME)
        if os.path.isfile(archive):
            return os.fspath(dl_manager.extract(archive))
        return manual_dir

    def _split_generators(self, dl_manager):
        dataset = market1501(self._dataset_root(dl_manager))
        return {
            split: self._generate_examples(getattr(dataset, split))
            for split in ("train", "query", "gallery")
        }

    def _generate_examples(self, records):
        for path, label, camid in zip(records.paths, records.pids, records.camids):
            name = os.path.basename(path)
            yield name, {
                "image": path,
                "label": int(label),
                "pid": parse_image_name(path)[0],
                "camid": int(camid),
                "filename": name,
            }
