"""Many written files made durable at once: one ``syncfs(2)`` instead of an ``fdatasync`` per file.

    >>> # flusher = Flusher(folder)            # before the files are written
    >>> # ... write and close the files ...
    >>> # flusher.flush([(path, size), ...])   # on disk, or OSError
    >>> # flusher.close()

A ledger run writes two or three small files per record (HC1 text, QR PNG,
a PDF with ``--pdf``) and may place them only once they are on disk. One
``fdatasync`` per file, 16 threads at a time, cost about 2.5 s of system
time and 14 thread switches per record in a 20,000-record run, and with
``--jobs 2`` held the two processes to 1.8 of the 2 cores (docs/benchmarks.md,
session 11). ``syncfs`` on a descriptor of a folder writes back every dirty
file of that file system in one call (the kernel's flusher threads merge
the writes and the journal commits) and, since Linux 5.8, returns a
write-back error of any of its files that happened since the descriptor was
opened or since its last ``syncfs``. So a :class:`Flusher` opens its
descriptor *before* its files are written; each has its own (two processes
or threads that flush the same files each see every error).

What it costs: everything dirty on that file system is written, not only
the run's files (another program's writes too), and an error in any file
of the file system fails the flush, which stops the run (a retry succeeds
when the error was not the run's). Where ``syncfs`` cannot report errors
(not Linux, a kernel before 5.8, a C library without it), or with
``VNDCC_FLUSH=files`` in the environment (a file system shared with busy
writers), each file gets its own ``fdatasync``, :data:`SYNC_THREADS` at a
time (the file system merges their journal commits).

A failed flush is sticky: the kernel reports an error once per descriptor,
and every file written since the last good flush may be lost, so every
later :meth:`Flusher.flush` raises the same error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from signer.pagecache import forget

#: The environment variable that chooses how files are flushed: ``files``
#: (one fdatasync each), anything else or unset: one syncfs where it reports errors.
FLUSH_ENV = "VNDCC_FLUSH"
#: Threads that flush files one by one together (the file system merges their
#: journal commits; one after the other costs ~4 ms per file).
SYNC_THREADS = 16
#: Files of at least this many bytes (a PDF passport: ~53 KB; not the QR PNG
#: or the HC1 text, ~2 KB together) leave the page cache once flushed: on the
#: virtual machines this runs on, a page the kernel hands out for the first
#: time in a while costs far more system time than one freed moments before
#: (signer.pagecache; --pdf, 3,000 records: median -0.15 s of system time of
#: ~1.2). Small files stay: a run after a kill reads them back to adopt them.
DROP_BYTES = 32 << 10


def _libc_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` when the kernel reports write-back errors through it (Linux 5.8 and later)."""
    if os.uname().sysname != "Linux":
        return None
    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    if found is None or (int(found[1]), int(found[2])) < (5, 8):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
    return function


_SYNCFS = _libc_syncfs()


def per_file() -> bool:
    """Files are flushed one by one (no syncfs that reports errors, or ``VNDCC_FLUSH=files``)."""
    return _SYNCFS is None or os.environ.get(FLUSH_ENV, "") == "files"


def syncfs(fd: int) -> None:
    """``syncfs(fd)`` (the GIL released meanwhile). Raises ``OSError``."""
    assert _SYNCFS is not None
    if _SYNCFS(fd) != 0:
        code = ctypes.get_errno() or errno.EIO
        raise OSError(code, os.strerror(code))


def fdatasync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def fdatasync_paths(paths: Sequence[str]) -> None:
    """``fdatasync`` each file, :data:`SYNC_THREADS` at a time. Raises the first ``OSError``."""
    if len(paths) == 1:
        fdatasync_path(paths[0])
    elif paths:
        with ThreadPoolExecutor(min(SYNC_THREADS, len(paths)), thread_name_prefix="fdatasync") as pool:
            list(pool.map(fdatasync_path, paths))


def flush_files(fd: int, paths: Sequence[str], one_by_one: bool) -> None:
    """The files at ``paths`` (on the file system of the folder open as
    ``fd``, opened before they were written) to disk: ``syncfs(fd)``, or an
    ``fdatasync`` each when ``one_by_one``. Raises ``OSError``."""
    if one_by_one:
        fdatasync_paths(paths)
    else:
        syncfs(fd)


class Flusher:
    """Flushes files written in or under ``folder`` after it was made (see the
    module's text); :meth:`flush` from one thread at a time."""

    def __init__(self, folder: str | Path) -> None:
        self.one_by_one = per_file()
        self._fd: int | None = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        #: the first failed flush's error: every later flush raises it again
        self.error: OSError | None = None

    def flush(self, files: Sequence[tuple[str, int]]) -> None:
        """Every file written since this flusher was made (``files``: those
        this caller needs, as (path, size)) to disk, then the large ones out of
        the page cache. Raises ``OSError``, and again on every later call."""
        if self.error is not None:
            raise OSError(self.error.errno, self.error.strerror)
        if self._fd is None:
            raise OSError(errno.EBADF, "flusher closed")
        try:
            flush_files(self._fd, [path for path, _ in files], self.one_by_one)
        except OSError as err:
            self.error = err
            raise
        for path, size in files:
            if size >= DROP_BYTES:
                forget_path(path)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Flusher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def forget_path(path: str) -> None:
    """Drop a flushed file's pages from the page cache (nothing where that cannot be done)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            forget(fd)
        finally:
            os.close(fd)


def flush_written(paths: Sequence[str]) -> None:
    """Files another process wrote (a killed run's, adopted) to disk: a
    write-back error of theirs not yet reported to anyone is reported to a
    descriptor opened now, as with ``fdatasync``. Raises ``OSError``."""
    if paths:
        with Flusher(os.path.dirname(paths[0]) or ".") as flusher:
            flusher.flush([(path, 0) for path in paths])
