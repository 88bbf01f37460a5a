"""Figure 3 of the paper: [CLS] and [PART] attention maps of a backbone preset.

    python tools/visualize_attention.py PRESET IMAGES attention.png [--num-images 6]
"""

from keras_pass.cli.main import example_main

if __name__ == "__main__":  # `keras-pass attention ...`: one-line errors, exit 2 on bad input
    example_main("attention")
