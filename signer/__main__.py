"""``python -m signer`` / ``vn-dcc-sign``: see :mod:`signer.cli`."""

from __future__ import annotations

import sys

from signer.cli import main

if __name__ == "__main__":
    sys.exit(main())
