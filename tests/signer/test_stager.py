"""signer.run.Stager (the --jobs workers' staging of a ledger run's files): files
are written a group of JOURNAL_EVERY records at a time and flushed by the
process's pool of threads while signing goes on; finish() returns only once
every staged file was flushed, and close() never closes a descriptor a
thread may still be flushing."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import signer.run as run
from signer.issue import Issued
from signer.run import Outputs, Stager


def _result(i: int) -> Outputs:
    rid = f"R{i:05d}"
    issued = Issued(record_id=rid, hc1="HC1:X", uvci=f"URN:UVCI:01:VN:ABC{i:05d}#A", kid=b"\x01\x02",
                    iat=1790000000, exp=1821536000, exp_clamped=False, dcc={})  # fmt: skip
    files = {f"{rid}.hc1.txt": b"HC1:X" * (i + 1), f"{rid}.png": bytes([i % 256]) * 100}
    return Outputs(issued, files, "ab" * 32, {name: "cd" * 32 for name in files})


class SlowFlushes:
    """os.fdatasync made slow (the disk under load), recording which files were flushed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.flushed: list[str] = []
        self.errors: list[OSError] = []
        self.lock = threading.Lock()
        real = os.fdatasync

        def slow(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            time.sleep(0.01)
            try:
                real(fd)
            except OSError as err:
                with self.lock:
                    self.errors.append(err)
                raise
            with self.lock:
                self.flushed.append(path)

        monkeypatch.setattr(os, "fdatasync", slow)
        monkeypatch.setattr(run, "_syncer", None)  # a pool made with the slow function


def test_finish_returns_once_every_staged_file_is_flushed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flushes = SlowFlushes(monkeypatch)
    monkeypatch.setattr(run, "JOURNAL_EVERY", 4)
    results: list[Outputs | str] = []
    stager = Stager(tmp_path, "", b"", results)
    try:
        for i in range(10):
            results.append(_result(i))
            stager.add(i, _result(i), "")
            if i == 5:  # 4 records written (one group), 2 queued
                assert stager.folder is not None
                assert len(list(stager.folder.iterdir())) == 8
                assert all(isinstance(r, Outputs) and r.staged for r in results[:4])
                assert all(isinstance(r, Outputs) and r.files for r in results[4:])
        stager.finish()
        staged = [path for r in results if isinstance(r, Outputs) for path, _ in r.staged.values()]
        assert len(staged) == 20 and all(isinstance(r, Outputs) and not r.files for r in results)
        assert sorted(flushes.flushed) == sorted(staged)  # all of them, before finish returned
        for i, r in enumerate(results):
            assert isinstance(r, Outputs)
            for name, data in _result(i).files.items():
                path, size = r.staged[name]
                assert Path(path).read_bytes() == data and size == len(data)
    finally:
        stager.close()
    assert not flushes.errors


def test_close_waits_for_flushes_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task stopped before finish (an error): close() lets the threads end
    their flushes first (a closed descriptor would fail them with EBADF, or
    flush a file the process opened next under the same number)."""
    flushes = SlowFlushes(monkeypatch)
    monkeypatch.setattr(run, "JOURNAL_EVERY", 8)
    results: list[Outputs | str] = []
    stager = Stager(tmp_path, "", b"", results)
    for i in range(8):  # one group: 16 files, 16 flushes of 10 ms on 16 threads
        results.append(_result(i))
        stager.add(i, _result(i), "")
    stager.close()
    assert not flushes.errors
    assert len(flushes.flushed) == 16


def test_a_failed_flush_fails_the_task_and_removes_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fdatasync fails (EIO) on a file of the first group: finish raises
    ConfigError (it used to be the only check that the flushes succeeded:
    waiting without looking at the results passed the other tests), and the
    folder's journal is gone, lines of later groups included, so that no run
    adopts a file that may never reach the disk. Every descriptor is closed."""
    import errno

    from signer.batch_adopt import JOURNAL
    from verifier.errors import ConfigError

    real = os.fdatasync
    failed: list[str] = []

    def failing(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.endswith("/R00001.png"):
            failed.append(path)
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", failing)
    monkeypatch.setattr(run, "_syncer", None)
    open_before = len(os.listdir("/proc/self/fd"))
    results: list[Outputs | str] = []
    stager = Stager(tmp_path, "tag", b"k" * 32, results)
    try:
        for i in range(3 * run.JOURNAL_EVERY + 5):
            results.append(_result(i))
            stager.add(i, _result(i), "h")
        assert stager.folder is not None
        with pytest.raises(ConfigError, match="Input/output error"):
            stager.finish()
        assert len(failed) == 1
        assert not (stager.folder / JOURNAL).exists()
        assert len(list(stager.folder.glob("*.png"))) == 3 * run.JOURNAL_EVERY + 5  # every group was written
    finally:
        stager.close()
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_journal_lines_when_every_flush_succeeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other side: without a failure, every record's line stays (what a
    run after a kill adopts)."""
    from signer.batch_adopt import JOURNAL

    flushes = SlowFlushes(monkeypatch)
    results: list[Outputs | str] = []
    stager = Stager(tmp_path, "tag", b"k" * 32, results)
    count = 2 * run.JOURNAL_EVERY + 3
    try:
        for i in range(count):
            results.append(_result(i))
            stager.add(i, _result(i), "h")
        stager.finish()
        assert stager.folder is not None
        lines = (stager.folder / JOURNAL).read_bytes().splitlines()
        assert [line.split(b'"record_id":"')[1][:6] for line in lines] == [f"R{i:05d}".encode() for i in range(count)]
    finally:
        stager.close()
    assert not flushes.errors and len(flushes.flushed) == 2 * count
