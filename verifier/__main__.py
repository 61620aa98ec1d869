"""``python -m verifier`` / ``vn-dcc-verify``: see :mod:`verifier.cli`."""

from __future__ import annotations

import sys

from verifier.cli import main as _cli_main


def main() -> int:
    """Console-script entry point (returns the exit code)."""
    return _cli_main()


if __name__ == "__main__":
    sys.exit(main())
