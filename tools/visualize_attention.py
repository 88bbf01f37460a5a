"""Figure 3 of the paper: [CLS] and [PART] attention maps of a backbone preset.

    python tools/visualize_attention.py PRESET IMAGES attention.png [--num-images 6]
"""

import sys

from keras_pass.cli.attention import main

if __name__ == "__main__":
    sys.exit(main())
