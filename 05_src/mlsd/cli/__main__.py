"""``python -m mlsd.cli``: the same as the ``mlsd`` command."""

import sys

from mlsd.cli import main

if __name__ == "__main__":
    sys.exit(main())
