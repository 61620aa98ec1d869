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
the writes and the journal commits) and returns a write-back error of any
of its files recorded since the descriptor was opened (or not yet reported
to any ``syncfs`` then) or since its last ``syncfs``: the superblock's error
(``s_wb_err``, Linux 5.8), and the file system's own sync errors (a journal
commit) since Linux 5.17. So a :class:`Flusher` opens its descriptor *before*
its files are written; each has its own (two processes or threads that
flush the same files each see every error).

Where it is used: only on Linux 5.17 or later, and only on file systems
whose write-back errors reach the superblock ``syncfs`` checks (ext2/3/4,
XFS, Btrfs; tmpfs, which has nothing to flush). On overlayfs (a container's
writable layer) the error lands on the upper file system and ``syncfs``
through the overlay returns 0 (review11 F2, reproduced on 6.18); NFS, FUSE
and the rest are not known to report: all of those, older kernels, other
systems, or ``VNDCC_FLUSH=files`` in the environment (a file system shared
with busy writers: ``syncfs`` writes back everything dirty on it) get one
``fdatasync`` per file, :data:`SYNC_THREADS` at a time.

What it costs: everything dirty on that file system is written, not only
the run's files; and an unreported error of any file of the file system,
another program's too, fails the flush (the run stops: "cannot write into
DIR: ... a write-back error on this file system"; once the disk is
checked, the same command goes on).

A failed flush is sticky: the kernel reports an error once per descriptor,
and every file written since the last good flush may be lost, so every
later :meth:`Flusher.flush` raises the same error. Files another process
wrote (a killed run's, adopted by the next) get one ``fdatasync`` each
(:func:`flush_written`): their error may have been reported to that run's
``syncfs`` already, but the file keeps its own until an ``fdatasync`` of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
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


#: ``statfs.f_type`` of the file systems whose write-back errors ``syncfs`` reports.
SYNCFS_REPORTS = {
    0xEF53: "ext2/ext3/ext4",
    0x58465342: "xfs",
    0x9123683E: "btrfs",
    0x01021994: "tmpfs",  # nothing to write back, nothing to miss
}


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()  # the process's C library (its syncfs and fstatfs), loaded once


def _libc_syncfs() -> Callable[[int], int] | None:
    """libc's ``syncfs`` when the kernel reports write-back and sync errors through it (Linux 5.17 and later)."""
    if os.uname().sysname != "Linux":
        return None
    found = re.match(r"(\d+)\.(\d+)", os.uname().release)
    if found is None or (int(found[1]), int(found[2])) < (5, 17):
        return None
    function = getattr(_LIBC, "syncfs", None)
    if function is None:
        return None
    function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
    return function  # type: ignore[no-any-return]


_SYNCFS = _libc_syncfs()


def fs_type(fd: int) -> int | None:
    """``statfs.f_type`` of the file system of ``fd`` (Linux), or None. Read as
    the first ``long`` of ``struct statfs`` (x86-64, arm64 and the other
    64-bit Linux ABIs); where that is not ``f_type`` (s390x) or ``fstatfs``
    fails (EOVERFLOW on a 32-bit build), the value is not on the list and the
    files are flushed one by one: slower, never unsafe."""
    fstatfs = getattr(_LIBC, "fstatfs", None)
    if fstatfs is None:
        return None
    buffer = ctypes.create_string_buffer(256)  # struct statfs: 120 bytes on 64-bit Linux; f_type first
    if fstatfs(fd, buffer) != 0:
        return None
    return ctypes.c_ulong.from_buffer(buffer).value & 0xFFFFFFFF


def per_file(fd: int) -> bool:
    """Files on the file system of ``fd`` are flushed one by one: no ``syncfs``
    that reports errors, ``VNDCC_FLUSH=files``, or a file system not known to
    report its errors to ``syncfs``."""
    if _SYNCFS is None or os.environ.get(FLUSH_ENV, "") == "files":
        return True
    return fs_type(fd) not in SYNCFS_REPORTS


#: Said with a failed ``syncfs``: the error may not be the run's.
SYNCFS_HINT = (
    "a write-back error on this file system: this run's files or another program's; "
    "check the disk, then run the same command again"
)


def syncfs(fd: int) -> None:
    """``syncfs(fd)`` (the GIL released meanwhile). Raises ``OSError``."""
    assert _SYNCFS is not None
    if _SYNCFS(fd) != 0:
        code = ctypes.get_errno() or errno.EIO
        raise OSError(code, f"{os.strerror(code)} ({SYNCFS_HINT})")


def fdatasync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


def fdatasync_paths(paths: Sequence[str]) -> None:
    """``fdatasync`` each file, :data:`SYNC_THREADS` at a time. Raises the
    first ``OSError`` as soon as it comes, without waiting for the flushes
    still under way (on a failing disk each can take the device's timeout,
    tens of seconds): the caller drops what names the files at once (a
    stager's journal) rather than after them (review11-followup F1b)."""
    if len(paths) == 1:
        fdatasync_path(paths[0])
    elif paths:
        pool = ThreadPoolExecutor(min(SYNC_THREADS, len(paths)), thread_name_prefix="fdatasync")
        try:
            for future in as_completed([pool.submit(fdatasync_path, path) for path in paths]):
                future.result()
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


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
        self._fd: int | None = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.one_by_one = per_file(self._fd)
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
    """Files another process wrote (a killed run's, adopted) to disk: one
    ``fdatasync`` each, never ``syncfs``. A write-back error of such a file
    may have been reported to that run's ``syncfs`` already (any process's
    ``syncfs`` sees every file's error), after which a new descriptor's
    ``syncfs`` returns 0; the file's own error stays until an ``fdatasync``
    of it (review11 F1: adopted files whose bytes never reached the disk).
    Raises ``OSError``."""
    fdatasync_paths(paths)
