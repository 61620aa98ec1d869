"""``python -m verifier`` / ``vn-dcc-verify``: see :mod:`verifier.cli`."""

from __future__ import annotations

import gc
import sys

from verifier.startup import imports_without_gc

# the collector off while the command line's modules load, then everything loaded so far
# frozen out of its reach (verifier.startup): a tenth of a `verifier pdf FILE` process's CPU
with imports_without_gc(freeze=True):
    from verifier.cli import main as _cli_main


def main() -> int:
    """Console-script entry point (returns the exit code)."""
    try:
        return _cli_main()
    finally:
        # back within the collector's reach before the interpreter's final collection (a
        # frozen extension type at exit makes nanobind, zxing-cpp's binding, report leaks)
        gc.unfreeze()


if __name__ == "__main__":
    sys.exit(main())
