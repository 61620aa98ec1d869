"""signer.durable: files written after a Flusher was made go to disk in one
syncfs (Linux 5.8 and later) or one fdatasync each (VNDCC_FLUSH=files, older
kernels); a failed flush is sticky; large files leave the page cache.

That a file's pages were written is read from the page cache: only clean pages
can be dropped (posix_fadvise DONTNEED), so a file whose pages all left the
cache after :func:`signer.durable.forget_path` was on disk. On tmpfs (Debian
13's /tmp) pages live only in the cache: the files are then made under the
checkout's build/."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import signer.durable as durable
from signer.durable import DROP_BYTES, FLUSH_ENV, Flusher, flush_written, forget_path


@pytest.fixture
def disk_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder on a disk file system (tmp_path, or one under build/ when tmp_path is on tmpfs)."""
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    if kind not in ("tmpfs", "ramfs"):
        yield tmp_path
        return
    build = Path(__file__).resolve().parents[2] / "build"
    build.mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="durable-", dir=build))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def resident(path: Path) -> int:
    fincore = shutil.which("fincore")
    assert fincore, "fincore (util-linux) is needed"
    out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", str(path)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return int(out.split()[0])


def test_this_machine_flushes_with_one_syncfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast path is the one tested here (Linux >= 5.17, ext4 or tmpfs): it must not fall back unseen."""
    monkeypatch.delenv(FLUSH_ENV, raising=False)
    with Flusher(tmp_path) as flusher:
        assert durable._SYNCFS is not None and not flusher.one_by_one
    monkeypatch.setenv(FLUSH_ENV, "files")
    with Flusher(tmp_path) as flusher:
        assert flusher.one_by_one


@pytest.mark.parametrize(("magic", "one_by_one"), [(0xEF53, False), (0x58465342, False), (0x9123683E, False),
                                                   (0x794C7630, True), (0x6969, True), (0x65735546, True)])  # fmt: skip
def test_syncfs_only_on_file_systems_that_report_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, magic: int, one_by_one: bool
) -> None:
    """ext4, XFS, Btrfs: syncfs; overlayfs (its syncfs misses the upper file
    system's write-back errors: review11 F2), NFS, FUSE: one fdatasync per file."""
    monkeypatch.delenv(FLUSH_ENV, raising=False)
    monkeypatch.setattr(durable, "fs_type", lambda fd: magic)
    with Flusher(tmp_path) as flusher:
        assert flusher.one_by_one is one_by_one


def test_the_file_system_type_is_read(tmp_path: Path) -> None:
    kind = subprocess.run(["stat", "-f", "-c", "%t", str(tmp_path)], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        assert durable.fs_type(fd) == int(kind, 16)
    finally:
        os.close(fd)


@pytest.mark.parametrize(("release", "usable"), [("5.4.0-150-generic", False), ("5.10.0-28-amd64", False),
                                                 ("5.15.0-91-generic", False), ("5.17.0", True),
                                                 ("6.12.48+deb13-amd64", True), ("junk", False)])  # fmt: skip
def test_syncfs_only_where_it_reports_write_back_errors(
    monkeypatch: pytest.MonkeyPatch, release: str, usable: bool
) -> None:
    real = os.uname()
    fake = os.uname_result((real.sysname, real.nodename, release, real.version, real.machine))
    monkeypatch.setattr(os, "uname", lambda: fake)
    assert (durable._libc_syncfs() is not None) is usable


@pytest.mark.parametrize("mode", ["", "files"])
def test_flush_puts_every_file_written_on_disk(
    disk_dir: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """Files written after the flusher was made are clean after one flush:
    one syncfs (no fdatasync), or one fdatasync per file."""
    monkeypatch.setenv(FLUSH_ENV, mode)
    calls: list[str] = []
    real_fdatasync, real_syncfs = os.fdatasync, durable.syncfs

    def fdatasync(fd: int) -> None:
        calls.append("fdatasync")
        real_fdatasync(fd)

    def syncfs(fd: int) -> None:
        calls.append("syncfs")
        real_syncfs(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(durable, "syncfs", syncfs)
    paths = [disk_dir / f"f{i}.bin" for i in range(5)]
    with Flusher(disk_dir) as flusher:
        for path in paths:
            path.write_bytes(os.urandom(3 * DROP_BYTES))
        assert all(resident(path) == 3 * DROP_BYTES for path in paths)
        flusher.flush([(str(path), 100) for path in paths])  # sizes under DROP_BYTES: left in the cache
        assert all(resident(path) == 3 * DROP_BYTES for path in paths)
    assert calls == (["fdatasync"] * 5 if mode == "files" else ["syncfs"])
    for path in paths:  # clean now: they can all be dropped
        forget_path(str(path))
        assert resident(path) == 0


def test_large_files_leave_the_page_cache_once_flushed(disk_dir: Path) -> None:
    big, small = disk_dir / "R1.pdf", disk_dir / "R1.png"
    with Flusher(disk_dir) as flusher:
        big.write_bytes(os.urandom(4 * DROP_BYTES))
        small.write_bytes(os.urandom(4096))
        flusher.flush([(str(big), 4 * DROP_BYTES), (str(small), 4096)])
    assert resident(big) == 0 and resident(small) == 4096


def test_a_failed_syncfs_raises_its_errno_and_stays_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FLUSH_ENV, raising=False)
    calls: list[int] = []

    def failing(fd: int) -> int:
        calls.append(fd)
        ctypes.set_errno(errno.EIO)
        return -1

    monkeypatch.setattr(durable, "_SYNCFS", failing)
    with Flusher(tmp_path) as flusher:
        (tmp_path / "a").write_bytes(b"x")
        for _ in range(3):
            with pytest.raises(OSError) as caught:
                flusher.flush([(str(tmp_path / "a"), 1)])
            assert caught.value.errno == errno.EIO
            assert caught.value.strerror.startswith(os.strerror(errno.EIO) + " (a write-back error on this file system")
    assert len(calls) == 1  # the kernel was asked once: the error is the flusher's from then on


def test_a_failed_fdatasync_fails_the_flush(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FLUSH_ENV, "files")
    real = os.fdatasync

    def failing(fd: int) -> None:
        if os.readlink(f"/proc/self/fd/{fd}").endswith("/b"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", failing)
    with Flusher(tmp_path) as flusher:
        for name in "abc":
            (tmp_path / name).write_bytes(b"x")
        with pytest.raises(OSError) as caught:
            flusher.flush([(str(tmp_path / name), 1) for name in "abc"])
        assert caught.value.errno == errno.ENOSPC
        assert flusher.error is not None


def test_flush_written_flushes_files_another_process_wrote(disk_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The adoption after a kill: the files were written by a process now gone.
    One fdatasync each, never syncfs: the killed run's syncfs may have been
    told of the file system's error already, the file's own error stays for
    an fdatasync of it (review11 F1)."""
    monkeypatch.delenv(FLUSH_ENV, raising=False)
    synced: list[str] = []
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    def no_syncfs(fd: int) -> None:
        raise AssertionError("syncfs for adopted files")

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    monkeypatch.setattr(durable, "syncfs", no_syncfs)
    paths = [disk_dir / f"g{i}" for i in range(3)]
    code = "import os, sys\nfor p in sys.argv[1:]:\n    open(p, 'wb').write(os.urandom(3 * 4096))\n"
    subprocess.run([sys.executable, "-c", code, *map(str, paths)], check=True)
    flush_written([str(path) for path in paths])
    assert sorted(synced) == sorted(str(path.resolve()) for path in paths)
    for path in paths:
        forget_path(str(path))
        assert resident(path) == 0
    flush_written([])  # nothing to do


def test_per_file_flushes_fail_at_the_first_error_without_waiting_for_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a failing disk an fdatasync can take the device's timeout: the first
    error is raised at once, so that the stager drops its journal before the
    slow ones end (review11-followup F1b)."""
    import threading
    import time

    release = threading.Event()
    real = os.fdatasync

    def fdatasync(fd: int) -> None:
        name = os.readlink(f"/proc/self/fd/{fd}")
        if name.endswith("/slow"):
            release.wait(10)
        elif name.endswith("/bad"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", fdatasync)
    for name in ("slow", "bad", "ok"):
        (tmp_path / name).write_bytes(b"x")
    start = time.monotonic()
    try:
        with pytest.raises(OSError, match="Input/output error"):
            durable.fdatasync_paths([str(tmp_path / name) for name in ("slow", "bad", "ok")])
        assert time.monotonic() - start < 5
    finally:
        release.set()
