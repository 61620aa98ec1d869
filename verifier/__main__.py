"""``python -m verifier`` / ``vn-dcc-verify``: see :mod:`verifier.cli`.

With ``VNDCC_VERIFY_DAEMON`` set (a socket path, or ``1`` for the default one)
``pdf`` and ``qr`` are first sent to a running ``python -m verifier daemon``
(:mod:`verifier.daemon`): nothing heavy is imported before that, so a served
command costs this process only the interpreter's start.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Console-script entry point (returns the exit code)."""
    if os.environ.get("VNDCC_VERIFY_DAEMON"):
        from verifier.daemon import client_main

        code = client_main(sys.argv[1:])
        if code is not None:
            return code
    from verifier.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
