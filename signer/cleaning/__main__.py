"""``python -m signer.cleaning check|synth``: see :mod:`signer.cleaning.cli`."""

from __future__ import annotations

import sys

from signer.cleaning.cli import main

if __name__ == "__main__":
    sys.exit(main())
