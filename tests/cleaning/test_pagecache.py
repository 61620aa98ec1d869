"""signer.pagecache: big outputs written (and appended) with their pages dropped from the page cache.

Residency is read with util-linux's ``fincore`` (the kernel's mincore), the tool a user would use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer import pagecache
from signer.pagecache import DropBehind, copy_dropping

STEP = 256 << 10
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def tmp_path(tmp_path: Path) -> Iterator[Path]:
    """A folder on a disk file system: on tmpfs (Debian 13's /tmp) pages live only in the cache and cannot be
    dropped, so there the folder is made under the checkout's build/ instead."""
    kind = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    if kind not in ("tmpfs", "ramfs"):
        yield tmp_path
        return
    (REPO / "build").mkdir(exist_ok=True)
    disk = Path(tempfile.mkdtemp(prefix="pagecache-", dir=REPO / "build"))
    try:
        yield disk
    finally:
        shutil.rmtree(disk, ignore_errors=True)


def resident(path: Path) -> int:
    """Bytes of ``path`` in the page cache."""
    fincore = shutil.which("fincore") or "/usr/bin/fincore"
    out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return int(out.split()[0])


def payload(n: int, seed: int) -> bytes:
    line = f'{{"record_id": "R{seed}", "full_name": "Nguyễn Thị Nga"}}\n'.encode()
    return (line * (n // len(line) + 1))[:n]


def test_written_pages_leave_the_cache_and_the_bytes_are_all_there(tmp_path: Path) -> None:
    path = tmp_path / "part.jsonl"
    data = [payload(100_000 + k, k) for k in range(40)]  # ~4 MB in writes of uneven sizes
    with path.open("wb") as fh:
        out = DropBehind(fh, STEP)
        for block in data:
            assert out.write(block) == len(block)
        # every full step dropped but the one in flight: what is left in the cache is less than two steps and a write
        assert resident(path) < 2 * STEP + 200_000
        out.finish()
        assert resident(path) == 0  # the rest too, the partial last page included
    assert path.read_bytes() == b"".join(data)


def test_without_drop_behind_the_pages_stay(tmp_path: Path) -> None:
    """The check above means something: plainly written pages stay cached."""
    path = tmp_path / "plain.jsonl"
    path.write_bytes(payload(4 << 20, 1))
    assert resident(path) > 3 << 20


def test_drop_behind_starts_at_the_offset_the_file_is_at(tmp_path: Path) -> None:
    path = tmp_path / "appended.jsonl"
    head = payload(1 << 20, 1)
    path.write_bytes(head)
    with path.open("r+b") as fh:
        fh.seek(0, os.SEEK_END)
        out = DropBehind(fh, STEP)
        out.write(payload(1 << 20, 2))
        out.finish()
    assert path.read_bytes() == head + payload(1 << 20, 2)


@pytest.mark.parametrize("src_dir", ["same", "shm"])
def test_copy_dropping_appends_the_whole_source(tmp_path: Path, src_dir: str) -> None:
    """Same file system: copy_file_range. From /dev/shm (tmpfs) to the test's folder on another file system the
    kernel refuses (EXDEV) or copies across; both give the same bytes."""
    base = tmp_path if src_dir == "same" else Path("/dev/shm")
    src = base / f"src-{os.getpid()}-{src_dir}.jsonl"
    try:
        with src.open("wb") as fh:  # as a worker writes its part
            part = DropBehind(fh, STEP)
            part.write(payload(3 * STEP + 12345, 7))
            part.finish()
        dst = tmp_path / "dst.jsonl"
        dst.write_bytes(payload(5000, 3))
        with src.open("rb") as s, dst.open("r+b") as d:
            copy_dropping(s, d, STEP)
            assert d.tell() == 5000 + 3 * STEP + 12345  # left at the end: a second append goes after it
            s.seek(0)
            copy_dropping(s, d, STEP)
        assert dst.read_bytes() == payload(5000, 3) + payload(3 * STEP + 12345, 7) * 2
        if src_dir == "same":
            assert resident(src) == 0  # the copy read the source's pages back and dropped them again
    finally:
        src.unlink(missing_ok=True)


def test_copy_dropping_raises_a_real_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure that is not "no kernel copy here" (a full disk) is raised, never papered over by the buffer."""
    import errno

    def full(*_: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pagecache.os, "copy_file_range", full)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(payload(1000, 5))
    dst.write_bytes(b"")
    with src.open("rb") as s, dst.open("r+b") as d, pytest.raises(OSError) as err:
        copy_dropping(s, d, STEP)
    assert err.value.errno == errno.ENOSPC


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_leaves_its_verified_files_out_of_the_cache(tmp_path: Path, workers: int) -> None:
    """The workers write their parts through DropBehind and the run appends them with copy_dropping: none of
    verified.jsonl is left in the page cache, and it holds every verified line (checked by the pipeline tests)."""
    from signer.cleaning.run import CheckOptions, run_checks
    from signer.cleaning.synth import SynthConfig, generate
    from tests.cleaning.conftest import NOW

    paths = generate(tmp_path / "data", SynthConfig(records=800, seed=3, fmt="csv", shape="dose_rows"))
    out = tmp_path / "out"
    summary = run_checks(CheckOptions(records=paths["records"], registry=str(paths["registry"]), out_dir=out,
                                      now=NOW, workers=workers))  # fmt: skip
    assert summary["workers"] == workers
    verified = out / "verified.jsonl"
    assert verified.stat().st_size > 100_000
    assert resident(verified) == 0
    assert resident(out / "verified-new.jsonl") == 0  # (a hard link of it in a first run)


@pytest.mark.parametrize("kernel", ["refuses", "copies_nothing", "stops_after_a_step"])
def test_copy_dropping_goes_through_a_buffer_where_the_kernel_does_not_copy(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch,
                                                                            kernel: str) -> None:  # fmt: skip
    """An old kernel or a file system without copy_file_range refuses (ENOSYS, EXDEV, ...); some file systems'
    copy nothing (return 0) before the end of the file, which is not its end. Either way the rest is copied
    through a buffer (a short verified.jsonl renamed into place would lose people), and once the kernel copied
    nothing it is not asked again."""
    import errno

    real = os.copy_file_range
    calls = []

    def fake(*args: int) -> int:
        calls.append(args)
        if kernel == "refuses":
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return real(*args) if kernel == "stops_after_a_step" and len(calls) == 1 else 0

    monkeypatch.setattr(pagecache.os, "copy_file_range", fake)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(payload(3 * STEP + 7, 4))
    dst.write_bytes(b"head\n")
    with src.open("rb") as s, dst.open("r+b") as d:
        copy_dropping(s, d, STEP)
    assert dst.read_bytes() == b"head\n" + payload(3 * STEP + 7, 4)
    assert len(calls) == (2 if kernel == "stops_after_a_step" else 1)


def test_a_source_that_shrinks_while_copied_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source shorter than its size when the copy began: EIO, never a short output taken as whole."""
    import errno

    monkeypatch.setattr(pagecache.os, "copy_file_range", lambda *_: 0)
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_bytes(payload(3 * STEP, 4))
    dst.write_bytes(b"")
    real_pread = os.pread

    def shrinking(fd: int, n: int, at: int) -> bytes:
        if at >= STEP:
            os.truncate(src, STEP)
        return real_pread(fd, n, at)

    monkeypatch.setattr(pagecache.os, "pread", shrinking)
    with src.open("rb") as s, dst.open("r+b") as d, pytest.raises(OSError) as err:
        copy_dropping(s, d, STEP)
    assert err.value.errno == errno.EIO


def test_a_failed_flush_in_the_drop_thread_is_raised_when_the_block_ends(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A step's fdatasync fails (EIO, a full disk) in the thread: leaving the block raises it, so the run stops
    before the part is joined; leaving it with an exception of its own raises that one, and waits for the step."""
    import errno

    def eio(_: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(pagecache.os, "fdatasync", eio)
    path = tmp_path / "part.jsonl"
    with path.open("wb") as fh, pytest.raises(OSError) as err, DropBehind(fh, STEP) as out:
        out.write(payload(STEP + 10, 1))  # the step goes to the thread, which fails
    assert err.value.errno == errno.EIO
    with path.open("wb") as fh, pytest.raises(KeyError), DropBehind(fh, STEP) as out:
        out.write(payload(STEP + 10, 1))
        raise KeyError("the writer's own failure")
    assert out._pool is None  # the thread is gone either way
