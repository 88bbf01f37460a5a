"""Convert an official PASS PyTorch checkpoint into a keras-pass preset.

    python tools/convert_pass_checkpoint.py CHECKPOINT.pth OUTPUT_DIR \
        --arch vit_small|vit_base [--image-size H W] [--stride S]
"""

import sys

from keras_pass.cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
