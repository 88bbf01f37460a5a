"""`run.json`: the writer's record of a run, so that a result can always be
traced to the hardware and software it came from.

Every recipe runs through `run_unless_finished` (idempotent re-runs, the
output folder, the distribution) and calls `write_run_record(output_dir,
config, recipe)` once its model is built (the distribution is set by then).
A resumed run puts the previous records under `earlier_runs`, so a run
continued on other hardware says so.
"""

import datetime
import platform
from importlib import metadata

import keras

from keras_pass import io
from keras_pass.backend import processes
from keras_pass.backend.distribution import distribution_scope
from keras_pass.version import __version__

RUN_FILE = "run.json"


def run_unless_finished(config, recipe, finished, train, what_is_kept):
    """Runs `train()`, unless `config.output_dir` holds a finished run and
    not `config.overwrite`: then says so and returns `finished()`'s result
    (None: not finished) without touching the folder. `train` runs in
    `io.run_folder` (a failed run leaves no empty folder behind) and in the
    config's distribution, which is unset again afterwards."""
    done = None if config.overwrite else finished()
    if done is not None:
        print(f"{recipe}: {config.output_dir} holds a finished run ({what_is_kept}); nothing to do "
              "(--overwrite trains again, a larger --epochs continues).")
        return done
    with io.run_folder(config.output_dir), distribution_scope(config.distribution):
        return train()


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
    """The record as a dict: what ran, on how many processes and devices,
    with which global batch, seed and precision."""
    settings = io.jsonable(config)
    precision = settings.get("dtype") or keras.config.dtype_policy().name
    return {
        "recipe": recipe,
        "backend": keras.config.backend(),
        "num_processes": processes.process_count(),
        "num_devices": processes.num_devices(),
        "device_kind": _device_kind(),
        "global_batch_size": settings.get("batch_size"),
        "seed": settings.get("seed"),
        "precision": precision,
        "versions": software_versions(),
        "python": platform.python_version(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def write_run_record(output_dir, config, recipe):
    """Writes `output_dir/run.json` (process 0 only, through keras_pass.io);
    returns the record."""
    import os

    path = os.path.join(output_dir, RUN_FILE)
    record = run_record(config, recipe)
    if os.path.isfile(path):
        previous = io.read_json(path)
        earlier = previous.pop("earlier_runs", [])
        record["earlier_runs"] = earlier + [previous]
    io.write_json(path, record)
    return record
