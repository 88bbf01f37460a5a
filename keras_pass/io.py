"""The one atomic file writer: every file keras-pass writes goes through here.

`atomic_path(path)` yields a temporary name in the same folder; on success
the data is fsync'ed and renamed over `path` (one `os.replace`, atomic on
POSIX and Windows), on failure the temporary is removed. A crash or a kill
at any point leaves either the old file or the new one, never half of
either. `atomic_directory` does the same for folders (presets, backups):
the old folder is moved aside, the new one renamed in, the old one removed;
an interrupted swap is finished by `recover_directory`. Temporaries start
with `.kp-tmp-` and retired folders with `.kp-old-`, so leftovers of a
killed writer are recognisable; `remove_stale_temps` deletes them and
`clean_interrupted_writes` (run by every recipe at its start, through
`keras_pass.runs`) does both for a run's folder. Weights, models and presets
are checked finite before they are written (`check_finite_weights`).

In a multi-process run only the writer (process 0,
`keras_pass.backend.processes.is_writer`) puts files in place: the other
processes run the same code, and what they write is discarded, so every
process takes the same steps and only one touches the output folder.

JSON, text, NumPy arrays, Keras weights and models and matplotlib figures
are written on top of it.
"""

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import uuid

import numpy as np

from keras_pass import finite
from keras_pass.backend.processes import is_writer

TEMP_PREFIX = ".kp-tmp-"
OLD_PREFIX = ".kp-old-"


def ensure_parent(path):
    """Creates the folder of `path`; a clear error when a file is in the way."""
    parent = os.path.dirname(os.path.abspath(os.fspath(path)))
    probe = parent
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if probe and not os.path.isdir(probe):
        raise ValueError(f"Expected a folder to write into. Received: path={path} "
                         f"(`{probe}` is a file)")
    os.makedirs(parent, exist_ok=True)
    return parent


_SCRATCH = []


def _temporary_folder(path):
    """The folder of `path` for the writer; for the other processes of a
    multi-process run a private scratch folder, so that their (discarded)
    temporaries never meet the writer's in the shared output folder."""
    if is_writer():
        return os.path.dirname(path)
    if not _SCRATCH:
        import tempfile

        _SCRATCH.append(tempfile.mkdtemp(prefix="keras-pass-not-writer-"))
    return _SCRATCH[0]


def _temporary_name(path, suffix=""):
    path = os.path.abspath(os.fspath(path))
    name = f"{TEMP_PREFIX}{uuid.uuid4().hex[:8]}-{os.path.basename(path)}{suffix}"
    return os.path.join(_temporary_folder(path), name)


def _fsync(path):
    if os.path.isdir(path):
        for root, _, files in os.walk(path):
            for name in files:
                _fsync(os.path.join(root, name))
        return
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yields a temporary path next to `path`; renamed over it on success.

    `suffix` is appended to the temporary name for writers that insist on
    an extension (Keras: `.weights.h5`, `.keras`; matplotlib: `.png`).
    """
    ensure_parent(path)
    temporary = _temporary_name(path, suffix)
    try:
        yield temporary
        if is_writer():
            _fsync(temporary)
            os.replace(temporary, path)
    except BaseException:
        _abandon(temporary)
        raise
    finally:
        if os.path.lexists(temporary):
            os.remove(temporary)


@contextlib.contextmanager
def atomic_directory(path):
    """Yields an empty temporary folder; swapped in for `path` on success."""
    path = os.path.abspath(os.fspath(path))
    ensure_parent(path)
    staging = _temporary_name(path)
    retired = os.path.join(os.path.dirname(path), OLD_PREFIX + os.path.basename(staging)[len(TEMP_PREFIX):])
    os.makedirs(staging)
    try:
        yield staging
        if not is_writer():
            return
        _fsync(staging)
        if os.path.exists(path):
            os.rename(path, retired)
        os.rename(staging, path)
    except BaseException:
        _abandon(staging)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(retired, ignore_errors=True)


def _abandon(temporary):
    """Before a failed write's temporary is removed: empties its files, so
    that a full disk gets their blocks back, then closes what h5py still
    holds open on them (a Keras save that failed mid-write leaves its HDF5
    file open; closed later, at exit, its flush fails again and the
    interpreter crashes)."""
    files = [temporary] if os.path.isfile(temporary) else [
        os.path.join(root, name) for root, _, names in os.walk(temporary) for name in names]
    for name in files:
        with contextlib.suppress(OSError):
            os.truncate(name, 0)
    if "h5py" not in sys.modules:
        return
    import h5py

    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        name = os.fsdecode(file_id.name)
        if name == temporary or name.startswith(temporary + os.sep):
            with contextlib.suppress(Exception):
                h5py.File(file_id).close()


def recover_directory(path):
    """Finishes a swap killed between its two renames: brings the retired
    folder back if `path` is missing. Returns True if it did."""
    path = os.path.abspath(os.fspath(path))
    parent, name = os.path.dirname(path), os.path.basename(path)
    if os.path.exists(path) or not os.path.isdir(parent) or not is_writer():
        return False
    retired = sorted(n for n in os.listdir(parent) if n.startswith(OLD_PREFIX) and n.endswith("-" + name))
    if not retired:
        return False
    os.rename(os.path.join(parent, retired[-1]), path)
    return True


def _retired_target(name):
    """`.kp-old-<8 hex>-NAME` -> NAME."""
    return name[len(OLD_PREFIX) + 9:]


def clean_interrupted_writes(folder, depth=2):
    """At the start of a run: finishes folder swaps killed between their
    renames, then deletes the temporaries of killed writers, in `folder`
    and its subfolders down to `depth` (where the recipes' writers put
    them). Returns the removed paths."""
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in sorted(os.listdir(folder)):
        if name.startswith(OLD_PREFIX):
            recover_directory(os.path.join(folder, _retired_target(name)))
    removed += [os.path.join(folder, name) for name in remove_stale_temps(folder)]
    if depth > 1:
        for name in sorted(os.listdir(folder)):
            if os.path.isdir(os.path.join(folder, name)):
                removed += clean_interrupted_writes(os.path.join(folder, name), depth - 1)
    return removed


# What a run writes about itself before training: nothing to resume from.
RUN_DESCRIPTIONS = ("run.json", "run.lock", "history.csv", "history.json")


def holds_run_files(folder):
    """True if `folder` holds a file other than `RUN_DESCRIPTIONS`."""
    return any(set(files) - set(RUN_DESCRIPTIONS) for _, _, files in os.walk(folder))


def remove_if_nothing_to_resume(folder):
    """Removes `folder` unless it holds a file to resume from (a failed run
    leaves no folder it created behind)."""
    if os.path.isdir(folder) and not holds_run_files(folder):
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def run_folder(path):
    """The output folder of a command: cleaned of interrupted writes at the
    start; if the command fails, a folder it created and left without a
    file to resume from is removed again. (Recipes use
    `keras_pass.runs`, which also locks the folder.)"""
    path = os.fspath(path)
    existed = os.path.isdir(path)
    clean_interrupted_writes(path)
    try:
        yield path
    except BaseException:
        if not existed:
            remove_if_nothing_to_resume(path)
        raise


def remove_paths(folder, names):
    """Deletes the files and folders `names` of `folder` that exist (a run
    redone with `overwrite`)."""
    if not is_writer():
        return
    for name in names:
        target = os.path.join(folder, name)
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.lexists(target):
            os.remove(target)


def remove_stale_temps(folder):
    """Deletes what killed writers left in `folder` (not recursive); returns
    the removed names."""
    if not os.path.isdir(folder) or not is_writer():  # not another's live temporaries
        return []
    removed = []
    for name in os.listdir(folder):
        if name.startswith(TEMP_PREFIX) or name.startswith(OLD_PREFIX):
            target = os.path.join(folder, name)
            shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
            removed.append(name)
    return removed


# === Formats on top of atomic_path ===

def write_bytes(path, data):
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)


def write_text(path, text):
    with atomic_path(path) as temporary, open(temporary, "w") as handle:
        handle.write(text)


def jsonable(value):
    """Dataclasses, tuples and NumPy scalars/arrays as plain JSON data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return value.tolist()
    return value


