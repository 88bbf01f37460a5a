"""Thin wrapper: see keras_pass/cli/extract.py (`python tools/extract_features.py --help`)."""

import sys

from keras_pass.cli.extract import main

if __name__ == "__main__":
    sys.exit(main())
