"""Settings declared once: `setting(default, help, ...)` is a dataclass field
whose metadata the command line reads (`keras_pass.cli.config_flags`), so
every setting of a recipe config is a flag with its help, group and checks.

Metadata keys: `help`; `group` (the `--help` section); `choices`; `item`
(element type of tuple settings); `length` (their required length);
`flag` (the flag name when it differs from the field's); `none_as` (the flag
value meaning None, e.g. --precision=float32 for dtype None); `literal`
(the value is a Python literal: dicts, lists, "auto"/ints); `cli_default`
(the command's default where the field has none, e.g. output_dir);
`minimum` / `maximum` (numbers, and each item of tuple settings: the
smallest / largest accepted value); `output` (a folder the recipe writes:
it may not exist yet, but nothing above it may be a file).

A config class may define `check(self)`: its cross-field checks (e.g. a
crop no larger than the image), raising ValueError; `check_settings` runs
it after the per-setting checks.
"""

import math
import os

import dataclasses

_MISSING = dataclasses.MISSING


def setting(default=_MISSING, help="", group="general", **metadata):
    """A dataclass field carrying its command-line description."""
    metadata = {"help": help, "group": group, **metadata}
    if default is _MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def settings(config_cls):
    """The fields of a config class, in declaration order."""
    return dataclasses.fields(config_cls)


def check_settings(config):
    """ValueError ("Expected ... Received: name=value") for a setting outside
    its declared choices, range or tuple length, then the config's `check`."""
    for field in settings(type(config)):
        value, meta = getattr(config, field.name), field.metadata
        name = meta.get("flag", field.name)  # what the user typed
        if value is None:
            continue
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"Expected {name} in {tuple(meta['choices'])}. "
                             f"Received: {name}={value!r}")
        if "length" in meta and len(value) != meta["length"]:
            raise ValueError(f"Expected {meta['length']} values for {name}. "
                             f"Received: {name}={value}")
        for item in value if isinstance(value, tuple) else (value,):
            _check_range(name, item, meta, value)
        if meta.get("output"):
            check_output_folder(name, value)
    if hasattr(config, "check"):
        config.check()


def _check_range(name, item, meta, value):
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return
    if isinstance(item, float) and math.isnan(item):
        raise ValueError(f"Expected {name} a number. Received: {name}={value}")
    if "minimum" in meta and item < meta["minimum"]:
        raise ValueError(f"Expected {name} >= {meta['minimum']}. Received: {name}={value}")
    if "maximum" in meta and item > meta["maximum"]:
        raise ValueError(f"Expected {name} <= {meta['maximum']}. Received: {name}={value}")


def check_output_folder(name, path):
    """ValueError when folder `path` cannot be created: it, or the nearest
    existing folder above it, is a file."""
    existing = os.path.abspath(os.fspath(path))
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ValueError(f"Expected {name} a folder (or a path to create one). "
                         f"Received: {name}={path} ({existing} is a file)")


def check_pk_batch(batch_size, num_instances):
    """P x K batches: `batch_size` a multiple of `num_instances`."""
    if batch_size % num_instances or batch_size < num_instances:
        raise ValueError(f"Expected batch_size a multiple of num_instances (P x K). "
                         f"Received: batch_size={batch_size}, num_instances={num_instances}")


def check_crop_fits(local_size, image_size):
    """Local crops no larger than the global ones."""
    if local_size and image_size and any(low > high for low, high in zip(local_size, image_size)):
        raise ValueError(f"Expected local_size <= image_size. Received: local_size="
                         f"{','.join(map(str, local_size))}, image_size={','.join(map(str, image_size))}")
