"""Settings declared once: `setting(default, help, ...)` is a dataclass field
whose metadata the command line reads (`keras_pass.cli.config_flags`), so
every setting of a recipe config is a flag with its help, group and checks.

Metadata keys: `help`; `group` (the `--help` section); `choices`; `item`
(element type of tuple settings); `length` (their required length);
`flag` (the flag name when it differs from the field's); `none_as` (the flag
value meaning None, e.g. --precision=float32 for dtype None); `literal`
(the value is a Python literal: dicts, lists, "auto"/ints); `cli_default`
(the command's default where the field has none, e.g. output_dir);
`minimum` (numbers: the smallest accepted value).
"""

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
    its declared choices, minimum or tuple length."""
    for field in settings(type(config)):
        value, meta = getattr(config, field.name), field.metadata
        if value is None:
            continue
        if meta.get("choices") and value not in meta["choices"]:
            raise ValueError(f"Expected {field.name} in {tuple(meta['choices'])}. "
                             f"Received: {field.name}={value!r}")
        if "minimum" in meta and isinstance(value, (int, float)) and not isinstance(value, bool):
            if value < meta["minimum"]:
                raise ValueError(f"Expected {field.name} >= {meta['minimum']}. Received: {field.name}={value}")
        if "length" in meta and len(value) != meta["length"]:
            raise ValueError(f"Expected {meta['length']} values for {field.name}. "
                             f"Received: {field.name}={value}")
