"""absl flags generated from a recipe's config dataclass.

Each field declared with `keras_pass.recipes.config.setting` becomes one flag
of its own `FlagValues` (no global registry: commands cannot clash); a flag
overrides the config only when it is given, so a config's `None` defaults
(e.g. "the preset's stride") survive the command line. `--help` lists the
flags grouped as the config declares them. Bad input raises ValueError with
one line, which `keras-pass` prints and exits 2 on.
"""

import ast
import dataclasses
import textwrap

from absl import flags

from keras_pass.cli.arguments import flag_spelling
from keras_pass.recipes.config import check_settings, settings


def _flag_name(field):
    return field.metadata.get("flag", field.name)


def _default(field):
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        value = field.metadata.get("cli_default")
    if value is None and "none_as" in field.metadata:
        return field.metadata["none_as"]
    return value


def _kind(field):
    meta = field.metadata
    if meta.get("literal"):
        return "literal"
    if field.type in (bool, "bool"):
        return "bool"
    if field.type in (int, "int"):
        return "int"
    if field.type in (float, "float"):
        return "float"
    if field.type in (tuple, "tuple"):
        return "list"
    return "enum" if meta.get("choices") else "string"


def _choices(field):
    """A setting's choices as the command line spells them (None as its `none_as`)."""
    meta = field.metadata
    choices = [c for c in meta["choices"] if c is not None] + ([meta["none_as"]] if "none_as" in meta else [])
    return list(dict.fromkeys(choices))


def _define(field, flag_values):
    name, default, meta = _flag_name(field), _default(field), field.metadata
    text = meta.get("help", "")
    kind = _kind(field)
    if kind == "bool":
        flags.DEFINE_boolean(name, default, text, flag_values=flag_values)
    elif kind == "int":
        flags.DEFINE_integer(name, default, text, lower_bound=meta.get("minimum"),
                             upper_bound=meta.get("maximum"), flag_values=flag_values)
    elif kind == "float":
        flags.DEFINE_float(name, default, text, lower_bound=meta.get("minimum"),
                           upper_bound=meta.get("maximum"), flag_values=flag_values)
    elif kind == "list":
        flags.DEFINE_list(name, None if default is None else [str(v) for v in default], text,
                          flag_values=flag_values)
    elif kind == "enum":
        flags.DEFINE_enum(name, default, _choices(field), text, flag_values=flag_values)
    else:
        flags.DEFINE_string(name, None if default is None else str(default), text, flag_values=flag_values)


def define_flags(config_cls):
    """A new `FlagValues` with one flag per setting of `config_cls`."""
    flag_values = flags.FlagValues()
    for field in settings(config_cls):
        _define(field, flag_values)
    return flag_values


def _convert(field, value):
    meta = field.metadata
    if "none_as" in meta and value == meta["none_as"]:
        return None
    kind = _kind(field)
    if kind == "list":
        item = meta.get("item", int)
        try:
            return tuple(item(v) for v in value)
        except ValueError:
            raise ValueError(f"Expected {item.__name__} values for --{_flag_name(field)}. "
                             f"Received: --{_flag_name(field)}={','.join(value)}") from None
    if kind == "literal":
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value  # a bare word, e.g. "auto" or "none"
    return value


def parse_config(config_cls, argv, command):
    """`config_cls` from command-line arguments (without the program name)."""
    flag_values = define_flags(config_cls)
    try:
        rest = flag_values([command, *flag_spelling(argv)])
    except flags.Error as error:
        raise ValueError(str(error).splitlines()[0]) from None
    if len(rest) > 1:
        raise ValueError(f"Expected only --flag=value arguments. Received: {rest[1:]}")
    values = {}
    for field in settings(config_cls):
        flag = flag_values[_flag_name(field)]
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if flag.present:
            values[field.name] = _convert(field, flag.value)
        elif required:
            if "cli_default" not in field.metadata:
                raise ValueError(f"Expected --{_flag_name(field)} (required). Received: no value")
            values[field.name] = field.metadata["cli_default"]
    config = config_cls(**values)
    check_settings(config)
    return config


def grouped_help(command, config_cls, doc=None):
    """`keras-pass COMMAND --help`: the flags by group, with defaults."""
    lines = [f"usage: keras-pass {command} [--flag=value ...]"]
    if doc:
        lines += ["", textwrap.dedent(doc).strip()]
    groups = {}
    for field in settings(config_cls):
        groups.setdefault(field.metadata.get("group", "general"), []).append(field)
    for group, fields in groups.items():
        lines += ["", f"{group}:"]
        for field in fields:
            default = _default(field)
            shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
            choices = _choices(field) if field.metadata.get("choices") else None
            extra = f" (one of {', '.join(map(str, choices))})" if choices else ""
            lines.append(f"  --{_flag_name(field)}: {field.metadata.get('help', '')}{extra}")
            lines.append(f"      (default: {'required' if shown is None and field.default is dataclasses.MISSING else shown})")
    return "\n".join(lines)


_HELP = ("-h", "--help", "-help", "--helpshort", "--helpfull")


def run_config_command(command, config_cls, recipe, argv, doc=None):
    """Parses `argv` into `config_cls`, runs `recipe(config)`; returns 0."""
    if any(arg in _HELP for arg in argv):
        print(grouped_help(command, config_cls, doc))
        return 0
    recipe(parse_config(config_cls, list(argv), command))  # its run folder: `keras_pass.runs`
    return 0
