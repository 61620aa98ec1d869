"""signer.run.Stager (the staging of a ledger run's files by the process that
signs them): files are written a group of JOURNAL_EVERY records at a time and
flushed all at once (signer.durable.Flusher); finish() returns only once every
staged file was flushed (or with ``later`` starts the flush in a thread that
flushed() waits for), a failed flush removes the journal, and close() of a
stager stopped before its flush flushes what it wrote first."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

import signer.durable as durable
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
    """signer.durable.flush_files made slow (the disk under load), recording
    which files each flush was for."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.flushed: list[str] = []
        self.calls = 0
        self.errors: list[OSError] = []
        self.lock = threading.Lock()
        real = durable.flush_files

        def slow(fd: int, paths: list[str], one_by_one: bool) -> None:
            time.sleep(0.01)
            try:
                real(fd, paths, one_by_one)
            except OSError as err:
                with self.lock:
                    self.errors.append(err)
                raise
            with self.lock:
                self.flushed += paths
                self.calls += 1

        monkeypatch.setattr(durable, "flush_files", slow)


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
        assert flushes.calls == 1  # one flush for the task's files (one syncfs)
        for i, r in enumerate(results):
            assert isinstance(r, Outputs)
            for name, data in _result(i).files.items():
                path, size = r.staged[name]
                assert Path(path).read_bytes() == data and size == len(data)
    finally:
        stager.close()
    assert not flushes.errors


def test_close_of_a_stager_stopped_before_its_flush_flushes_what_it_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task stopped before finish (an error, the run stopped): close()
    flushes the files written so far, so that a failure removes the journal
    (the error may be reported to this process only, never to the run that
    would adopt the files)."""
    flushes = SlowFlushes(monkeypatch)
    monkeypatch.setattr(run, "JOURNAL_EVERY", 8)
    results: list[Outputs | str] = []
    stager = Stager(tmp_path, "", b"", results)
    for i in range(8):  # one group: 16 files
        results.append(_result(i))
        stager.add(i, _result(i), "")
    stager.close()
    assert not flushes.errors
    assert len(flushes.flushed) == 16 and flushes.calls == 1


def test_a_later_stager_flushes_in_its_thread_and_flushed_waits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``later`` (the run's own process, the workers): finish() returns while
    the flush goes on in the flush thread; flushed() returns once it ended."""
    from concurrent.futures import ThreadPoolExecutor

    from signer.durable import Flusher

    gate = threading.Event()
    real = durable.flush_files

    def gated(fd: int, paths: list[str], one_by_one: bool) -> None:
        assert gate.wait(10)
        real(fd, paths, one_by_one)

    monkeypatch.setattr(durable, "flush_files", gated)
    results: list[Outputs | str] = []
    with Flusher(tmp_path) as flusher, ThreadPoolExecutor(1) as thread:
        stager = Stager(tmp_path, "", b"", results, later=True, flusher=flusher, flush_thread=thread)
        for i in range(3):
            results.append(_result(i))
            stager.add(i, _result(i), "")
        stager.finish()  # returns with the flush held at the gate
        waiter = threading.Thread(target=stager.flushed)
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive()  # flushed() waits for the flush
        gate.set()
        waiter.join(10)
        assert not waiter.is_alive()


def test_a_failed_flush_is_sticky_for_the_stagers_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel reports a write-back error once per descriptor, and every
    file written since the last good flush may be lost: once a process's
    flusher failed, each later stager's flush fails too (without asking the
    kernel again) and removes its journal."""
    import errno

    from signer.batch_adopt import JOURNAL
    from signer.durable import Flusher
    from verifier.errors import ConfigError

    calls: list[int] = []

    def failing_once(fd: int, paths: list[str], one_by_one: bool) -> None:
        calls.append(len(paths))
        if len(calls) == 1:
            raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(durable, "flush_files", failing_once)
    with Flusher(tmp_path) as flusher:
        for attempt in range(2):
            results: list[Outputs | str] = []
            stager = Stager(tmp_path, "tag", b"k" * 32, results, flusher=flusher)
            for i in range(3):
                results.append(_result(i))
                stager.add(i, _result(i), "h")
            assert stager.folder is None or (stager.folder / JOURNAL).exists()
            with pytest.raises(ConfigError, match="Input/output error"):
                stager.finish()
            assert stager.folder is not None and not (stager.folder / JOURNAL).exists(), attempt
    assert calls == [6]  # the second stager's flush never reached the kernel: it failed at once


def test_a_failed_flush_fails_the_task_and_removes_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The flush fails (EIO) for a file of the first group: finish raises
    ConfigError (it used to be the only check that the flushes succeeded:
    waiting without looking at the results passed the other tests), and the
    folder's journal is gone, lines of later groups included, so that no run
    adopts a file that may never reach the disk. Every descriptor is closed."""
    import errno

    from signer.batch_adopt import JOURNAL
    from verifier.errors import ConfigError

    real = durable.flush_files
    failed: list[str] = []

    def failing(fd: int, paths: list[str], one_by_one: bool) -> None:
        for path in paths:
            if path.endswith("/R00001.png"):
                failed.append(path)
                raise OSError(errno.EIO, "Input/output error")
        real(fd, paths, one_by_one)

    monkeypatch.setattr(durable, "flush_files", failing)
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
    assert not flushes.errors and len(flushes.flushed) == 2 * count and flushes.calls == 1
