"""The run folder: one lifecycle for every recipe's `output_dir`
(pretrain, finetune, usl, uda, and so the demo's stages). docs/runs.md
describes it for users.

`run_recipe(config, recipe, train, finished, outputs)`:

1. takes the folder's lock (`run.lock`, `fcntl.flock`, holding the pid,
   host and start time of its holder): a second run on the folder is a
   `RunError` naming the holder (CLI: one line, exit 2); a lock whose
   holder died is taken over, and that is said;
2. finishes or removes what killed writers left (`io.clean_interrupted_writes`);
3. compares the settings with those `run.json` recorded: a change other
   than `CONTINUABLE` is a `RunError` naming each changed flag with its old
   and new value (`--overwrite` or another folder); a finished run says
   "nothing to do", naming the settings that differ;
4. trains (`train(run)`), in the config's distribution. The recipe calls
   `run.record(...)` once its data and model are known (the complete
   settings, the source preset/checkpoint with a content hash, the data
   root and its image count go to `run.json`), `run.resuming(...)` when it
   continues from a checkpoint (one line) and `run.summary(...)` at the
   end (one line: images used and skipped, steps, where the outputs are);
5. a write failure (ENOSPC, EROFS, EDQUOT) is a `RunError` naming the
   folder and the cause; the atomic writers leave the last good checkpoint
   as it was. A failed run leaves no folder it created without a file to
   resume from.

In a multi-process run only the writer (process 0) locks and writes.
"""

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import os
import platform
import socket
from importlib import metadata

import keras

from keras_pass import io
from keras_pass.backend import processes
from keras_pass.backend.distribution import distribution_scope
from keras_pass.version import __version__

RUN_FILE = "run.json"
LOCK_FILE = "run.lock"

# Settings a re-run may change and still continue the saved state (docs/runs.md).
CONTINUABLE = frozenset({
    "epochs", "verbose", "eval_every", "save_freq", "overwrite", "output_dir", "jit_compile",
    "distribution", "test_batch_size", "rerank", "search", "allow_overlap",
})
# Config fields naming the model a run starts from: recorded with a content hash.
SOURCE_FIELDS = ("preset", "checkpoint")
WRITE_ERRORS = {errno.ENOSPC: "no space left", errno.EROFS: "read-only file system",
                errno.EDQUOT: "disk quota exceeded"}


