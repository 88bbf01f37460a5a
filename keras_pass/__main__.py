import sys

from keras_pass.cli.main import main

sys.exit(main())
