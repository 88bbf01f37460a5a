"""Thin wrapper: see keras_pass/cli/extract.py (`python tools/extract_features.py --help`)."""

from keras_pass.cli.main import example_main

if __name__ == "__main__":  # `keras-pass extract ...`: one-line errors, exit 2 on bad input
    example_main("extract")
