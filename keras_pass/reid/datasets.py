"""ReID dataset layouts -> lists of (path, person id, camera id), as data.

Supported: Market-1501, DukeMTMC-reID, MSMT17 (V1 and V2, list files) and a
generic layout (`<split>/<pid>/<camid>_*.jpg` folders or `path,pid,camid`
CSV files). Conventions, as in the official loaders:

- person id -1 marks junk images: they are dropped from every split;
  id 0 (Market-1501 distractors) stays in the gallery as a negative.
- cameras are 0-based (`c1` in a Market-1501 name is camera 0).
- train ids are relabelled 0..N-1 (sorted by original id); query and
  gallery keep their original ids so that they can be compared.
"""

import csv
import dataclasses
import os
import re

import numpy as np

from keras_pass.data.formats import is_image_name
from keras_pass.data.images import check_images
from keras_pass.reid.data import readable_train_records

JUNK_PID = -1


@dataclasses.dataclass(frozen=True, eq=False)
class ImageRecords:
    """One split: parallel arrays of image paths, person ids and cameras;
    `original_pids`: a relabelled (train) split's ids before relabelling,
    else None."""

    paths: tuple
    pids: np.ndarray
    camids: np.ndarray
    original_pids: np.ndarray = None

    def __len__(self):
        return len(self.paths)

    @property
    def num_ids(self):
        return len(np.unique(self.pids))

    @property
    def num_cameras(self):
        return len(np.unique(self.camids))

    def select(self, mask_or_indices):
        index = np.asarray(mask_or_indices)
        index = np.flatnonzero(index) if index.dtype == bool else index
        original = None if self.original_pids is None else self.original_pids[index]
        return ImageRecords(tuple(self.paths[i] for i in index), self.pids[index], self.camids[index], original)


@dataclasses.dataclass(frozen=True, eq=False)
class ReIDDataset:
    """A ReID benchmark: train (relabelled), query and gallery records."""

    name: str
    root: str
    train: ImageRecords
    query: ImageRecords
    gallery: ImageRecords
    version: str = ""

    @property
    def num_train_ids(self):
        return self.train.num_ids

    def summary(self):
        """The statistics table the reference implementations print."""
        title = f"=> {self.name}{f' ({self.version})' if self.version else ''} loaded"
        rule = "  " + "-" * 40
        lines = [title, "Dataset statistics:", rule,
                 "  subset   | # ids | # images | # cameras", rule]
        for split in ("train", "query", "gallery"):
            records = getattr(self, split)
            lines.append(
                f"  {split:<8} | {records.num_ids:5d} | {len(records):8d} | "
                f"{records.num_cameras:9d}"
            )
        lines.append(rule)
        return "\n".join(lines)


def _records(entries, where, relabel=False):
    """(path, pid, camid) tuples -> ImageRecords, junk dropped."""
    entries = sorted(e for e in entries if e[1] != JUNK_PID)
    if not entries:
        raise ValueError(
            f"Expected at least one (non-junk) image in {where}. Received: an empty split"
        )
    paths, pids, camids = zip(*entries)
    original = np.asarray(pids, dtype=np.int64)
    pids = np.searchsorted(np.unique(original), original) if relabel else original
    return ImageRecords(tuple(paths), pids, np.asarray(camids, dtype=np.int64),
                        original if relabel else None)


def _require_dir(path, what):
    if not os.path.isdir(path):
        raise ValueError(f"Expected {what} at {path}. Received: no such directory")
    return path


def _find_dataset_dir(root, names, marker):
    """`root` itself if it holds `marker`, else `root/<one of names>`."""
    candidates = [root] + [os.path.join(root, name) for name in names]
    for candidate in candidates:
        if os.path.exists(os.path.join(candidate, marker)):
            return candidate
    raise ValueError(
        f"Expected a dataset folder containing '{marker}' at {root} or in one "
        f"of its subfolders {list(names)}. Received: root={root}"
    )


def _image_files(folder):
    return sorted(name for name in os.listdir(folder)
                  if is_image_name(name) and not os.path.isdir(os.path.join(folder, name)))


# === Market-1501 and DukeMTMC-reID: one folder per split, ids in names ===

MARKET_NAME = re.compile(r"^(-1|\d+)_c(\d+)s\d+_\d+_\d+\.jpg$")
DUKE_NAME = re.compile(r"^(-1|\d+)_c(\d+)_f\d+\.jpg$")
_MARKET_FORM = "PPPP_cCsS_FFFFFF_NN.jpg (e.g. 0002_c1s1_000451_03.jpg)"
_DUKE_FORM = "PPPP_cC_fFFFFFFF.jpg (e.g. 0001_c2_f0046182.jpg)"


