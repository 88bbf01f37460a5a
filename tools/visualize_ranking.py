"""Thin wrapper: see keras_pass/cli/visualize.py (`python tools/visualize_ranking.py --help`)."""

from keras_pass.cli.main import example_main

if __name__ == "__main__":  # `keras-pass visualize ...`: one-line errors, exit 2 on bad input
    example_main("visualize")
