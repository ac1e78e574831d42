"""python -m training.ml ... (see training.ml.cli)."""

import sys

from training.ml.cli import main

if __name__ == "__main__":
    sys.exit(main())
