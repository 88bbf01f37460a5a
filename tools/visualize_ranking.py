"""Thin wrapper: see keras_pass/cli/visualize.py (`python tools/visualize_ranking.py --help`)."""

import sys

from keras_pass.cli.visualize import main

if __name__ == "__main__":
    sys.exit(main())
