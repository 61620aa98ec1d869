"""Big output files written without growing the page cache: written pages are flushed and dropped behind.

    >>> from signer.pagecache import DropBehind
    >>> with open_private(path, "wb") as fh, DropBehind(fh) as out:        # doctest: +SKIP
    ...     out.write(data)                                                  # doctest: +SKIP

Why: on the virtual machines this runs on, a page of memory the kernel hands
out for the first time in a while costs 2.5-7 s of system time a GB (the host
backs the guest's memory again), while a page freed moments before costs about
a tenth of that. A cleaning run of 1M people writes about 1.4 GB of files; left
in the page cache every one of those pages is a fresh one. Flushing every
:data:`STEP` bytes (``fdatasync``) and dropping what was written
(``posix_fadvise(POSIX_FADV_DONTNEED)``) keeps the cache to a few steps, whose
pages the next writes reuse: 600 MB written plainly cost 3.0-3.3 s of system
time, written this way 0.27-0.45 s, and less wall time (docs/benchmarks.md,
session 10). PostgreSQL's ``backend_flush_after`` does the same for the same
reason (many dirty pages are costly). The data is also on disk when the run
ends.

A file read back later in the same run (a worker's verified part, appended by
the main process) is then read from disk, which costs about a third of
writing it into fresh pages; :func:`copy_dropping` reads and writes it in steps
too, so both files' pages are reused.

Where ``posix_fadvise`` or ``fdatasync`` is missing (not Linux) the file is
written as usual. A failed ``fdatasync`` (EIO, a full disk) raises: the run
stops with the file not renamed into place.
"""

from __future__ import annotations

import errno
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

#: Bytes written between two flush-and-drop steps: small enough that the pages dropped are reused before the
#: host takes them back (200 MB written with work between the writes: 0.75-0.80 s of system time plainly,
#: 0.23-0.30 s in 16 MB steps, 0.16-0.19 s in 4 MB steps), large enough that the ``fdatasync`` calls cost
#: little (about 65 a worker in a 1M run).
STEP = 4 << 20

_CAN_DROP = hasattr(os, "posix_fadvise") and hasattr(os, "fdatasync")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def drop(fd: int, start: int, end: int | None = None) -> None:
    """Flush ``fd`` to disk and drop its pages in [start, end) from the page cache (``end`` None: to the end of
    the file): clean pages only can be dropped, hence the flush first. Nothing on systems without
    ``posix_fadvise``."""
    if _CAN_DROP and (end is None or end > start):
        os.fdatasync(fd)
        forget(fd, start, end)


def forget(fd: int, start: int = 0, end: int | None = None) -> None:
    """Drop ``fd``'s clean pages in [start, end) from the page cache (``end`` None: to the end of the file; dirty
    pages stay, their write-back starts). The kernel keeps a page only partly in the range, so ``start`` is
    taken back to its page's start; a partial last page stays. Nothing on systems without ``posix_fadvise``."""
    if _CAN_DROP:
        start -= start % _PAGE
        os.posix_fadvise(fd, start, 0 if end is None else end - start, os.POSIX_FADV_DONTNEED)


class DropBehind:
    """Writes to a binary file opened for writing, dropping its written pages every :data:`STEP` bytes.

        with open_private(path, "wb") as fh, DropBehind(fh) as out:
            out.write(data)

    Only :meth:`write` goes through here. A step's flush and drop run in a thread of their own while the
    writer goes on (on a slow disk the ``fdatasync`` would otherwise hold the writer up), one step at a time:
    a writer faster than the disk waits for the step before. Leaving the ``with`` block (or :meth:`finish`)
    flushes and drops the rest and raises a failed flush (EIO, a full disk); leaving it with an exception
    only waits for the step in flight. The file object stays the caller's to close, after the block.
    """

    def __init__(self, fh: IO[bytes], step: int = STEP):
        self.fh = fh
        self.step = step
        self.dropped = fh.tell()  # bytes before this offset are flushed and dropped, or being so
        self.written = self.dropped
        self._pool: ThreadPoolExecutor | None = None
        self._step: Future[None] | None = None

    def __enter__(self) -> DropBehind:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        if kind is None:
            self.finish()
        else:
            self._close(quiet=True)

    def write(self, data: bytes) -> int:
        n = self.fh.write(data)
        self.written += n
        if self.written - self.dropped >= self.step:
            self.fh.flush()
            self._wait()
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, thread_name_prefix="drop-behind")
            self._step = self._pool.submit(drop, self.fh.fileno(), self.dropped, self.written)
            self.dropped = self.written
        return n

    def finish(self) -> None:
        """Flush and drop what is left, to the end of the file; raise a failed flush."""
        self.fh.flush()
        self._close(quiet=False)
        drop(self.fh.fileno(), self.dropped, None)
        self.dropped = self.written

    def _wait(self) -> None:
        step, self._step = self._step, None
        if step is not None:
            step.result()

    def _close(self, *, quiet: bool) -> None:
        try:
            self._wait()
        except OSError:
            if not quiet:
                raise
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None


def copy_dropping(src: IO[bytes], dst: IO[bytes], step: int = STEP) -> None:
    """Append the whole of ``src`` to the end of ``dst``, a step at a time, dropping both files' copied pages
    behind (the source's only where they are clean, as a part written through :class:`DropBehind` is).

    The copy is made in the kernel (``copy_file_range``) where it can be, else through a buffer: another file
    system or an old kernel refuses it, and some file systems copy nothing (return 0) before the end, which is
    not taken as the end (the rest goes through the buffer). A source shorter than its size when the copy began
    raises ``OSError`` (EIO): never a short output. Both file objects are left at their ends."""
    dst.flush()
    sfd, dfd = src.fileno(), dst.fileno()
    start = dst.seek(0, os.SEEK_END)
    size = os.fstat(sfd).st_size
    kernel = hasattr(os, "copy_file_range")
    done = 0
    while done < size:
        want = min(step, size - done)
        n = 0
        if kernel:
            try:
                n = os.copy_file_range(sfd, dfd, want, done, start + done)
            except OSError as exc:
                if done or exc.errno not in _NO_KERNEL_COPY:
                    raise
            if n == 0:
                kernel = False  # refused, or nothing copied: this step and the rest through the buffer
                continue
        else:
            n = _copy_step(sfd, dfd, want, done, start + done)
        last = done + n >= size
        drop(dfd, start + done, None if last else start + done + n)
        forget(sfd, done, None if last else done + n)
        done += n
    dst.seek(0, os.SEEK_END)
    src.seek(0, os.SEEK_END)


def _copy_step(sfd: int, dfd: int, want: int, at: int, to: int) -> int:
    """Copy up to ``want`` bytes from ``sfd`` at ``at`` to ``dfd`` at ``to`` through a buffer; the bytes copied."""
    block = os.pread(sfd, want, at)
    if not block:
        raise OSError(errno.EIO, f"the file being copied ended at byte {at}, before its size")
    view = memoryview(block)
    while view:
        view = view[os.pwrite(dfd, view, to + len(block) - len(view)) :]
    return len(block)


#: errno values with which copy_file_range says "not here" rather than "failed" (nothing copied yet).
_NO_KERNEL_COPY = {errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF}
