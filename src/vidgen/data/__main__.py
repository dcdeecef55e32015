"""``python -m vidgen.data``: the same as the ``vidgen-data`` console script."""

import sys

from vidgen.data.cli import main

sys.exit(main())
