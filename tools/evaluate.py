"""Thin wrapper: see keras_pass/cli/evaluate.py (`python tools/evaluate.py --help`)."""

from keras_pass.cli.main import example_main

if __name__ == "__main__":  # `keras-pass evaluate ...`: one-line errors, exit 2 on bad input
    example_main("evaluate")
