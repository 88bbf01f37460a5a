"""What runs before Keras loads (standard library only): `import keras_pass`
calls `prepare` first, since `keras-pass` and `python -m keras_pass` import
the package, and with it Keras and TensorFlow, before any command runs.

- An unknown `KERAS_BACKEND` is one line naming it and the backends, exit
  status 2, instead of Keras' traceback at `import keras`.
- TensorFlow's C++ start-up lines (oneDNN, `cudart_stub`, `cuInit`,
  `cpu_feature_guard`) are left out. `TF_CPP_MIN_LOG_LEVEL` (default here:
  3, as the user's own value wins) silences TensorFlow's later C++ lines but
  not those written while its libraries load, before absl logging is set up:
  those are dropped by level from a capture of stderr around
  `import tensorflow` (everything else captured is written back; an import
  that fails writes back everything).
"""

import os
import re
import sys
import tempfile

BACKENDS = ("jax", "tensorflow", "torch", "numpy", "openvino")  # Keras 3's; keras-pass is tested on the first two

# absl's lines before `absl::InitializeLog()`: "I0000 00:00:1796684511.044675    6421 port.cc:153] ..."
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+ +\d+ \S+:\d+\] ")
_ABSL_HEADER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_CPU_FEATURES_CONTINUATION = "To enable the following instructions:"
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def check_backend():
    """Raises ValueError when `KERAS_BACKEND` names no Keras backend (empty:
    Keras' default, as Keras reads it)."""
    backend = os.environ.get("KERAS_BACKEND")
    if backend and backend not in BACKENDS:
        raise ValueError(f"Expected KERAS_BACKEND one of {', '.join(BACKENDS)} (keras-pass is tested on jax "
                         f"and tensorflow). Received: KERAS_BACKEND={backend}")


def prepare():
    """`check_backend` (one line, exit 2), then TensorFlow imported quietly."""
    try:
        check_backend()
    except ValueError as error:
        print(f"keras-pass: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    level = int(level) if level.isdigit() else 0  # TensorFlow's own reading of a non-number
    if "tensorflow" not in sys.modules and level > 0:
        _import_tensorflow_without_start_up_lines(level)


def start_up_line(line, level):
    """Whether `line` is TensorFlow's start-up chatter below `level`."""
    match = _ABSL_LINE.match(line)
    if match:
        return _SEVERITY[match.group(1)] < level
    return line.startswith((_ABSL_HEADER, _CPU_FEATURES_CONTINUATION))


def _import_tensorflow_without_start_up_lines(level):
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        failed = True
        try:
            import tensorflow  # noqa: F401

            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if failed or not start_up_line(line, level)))
            sys.stderr.flush()