def write_json(path, data, indent=2):
    write_text(path, json.dumps(jsonable(data), indent=indent))


def read_json(path):
    """`json.load` with errors that name the file."""
    if not os.path.isfile(path):
        raise ValueError(f"Expected a JSON file. Received: path={path} (no such file)")
    with open(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:
            raise ValueError(f"Expected valid JSON in {path}. Received: {error}") from None


def save_npy(path, array):
    with atomic_path(path, ".npy") as temporary:
        np.save(temporary, array)


def check_finite_weights(model, path):
    """`NonFiniteLossError` instead of writing NaN/inf weights to `path`
    (every weights, model and preset writer calls it first)."""
    finite.check_finite_weights(model, f"to write to {path}")


def check_room(model, path):
    """OSError(ENOSPC) before writing `model`'s variables (and its
    optimizer's) next to `path` when the disk has less room than they take:
    an HDF5 writer that runs out of space mid-file cannot be closed cleanly
    and crashes the interpreter at exit."""
    import errno

    variables = list(model.variables) + list(getattr(getattr(model, "optimizer", None), "variables", []))
    needed = sum(4 * int(np.prod(v.shape)) for v in variables) * 1.1 + (1 << 20)  # float32 or smaller
    folder = ensure_parent(path)
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device ({free} bytes free, about {int(needed)} "
                      f"needed to write {os.path.basename(os.fspath(path))})")


def save_weights(model, path):
    """`model.save_weights` (a `.weights.h5` path), atomically."""
    if not os.fspath(path).endswith(".weights.h5"):
        raise ValueError(f"Expected a path ending in '.weights.h5'. Received: path={path}")
    check_finite_weights(model, path)
    check_room(model, path)
    with atomic_path(path, ".weights.h5") as temporary:
        model.save_weights(temporary)


def save_model(model, path):
    """`model.save` (a `.keras` path), atomically."""
    if not os.fspath(path).endswith(".keras"):
        raise ValueError(f"Expected a path ending in '.keras'. Received: path={path}")
    check_finite_weights(model, path)
    check_room(model, path)
    with atomic_path(path, ".keras") as temporary:
        model.save(temporary)


def save_figure(figure, path, **savefig_kwargs):
    """`figure.savefig(path)` atomically, then closes the figure."""
    import matplotlib.pyplot as plt

    extension = os.path.splitext(os.fspath(path))[1] or ".png"
    if os.path.isdir(path):  # else the temporary lands in the folder's parent
        plt.close(figure)
        raise ValueError(f"Expected a file path for the figure. Received: path={path} (a folder)")
    try:
        with atomic_path(path, extension) as temporary:
            figure.savefig(temporary, **savefig_kwargs)
    finally:
        plt.close(figure)
    return path
