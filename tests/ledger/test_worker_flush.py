"""A ``--jobs`` worker hands a task's results back as soon as its staged
files are written, before their flushes end, and signs on; the run places
that batch only once the worker says the flushes succeeded
(signer.run._FlushBoard). A flush that fails (EIO) in the worker stops the
run at that batch, nothing of it placed, and the same command completes."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path
from typing import Any

import pytest

import signer.batch
import signer.durable
import signer.run
from signer.cli import main
from tests.fixtures.pki import TestPki as Pki

from .helpers import batch_command, check_consistent, many_records, write_records
from .test_run_signs import slow_workers

BATCH = 8
SLOW = "R00002.png"  # in the first batch: always the worker's (it gets the first batches)


@pytest.mark.parametrize("mode", ["", "files"])  # one syncfs per task; one fdatasync per file (signer.durable)
def test_the_run_places_a_workers_batch_only_once_its_flushes_ended(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    monkeypatch.setenv(signer.durable.FLUSH_ENV, mode)
    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(16 * BATCH)
    source = write_records(tmp_path / "in.jsonl", records)
    here = os.getpid()
    flushed_at, starts = tmp_path / "flushed-at", tmp_path / "starts"
    real_flush, real_sign = signer.durable.flush_files, signer.run.Signer.sign

    def slow_flush(fd: int, paths: list[str], one_by_one: bool) -> None:  # one task of the worker's: 1 s
        if os.getpid() != here and any(path.endswith("/" + SLOW) for path in paths):
            time.sleep(1.0)
            real_flush(fd, paths, one_by_one)
            flushed_at.write_text(repr(time.monotonic()))
            return
        real_flush(fd, paths, one_by_one)

    def sign(self: Any, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != here:  # the worker: when each of its tasks starts
            with starts.open("a") as fh:
                fh.write(f"{time.monotonic()}\n")
            time.sleep(0.02)
        return real_sign(self, *args, **kwargs)

    waits: list[tuple[float, float]] = []
    real_wait = signer.run._FlushBoard.wait

    def wait(board: Any, *args: Any) -> None:
        start = time.monotonic()
        try:
            real_wait(board, *args)
        finally:
            waits.append((start, time.monotonic()))

    placed: list[tuple[float, list[str]]] = []
    real_place = signer.batch.BatchOutput.place_staged

    def place(output: Any, staged: Any, *args: Any, **kwargs: Any) -> None:
        placed.append((time.monotonic(), [name for name, _ in staged]))
        real_place(output, staged, *args, **kwargs)

    monkeypatch.setattr(signer.durable, "flush_files", slow_flush)
    monkeypatch.setattr(signer.run.Signer, "sign", sign)
    monkeypatch.setattr(signer.run._FlushBoard, "wait", wait)
    monkeypatch.setattr(signer.batch.BatchOutput, "place_staged", place)
    assert main(command(source, "--jobs", "2")) == 0
    assert capsys.readouterr().out.startswith(f"batch: {len(records)} record(s): {len(records)} issued")
    flushed = float(flushed_at.read_text())
    when = next(t for t, names in placed if SLOW in names)
    assert when > flushed  # placed after the flush ended
    # the run had the batch's results before the flush ended and waited for it ...
    assert any(start < flushed <= end for start, end in waits)
    # ... while the worker signed on: its second task (the first is the batch
    # with the slow file) started long before that flush ended
    assert sorted(float(t) for t in starts.read_text().split())[1] < flushed - 0.5
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])


@pytest.mark.parametrize("mode", ["", "files"])
def test_a_failed_flush_in_the_worker_stops_the_run_at_that_batch(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    monkeypatch.setenv(signer.durable.FLUSH_ENV, mode)
    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * BATCH)
    source = write_records(tmp_path / "in.jsonl", records)
    args = command(source, "--jobs", "2")
    out = tmp_path / "out"
    here = os.getpid()
    real_flush = signer.durable.flush_files

    def failing(fd: int, paths: list[str], one_by_one: bool) -> None:  # the worker's flush of one task fails
        if os.getpid() != here and any(path.endswith("/" + SLOW) for path in paths):
            raise OSError(errno.EIO, "Input/output error")
        real_flush(fd, paths, one_by_one)

    monkeypatch.setattr(signer.durable, "flush_files", failing)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"error: cannot write into {out}: Input/output error"]
    first = [r.record_id for r in records[:BATCH]]
    assert [rid for rid in first if (out / f"{rid}.hc1.txt").exists() or (out / f"{rid}.png").exists()] == []
    monkeypatch.setattr(signer.durable, "flush_files", real_flush)
    assert main(args) == 0
    check_consistent(str(tmp_path / "ledger.sqlite"), out, [r.record_id for r in records])


def test_the_pools_pipes_hold_a_whole_batch_result() -> None:
    """A ledger task's result of 256 records is about 140 KB pickled: the
    pool's result pipe (and its task pipe) hold 1 MiB, so that a worker
    hands it over without waiting for the run's process to read it."""
    import fcntl
    import multiprocessing

    pool = signer.run._process_pool(1, multiprocessing.get_context("fork"), None)  # type: ignore[arg-type]
    try:
        for queue in (pool._result_queue, pool._call_queue):  # type: ignore[attr-defined]
            assert fcntl.fcntl(queue._writer.fileno(), fcntl.F_GETPIPE_SZ) >= signer.run.PIPE_BYTES
    finally:
        pool.shutdown()