def parse_image_name(path, pattern=MARKET_NAME, form=_MARKET_FORM):
    """`(pid, camid)` of a Market-1501/Duke file name; camid is 0-based."""
    match = pattern.match(os.path.basename(path))
    if match is None or int(match.group(2)) < 1:
        raise ValueError(
            f"Expected an image name of the form {form} with camera >= 1. "
            f"Received: {path}"
        )
    return int(match.group(1)), int(match.group(2)) - 1


def _parse_name_folder(folder, pattern, form, relabel):
    _require_dir(folder, "an image folder")
    entries = []
    for name in _image_files(folder):
        path = os.path.join(folder, name)
        entries.append((path, *parse_image_name(path, pattern, form)))
    return _records(entries, folder, relabel)


def _split_folders(root, names, title, pattern, form):
    directory = _find_dataset_dir(root, names, "bounding_box_train")
    splits = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
    records = {
        split: _parse_name_folder(
            _require_dir(os.path.join(directory, folder), f"the '{split}' folder"),
            pattern, form, relabel=split == "train",
        )
        for split, folder in splits.items()
    }
    return ReIDDataset(title, directory, **records)


def market1501(root):
    """Market-1501: `bounding_box_train/`, `query/`, `bounding_box_test/`.

    `root` is the unzipped folder or a parent of `market1501/` or
    `Market-1501-v15.09.15/`. Non-image files (the zip's Thumbs.db) are ignored.
    """
    names = ("market1501", "Market-1501-v15.09.15", "Market-1501", "Market1501")
    return _split_folders(root, names, "Market-1501", MARKET_NAME, _MARKET_FORM)


def dukemtmc_reid(root):
    """DukeMTMC-reID: same folders as Market-1501, names `0001_c2_f0046182.jpg`."""
    names = ("DukeMTMC-reID", "dukemtmc-reid", "dukemtmcreid", "DukeMTMC")
    return _split_folders(root, names, "DukeMTMC-reID", DUKE_NAME, _DUKE_FORM)


# === MSMT17: list files `relative/path.jpg pid` ===

MSMT_VERSIONS = {  # version -> (train folder, test folder)
    "MSMT17_V1": ("train", "test"),
    "MSMT17_V2": ("mask_train_v2", "mask_test_v2"),
}


def _msmt_version(directory):
    for version, (train_dir, test_dir) in MSMT_VERSIONS.items():
        if os.path.isdir(os.path.join(directory, train_dir)):
            return version, train_dir, test_dir
    raise ValueError(
        "Expected MSMT17 image folders 'train/' + 'test/' (V1) or "
        f"'mask_train_v2/' + 'mask_test_v2/' (V2) in {directory}. Received: neither"
    )


def _parse_list_file(list_path, image_dir):
    if not os.path.isfile(list_path):
        raise ValueError(f"Expected the MSMT17 list file {list_path}. Received: no such file")
    entries = []
    with open(list_path) as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            fields = line.split()
            name_fields = os.path.basename(fields[0]).split("_")
            if len(fields) != 2 or len(name_fields) < 3 or not (
                fields[1].lstrip("-").isdigit() and name_fields[2].isdigit()
            ):
                raise ValueError(
                    "Expected MSMT17 list lines 'PID/PID_IDX_CC_..._.jpg PID' "
                    f"(camera = third '_' field). Received: {list_path}:{line_number}: "
                    f"{line.strip()!r}"
                )
            camid = int(name_fields[2]) - 1
            entries.append((os.path.join(image_dir, fields[0]), int(fields[1]), camid))
    return entries


def msmt17(root):
    """MSMT17 V1 (the official numbers) or V2; train = list_train + list_val.

    `root` is the dataset folder or a parent of `MSMT17_V1/`, `MSMT17_V2/` or
    `MSMT17/`; the version found is in `dataset.version`.
    """
    names = ("MSMT17_V1", "MSMT17_V2", "MSMT17", "msmt17")
    directory = _find_dataset_dir(root, names, "list_train.txt")
    version, train_dir, test_dir = _msmt_version(directory)
    train_root = os.path.join(directory, train_dir)
    test_root = _require_dir(os.path.join(directory, test_dir), "the MSMT17 test folder")

    def lists(*names_):
        entries = []
        for name in names_:
            image_dir = train_root if name in ("train", "val") else test_root
            entries += _parse_list_file(os.path.join(directory, f"list_{name}.txt"), image_dir)
        return entries

    train_lists = ("train", "val") if os.path.isfile(
        os.path.join(directory, "list_val.txt")) else ("train",)
    return ReIDDataset(
        "MSMT17", directory,
        train=_records(lists(*train_lists), f"{directory} (list_train/list_val)", relabel=True),
        query=_records(lists("query"), os.path.join(directory, "list_query.txt")),
        gallery=_records(lists("gallery"), os.path.join(directory, "list_gallery.txt")),
        version=version,
    )


