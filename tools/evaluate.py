"""Thin wrapper: see keras_pass/cli/evaluate.py (`python tools/evaluate.py --help`)."""

import sys

from keras_pass.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