def test_large_staged_files_leave_the_page_cache_once_flushed(tmp_path: Path) -> None:
    """A staged file of DROP_BYTES or more (a PDF passport) is dropped from
    the page cache once flushed (fresh page-cache pages cost this VM far more
    system time than reused ones); the small ones (PNG, HC1 text: read back
    when a resume adopts them) stay. On tmpfs (Debian 13's /tmp) pages live
    only in the cache: there the folder is made under the checkout's build/."""
    import shutil
    import subprocess
    import tempfile

    kind = subprocess.run(["stat", "-f", "-c", "%T", str(tmp_path)], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    if kind in ("tmpfs", "ramfs"):
        build = Path(__file__).resolve().parents[2] / "build"
        build.mkdir(exist_ok=True)
        tmp_path = Path(tempfile.mkdtemp(prefix="stage-drop-", dir=build))
        try:
            _large_files_dropped(tmp_path)
        finally:
            shutil.rmtree(tmp_path, ignore_errors=True)
        return
    _large_files_dropped(tmp_path)


def _large_files_dropped(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from signer.issue import Issued

    fincore = shutil.which("fincore")
    assert fincore, "fincore (util-linux) is needed"
    issued = Issued(record_id="R1", hc1="HC1:X", uvci="URN:UVCI:01:VN:ABC00001#A", kid=b"\x01\x02",
                    iat=1790000000, exp=1821536000, exp_clamped=False, dcc={})  # fmt: skip
    files = {"R1.pdf": os.urandom(4 * signer.durable.DROP_BYTES), "R1.png": os.urandom(4096)}
    results: list[Any] = [signer.run.Outputs(issued, files, "ab" * 32, {name: "cd" * 32 for name in files})]
    stager = signer.run.Stager(tmp_path, "", b"", results)
    stager.add(0, results[0], "")
    stager.finish()
    stager.close()
    staged = results[0].staged

    def resident(path: str) -> int:
        out = subprocess.run([fincore, "--bytes", "--noheadings", "--output", "RES", path], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        return int(out.split()[0])

    assert resident(staged["R1.pdf"][0]) == 0
    assert resident(staged["R1.png"][0]) == 4096


@pytest.mark.parametrize("who", ["worker", "run"])
def test_a_failed_syncfs_says_it_may_not_be_the_runs_error(
    who: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A syncfs error is the file system's, maybe another program's file: the
    operator is told so whichever process flushed (review11-followup F2: the
    worker's went through _FlushBoard as a bare errno)."""
    import ctypes

    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    monkeypatch.delenv(signer.durable.FLUSH_ENV, raising=False)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    source = write_records(tmp_path / "in.jsonl", many_records(5 * BATCH))
    here = os.getpid()

    def syncfs(fd: int) -> int:  # libc's syncfs failing with EIO, in the worker or in the run's process
        if (os.getpid() != here) == (who == "worker"):
            ctypes.set_errno(errno.EIO)
            return -1
        return 0

    monkeypatch.setattr(signer.durable, "_SYNCFS", syncfs)
    signed_here = slow_workers(monkeypatch, 0.3) if who == "run" else [0]  # a slow worker: the run's process signs too
    assert main(command(source, "--jobs", "2")) == 2
    assert signed_here  # the run's process flushed a batch of its own
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: cannot write into {tmp_path / 'out'}: Input/output error ({signer.durable.SYNCFS_HINT})"]
