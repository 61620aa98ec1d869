"""Files and directories that hold personal data, created readable by their owner only.

    >>> from signer.cleaning.private import open_private
    >>> with open_private(out / "verified.jsonl", "w", encoding="utf-8") as fh:   # doctest: +SKIP
    ...     fh.write(line)

Everything ``signer check`` writes (verified records, reconciliation lists,
the registry index, the results store, scratch files) names citizens, so it
is created with mode 0600 (directories 0700), as the signed passports are:
the mode is given when the file is created (``os.open``), never set by a
``chmod`` afterwards, so there is no moment when another user can open it.
The process umask can only remove bits from these modes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def _opener(path: str, flags: int) -> int:
    return os.open(path, flags, FILE_MODE)


def open_private(path: str | Path, mode: str = "w", **kwargs: Any) -> IO[Any]:
    """``open()`` that creates a missing file with mode 0600 (an existing file keeps its mode)."""
    return open(path, mode, opener=_opener, **kwargs)


def create_private(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (e.g. before SQLite opens it)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))


def connect_private(path: str | Path, **kwargs: Any) -> sqlite3.Connection:
    """``sqlite3.connect`` on a file created 0600 if missing (SQLite gives its -wal/-shm the same mode)."""
    create_private(path)
    conn: sqlite3.Connection = sqlite3.connect(path, **kwargs)
    return conn


def make_private_dir(path: str | Path) -> None:
    """Create a directory (and missing parents) with mode 0700; an existing one is left as it is."""
    Path(path).mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
