"""`keras-pass export MODEL OUTPUT --format {tf_saved_model,onnx,litert} [--client boxmot]`.

MODEL: a backbone preset (name or folder), a fine-tuned `.keras` model or an
official `.pth`. Writes the feature extractor (dynamic batch), reloads it
with its own runtime (TensorFlow alone, onnxruntime, the LiteRT interpreter),
prints the max abs difference to the Keras model on batches of 1 and 5 and
fails above 1e-4. Outputs are raw test features unless `--l2-normalize`.
`--client boxmot` writes BoxMOT's input layout and preprocessing and its
metadata sidecar. An existing OUTPUT is replaced (atomically) only with
`--overwrite`. Exports are written by the TensorFlow backend: under
another backend the command re-runs itself with KERAS_BACKEND=tensorflow.
"""

import os
import subprocess
import sys

from keras_pass.cli.arguments import ArgumentParser
from keras_pass.deploy.export import CLIENTS, FORMATS, check_overwrite, export_feature_extractor
from keras_pass.loading import load_model
from keras_pass.models.presets import PASS_PRESETS


def build_parser():
    parser = ArgumentParser(prog="keras-pass export", description=__doc__.split("\n")[0])
    parser.add_argument("model", help="preset name or folder, fine-tuned .keras, or official .pth")
    parser.add_argument("output", help="folder (tf_saved_model) or file (.onnx, .tflite) to write")
    parser.add_argument("--format", choices=FORMATS, default="tf_saved_model")
    parser.add_argument("--raw_input", action="store_true",
                        help="bake resize + the preset's normalisation in: uint8 RGB images of any size")
    parser.add_argument("--weights", help="a .weights.h5 to load into a .keras model")
    parser.add_argument("--client", choices=[c for c in CLIENTS if c],
                        help="a tracker's input layout, preprocessing and metadata (boxmot: onnx or litert)")
    parser.add_argument("--l2_normalize", action="store_true",
                        help="unit-length output features (default: the model's raw test feature)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing OUTPUT atomically")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    import keras

    if not os.path.exists(args.model) and args.model not in PASS_PRESETS:  # before a second process
        raise ValueError(f"Expected a preset name or an existing model file or folder. "
                         f"Received: model={args.model}")

    check_overwrite(args.output, args.overwrite)  # before loading anything or a second process
    if keras.config.backend() != "tensorflow":
        print(f"export: writing with the TensorFlow backend (this process runs {keras.config.backend()})")
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        return subprocess.run([sys.executable, "-m", "keras_pass", "export", *argv], env=env).returncode

    model = load_model(args.model, weights=args.weights)
    worst = export_feature_extractor(model, args.output, args.format, args.raw_input, verbose=True,
                                     client=args.client, l2_normalize=args.l2_normalize,
                                     overwrite=args.overwrite)
    client = f", for {args.client}" if args.client else ""
    print(f"wrote {args.output} ({args.format}{client}; max abs difference {worst:.2e} <= 1e-4)")
    return 0
