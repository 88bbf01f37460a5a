"""Convert an official PASS PyTorch checkpoint into a keras-pass preset.

    python tools/convert_pass_checkpoint.py CHECKPOINT.pth OUTPUT_DIR \
        [--arch vit_small|vit_base] [--image_size H,W] [--stride S]

(`keras-pass convert ...`: the same command.)
"""

from keras_pass.cli.main import example_main

if __name__ == "__main__":  # `keras-pass convert ...`: one-line errors, exit 2 on bad input
    example_main("convert")
