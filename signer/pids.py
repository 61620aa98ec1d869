"""Whether a process of this machine may still be running, from its pid.

    >>> from signer.pids import pid_alive
    >>> pid_alive(os.getpid())                                              # doctest: +SKIP
    True
"""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """False only when no process has ``pid`` (signal 0 finds none); another user's process, or a number no
    process can have, counts as alive (left alone by whoever asks)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
