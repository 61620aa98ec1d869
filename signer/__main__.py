"""``python -m signer`` / ``vn-dcc-sign``: see :mod:`signer.cli`."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from signer.cli import main as run_command


def main() -> int:
    """Console-script entry point: the command, then the end of the process
    (:func:`end`); returns the exit code when the usual exit is to follow."""
    code = run_command()
    end(code)
    return code


def end(code: int) -> None:
    """End the process as the interpreter's exit would, without its last
    garbage collection and the freeing of every object: after a batch run,
    ~50 ms and ~3,000 page faults (the run's pages, shared with its workers
    since their fork, stay write-protected: the teardown's first write to
    each takes a fault), in a 100,000-record run's resume of ~6 s.

    Only when no other thread runs (else this returns and the usual exit
    joins them); what was registered to run at exit runs first (logging's
    flush, multiprocessing's and temporary folders' clean-up), and the
    standard streams are flushed (an error there returns: the usual exit
    reports it). Every file the commands write is closed or flushed by them
    before they return."""
    if threading.active_count() != 1:
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