# === Generic: <pid>/<camid>_*.jpg folders or path,pid,camid CSV files ===

def _parse_int(text, what, where):
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"Expected an integer {what}. Received: {text!r} in {where}") from None


def _folder_entries(folder):
    entries = []
    for pid_name in sorted(os.listdir(folder)):
        pid_dir = os.path.join(folder, pid_name)
        if not os.path.isdir(pid_dir):
            continue
        pid = _parse_int(pid_name, "person-id folder name (<root>/<pid>/<camid>_*.jpg)", pid_dir)
        for name in _image_files(pid_dir):
            path = os.path.join(pid_dir, name)
            camid = _parse_int(name.split("_")[0], "camera prefix (<camid>_*.jpg)", path)
            entries.append((path, pid, camid))
    return entries


def _csv_entries(csv_path):
    base = os.path.dirname(os.path.abspath(csv_path))
    entries = []
    with open(csv_path, newline="") as handle:
        for line_number, row in enumerate(csv.reader(handle), 1):
            if not row or (line_number == 1 and row[:3] == ["path", "pid", "camid"]):
                continue
            where = f"{csv_path}:{line_number}"
            if len(row) != 3:
                raise ValueError(f"Expected CSV rows 'path,pid,camid'. Received: {row} at {where}")
            path = row[0] if os.path.isabs(row[0]) else os.path.join(base, row[0])
            entries.append((path, _parse_int(row[1], "pid", where), _parse_int(row[2], "camid", where)))
    return entries


FOLDER_LAYOUT = ("one folder per person id holding images named by camera id, "
                 "<pid>/<camid>_*.jpg (e.g. 12/3_0001.jpg), or a CSV of path,pid,camid rows")


def load_folder(path, relabel=False):
    """One split from `<path>/<pid>/<camid>_*.jpg` or a `path,pid,camid` CSV.

    CSV paths are relative to the CSV's folder; an optional header
    `path,pid,camid` is skipped. Camera ids are used as written.
    """
    if os.path.isfile(path) and path.lower().endswith(".csv"):
        return _records(_csv_entries(path), path, relabel)
    _require_dir(path, "an image folder (<pid>/<camid>_*.jpg) or a .csv file")
    entries = _folder_entries(path)
    if not entries:
        loose = len(_image_files(path))
        raise ValueError(f"Expected {FOLDER_LAYOUT}. Received: {path} "
                         f"({f'{loose} images but no <pid> folders' if loose else 'no <pid> folder with images'})")
    return _records(entries, path, relabel)


def generic(root):
    """`root/{train,query,gallery}` as folders or `root/{split}.csv` files."""
    _require_dir(root, "a dataset folder")
    records = {}
    for split in ("train", "query", "gallery"):
        folder, table = os.path.join(root, split), os.path.join(root, f"{split}.csv")
        if not (os.path.isdir(folder) or os.path.isfile(table)):
            raise ValueError(
                f"Expected {folder}/ or {table} for the '{split}' split. Received: neither"
            )
        records[split] = load_folder(folder if os.path.isdir(folder) else table, split == "train")
    return ReIDDataset("folder", root, **records)


DATASETS = {
    "market1501": market1501,
    "dukemtmc": dukemtmc_reid,
    "msmt17": msmt17,
    "folder": generic,
}


def load_dataset(name, root, verbose=False):
    """Parses a benchmark by name (`market1501`, `dukemtmc`, `msmt17`, `folder`)."""
    if name not in DATASETS:
        raise ValueError(f"Expected a dataset name in {sorted(DATASETS)}. Received: name={name}")
    dataset = DATASETS[name](os.fspath(root))
    if verbose:
        print(dataset.summary())
    return dataset


def check_dataset_images(dataset, verbose=True):
    """Checks a dataset's images before training on it: unreadable query or
    gallery files are a ValueError naming them (they would fail the first
    evaluation, after training); unreadable train files are left out with a
    warning naming them. Returns the dataset (its train set cleaned)."""
    check_images(dataset.query.paths + dataset.gallery.paths, f"the query and gallery sets of {dataset.root}")
    train = readable_train_records(dataset.train, f"the train set of {dataset.root}")
    if verbose and len(train) < len(dataset.train):
        print(f"=> left out {len(dataset.train) - len(train)} unreadable train images")
    return dataclasses.replace(dataset, train=train)
