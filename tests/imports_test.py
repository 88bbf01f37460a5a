"""The import structure: no circles and no import from a lower layer to a
higher one, read from the source (every `import`, in-function ones too)."""

import ast
import os

import pytest

from tests.helpers import once_under_tensorflow

# Reads the source's import statements, runs none of it: the backend cannot change what is checked
# here.
pytestmark = once_under_tensorflow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first. A module may import its own layer and the ones before it;
# a package's `__init__` belongs to the layer of its package.
LAYERS = (
    ("keras_pass.errors", "keras_pass.version", "keras_pass.startup", "keras_pass.backend"),
    ("keras_pass.finite",),
    ("keras_pass.io",),
    ("keras_pass.checkpoint", "keras_pass.runs"),
    ("keras_pass.plots",),
    ("keras_pass.data",),
    ("keras_pass.models",),
    ("keras_pass.pretraining", "keras_pass.reid", "keras_pass.uda"),
    ("keras_pass.loading",),
    ("keras_pass.recipes",),
    ("keras_pass.deploy", "keras_pass.cli"),
    ("keras_pass", "keras_pass.__main__"),
    ("tools", "examples"),
    ("tests",),
)
TREES = ("keras_pass", "tools", "examples", "tests")


def layer_of(module):
    for rank, names in enumerate(LAYERS):
        if module in names:
            return rank
    parent = module.rpartition(".")[0]
    if not parent:
        raise AssertionError(f"Expected {module} in LAYERS")
    return layer_of(parent)


def module_name(path):
    parts = os.path.relpath(path, REPO_ROOT)[: -len(".py")].split(os.sep)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules():
    for tree in TREES:
        for folder, _, names in os.walk(os.path.join(REPO_ROOT, tree)):
            for name in sorted(names):
                if name.endswith(".py"):
                    yield module_name(os.path.join(folder, name)), os.path.join(folder, name)


MODULES = dict(_modules())


def _target(module, name):
    """`module.name` when that is a module of ours, else `module`."""
    return f"{module}.{name}" if f"{module}.{name}" in MODULES else module


def imports_of(module, path):
    """The modules of ours that `module` imports, anywhere in its body."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.update(_target(base, alias.name) for alias in node.names)
    return {name for name in found if name.split(".")[0] in TREES and name != module}


GRAPH = {module: imports_of(module, path) for module, path in MODULES.items()}


def test_every_module_is_in_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    upward = sorted(f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
                    if target in MODULES and layer_of(target) > layer_of(module))
    assert upward == []


def test_no_import_circles():
    state, circles = {}, []

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(GRAPH.get(module, ())):
            if state.get(target) == "open":
                circles.append(" -> ".join(stack[stack.index(target):] + [target]))
            elif target in GRAPH and target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_every_import_names_a_module_that_exists():
    missing = sorted(f"{module} -> {target}" for module, targets in GRAPH.items() for target in targets
                     if target not in MODULES and target.rpartition(".")[0] not in MODULES)
    assert missing == []


@pytest.mark.parametrize("module, expected", [("keras_pass.models.backbone", 6), ("keras_pass.cli.main", 10),
                                              ("tests.imports_test", 13)])
def test_layer_of(module, expected):
    assert layer_of(module) == expected
