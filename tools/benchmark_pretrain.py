"""Images/s of one PASS pre-training step (ViT-S/16, 2 x 256x128 + 9 x 128x64
crops, batch 8) on the current backend, median of >= 10 steps after warm-up,
and the multi-crop data pipeline's speed alone.

    KERAS_BACKEND=tensorflow python tools/benchmark_pretrain.py [--steps 10] [--official-repo PATH]

Same as `python tools/benchmark.py pretrain data ...` (all options apply).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchmark import main  # noqa: E402

if __name__ == "__main__":
    main(["pretrain", "data", *sys.argv[1:]])