class RunError(ValueError):
    """A run that cannot start or continue in its folder (CLI: exit 2)."""


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """An exclusive lock on a run folder: `fcntl.flock` on `run.lock`, whose
    content names the holder. The kernel drops a flock when its process
    dies, so a lock file left by a dead holder is simply taken over."""

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, LOCK_FILE)
        self._handle = None

    def holder(self):
        """The recorded holder ({"pid", "host", "started"}), or None."""
        try:
            with open(self.path) as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    def acquire(self):
        """Takes the lock; a `RunError` naming the holder when another
        process has it. Returns the dead holder taken over from, or None."""
        os.makedirs(self.folder, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            holder = self.holder() or {}
            raise RunError(
                f"Expected no other run in {self.folder}. Received: it is locked by pid "
                f"{holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')} "
                f"(wait for it, or choose another output folder)") from None
        previous = self.holder()
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}, handle)
        handle.flush()
        self._handle = handle
        stale = previous and previous.get("pid") != os.getpid() and not (
            previous.get("host") == socket.gethostname() and _process_alive(previous.get("pid", -1)))
        return previous if stale else None

    def release(self):
        """Empties the lock file (kept: removing it would let a process that
        opened it before the removal lock a file nobody else sees)."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.truncate(0)
            self._handle.close()  # closing drops the flock
            self._handle = None


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def software_versions():
    """keras-pass, Keras and the engines a run may use (None: not installed)."""
    versions = {"keras_pass": __version__, "keras": keras.__version__}
    for package in ("jax", "jaxlib", "tensorflow"):
        versions[package] = _version(package)
    return versions


def _device_kind():
    if keras.config.backend() == "jax":
        import jax

        return jax.devices()[0].platform
    return platform.machine()


def run_record(config, recipe):
    """What ran, on how many processes and devices, with which global
    batch, seed and precision, and every setting."""
    settings = io.jsonable(config)
    return {
        "recipe": recipe,
        "backend": keras.config.backend(),
        "num_processes": processes.process_count(),
        "num_devices": processes.num_devices(),
        "device_kind": _device_kind(),
        "global_batch_size": settings.get("batch_size"),
        "seed": settings.get("seed"),
        "precision": settings.get("dtype") or keras.config.dtype_policy().name,
        "versions": software_versions(),
        "python": platform.python_version(),
        "started": _now(),
        "settings": settings,
    }


def write_run_record(output_dir, config, recipe, **extra):
    """Writes `output_dir/run.json` (the writer process only); the records
    of earlier starts go under `earlier_runs`. Returns the record."""
    path = os.path.join(output_dir, RUN_FILE)
    record = {**run_record(config, recipe), **extra}
    if os.path.isfile(path):
        previous = io.read_json(path)
        record["earlier_runs"] = previous.pop("earlier_runs", []) + [previous]
    io.write_json(path, record)
    return record


def content_hash(path):
    """sha256 of a file, or of a folder's files (names and bytes, KerasHub's
    dated metadata.json aside); None for a name that is not a path."""
    if not path or not os.path.exists(path):
        return None
    digest = hashlib.sha256()
    files = [path] if os.path.isfile(path) else sorted(
        os.path.join(root, name) for root, _, names in os.walk(path) for name in names
        if name != "metadata.json")
    for name in files:
        digest.update(os.path.relpath(name, path).encode())
        with open(name, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _flag(config, name):
    fields = {f.name: f for f in dataclasses.fields(config)}
    return "--" + (fields[name].metadata.get("flag", name) if name in fields else name)


def _changes(config, old, new, names):
    return ", ".join(f"{_flag(config, n)}={json.dumps(new.get(n))} (was {json.dumps(old.get(n))})"
                     for n in names)


def changed_settings(recorded, settings):
    """Names of the settings whose values differ."""
    return sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))


class Run:
    """The run in one output folder (see the module docstring)."""

    def __init__(self, config, recipe):
        self.config, self.recipe = config, recipe
        self.folder = os.fspath(config.output_dir)
        self.lock = RunLock(self.folder)
        self.previous = None

    def _recorded(self):
        path = os.path.join(self.folder, RUN_FILE)
        return io.read_json(path) if os.path.isfile(path) else None

    def start(self):
        if getattr(self.config, "distribution", None) == "data_parallel":
            processes.start_multi_process()  # which process writes (and locks) is known from here on
        if processes.is_writer():
            stale = self.lock.acquire()
            if stale:
                print(f"{self.recipe}: taking over the lock of {self.folder} left by pid {stale.get('pid')} "
                      f"on {stale.get('host')} (started {stale.get('started')}), no longer running")
        io.clean_interrupted_writes(self.folder)
        self.previous = self._recorded()
        return self

    def has_state(self):
        """True if the folder holds files a run continues from."""
        return io.holds_run_files(self.folder)

    def check_settings(self):
        """RunError naming each changed setting the saved state cannot
        honour; returns the names of the continuable ones that changed."""
        recorded = (self.previous or {}).get("settings")
        if recorded is None or self.config.overwrite or not self.has_state():
            return []
        settings = io.jsonable(self.config)
        changed = changed_settings(recorded, settings)
        structural = [name for name in changed if name not in CONTINUABLE]
        if structural:
            raise RunError(
                f"Expected the settings of the run in {self.folder} (--overwrite trains again, or choose "
                f"another output folder). Received: {_changes(self.config, recorded, settings, structural)}")
        return [name for name in changed if name != "output_dir"]

    def _check_recorded(self, key, value, what):
        old = (self.previous or {}).get(key)
        if old is not None and old != value and not self.config.overwrite and self.has_state():
            raise RunError(f"Expected the {what} of the run in {self.folder} (--overwrite trains again, or "
                           f"choose another output folder). Received: {json.dumps(value)} (was {json.dumps(old)})")

    def record(self, data_root=None, images=None, **extra):
        """Checks the source model and data against the recorded run, then
        writes run.json: the complete settings, the source with its content
        hash, the data root and its image count."""
        source = {name: {"path": getattr(self.config, name), "sha256": content_hash(getattr(self.config, name))}
                  for name in SOURCE_FIELDS if getattr(self.config, name, None)}
        data = {"root": os.path.abspath(os.fspath(data_root)) if isinstance(data_root, (str, os.PathLike))
                else data_root, "images": images}
        self._check_recorded("source", source or None, "source model")
        self._check_recorded("data", data, "data")
        return write_run_record(self.folder, self.config, self.recipe, source=source or None, data=data,
                                **extra)

    def resuming(self, step, total_steps, epoch):
        """Says that the run continues (`epoch`: 0-based, the one under way)."""
        if processes.is_writer():
            print(f"resuming {self.recipe} from step {step} of {total_steps} (epoch {epoch + 1}), {self.folder}")

    def summary(self, images, skipped, steps, outputs):
        """The closing line: images used and skipped, steps, outputs."""
        if processes.is_writer():
            names = ", ".join(outputs)
            print(f"{self.recipe}: trained on {images} images ({skipped} skipped), {steps} steps; "
                  f"outputs in {self.folder}: {names}")

    def finish(self):
        self.lock.release()


def _write_error(error, folder):
    cause = WRITE_ERRORS.get(getattr(error, "errno", None))
    if cause is None:
        return None
    return RunError(f"Expected to be able to write in {folder}. Received: {cause} "
                    f"({error.strerror or error}); the last complete checkpoint is kept")


@contextlib.contextmanager
def open_run(config, recipe):
    """A started `Run` (locked, cleaned) for the `with` body; releases the
    lock after it, maps write failures to one-line `RunError`s and removes
    a folder this run created and left without a file to resume from."""
    folder = os.fspath(config.output_dir)
    existed = os.path.isdir(folder)
    run = Run(config, recipe)
    try:
        yield run.start()
    except BaseException as error:
        if not existed and processes.is_writer():
            io.remove_if_nothing_to_resume(folder)
        mapped = _write_error(error, folder) if isinstance(error, OSError) else None
        if mapped is None:
            raise
        raise mapped from None
    finally:
        run.finish()


def run_recipe(config, recipe, train, finished, what_is_kept, outputs=()):
    """Runs `train(run)` in `config.output_dir`'s run (see the module
    docstring), unless the folder holds a finished run and not
    `config.overwrite`: then says so (naming the settings that differ) and
    returns `finished()`'s result (None: not finished) without training."""
    with open_run(config, recipe) as run:
        differing = run.check_settings()
        done = None if config.overwrite else finished()
        if done is not None:
            differs = (f"; settings differing from the recorded run: "
                       f"{_changes(config, run.previous['settings'], io.jsonable(config), differing)}"
                       if differing else "")
            print(f"{recipe}: {run.folder} holds a finished run ({what_is_kept}); nothing to do{differs} "
                  "(--overwrite trains again, a larger --epochs continues).")
            return done
        if config.overwrite:
            io.remove_paths(run.folder, outputs)
        with distribution_scope(config.distribution):
            return train(run)

