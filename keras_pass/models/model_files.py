"""Checks of model files (presets, `.pth`, `.keras`) before they are read:
one ValueError line naming the file and what is wrong with it (missing,
unreadable, truncated or corrupt, wrong kind)."""

import os


def file_error(path, expected, reason, name="source"):
    """`ValueError("Expected {expected}. Received: {name}={path} ({reason})")`."""
    return ValueError(f"Expected {expected}. Received: {name}={os.fspath(path)} ({reason})")


def check_file(path, expected, name="source"):
    """`path` when it is a readable file; the `file_error` of what it is otherwise."""
    if os.path.isdir(path):
        raise file_error(path, expected, "a folder, not a file", name)
    if not os.path.exists(path):
        raise file_error(path, expected, "no such file", name)
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        raise file_error(path, expected, f"unreadable: {error.strerror or error}", name) from None
    return path
