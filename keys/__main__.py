"""``python -m keys``: the national PKI command line (see :mod:`keys.cli`)."""

from __future__ import annotations

import sys

from keys.cli import main

if __name__ == "__main__":
    sys.exit(main())
