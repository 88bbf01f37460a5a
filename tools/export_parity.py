"""Export parity table: max abs feature difference of each export format.

    KERAS_BACKEND=tensorflow python tools/export_parity.py --arch vit_small [--formats onnx litert]

Exports a randomly initialised backbone and a `ReIDModel` on it (BNNeck
test feature "before") with `export_feature_extractor`, normalised and raw
(uint8) input, and prints the difference to the Keras model on batches of
1 and 5 (the check the `export` command fails on above 1e-4) and the
export time.
"""

import argparse
import os
import tempfile
import time

from keras_pass.models.backbone import PASSBackbone
from keras_pass.deploy.export import FORMATS, export_feature_extractor
from keras_pass.models.configs import ARCHITECTURES
from keras_pass.reid.model import ReIDModel

SUFFIX = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", default="vit_small", choices=sorted(ARCHITECTURES))
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    args = parser.parse_args(argv)
    backbone = PASSBackbone.from_arch(args.arch)
    models = {"backbone": backbone, "ReIDModel": ReIDModel(backbone, num_classes=751)}
    print("| model | format | input | max abs difference (batch 1 and 5) | export + check (s) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            for format in args.formats:
                for raw_input in (False, True):
                    path = os.path.join(folder, f"{name}_{format}_{raw_input}{SUFFIX[format]}")
                    start = time.perf_counter()
                    worst = export_feature_extractor(model, path, format, raw_input)
                    seconds = time.perf_counter() - start
                    kind = "uint8, any size" if raw_input else "normalised float32"
                    print(f"| {args.arch} {name} | {format} | {kind} | {worst:.1e} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
