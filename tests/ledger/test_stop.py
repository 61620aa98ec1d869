"""`signer batch` stopped (SIGTERM) mid-run: step 5 of the last batch placed
waits for the next batch's admission, so only the stop path's own commit
keeps the folder's files and the manifest alike (a reviewer's mutant
without it: 256 HC1 files of 768 in no manifest line, their rows 'signed')."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import signer.durable as durable
from signer.ledger import Ledger
from signer.records import Record
from tests.fixtures.pki import TestPki as Pki

from .helpers import batch_command, check_consistent, many_records, write_records

#: ``signer batch`` in batches of 16 that sends itself SIGTERM once it has
#: placed the files of its STOP_AFTER-th batch (the signal is held until the
#: batch's files are in place, then stops the run)
RUN = """
import os, signal, sys
import signer.run
from signer.batch import BatchOutput
from signer.cli import main
signer.run.BATCH_SIZE = 16
placed = [0]
def then_stopped(real):
    def method(*args, **kwargs):
        real(*args, **kwargs)
        placed[0] += 1
        if placed[0] == int(os.environ["STOP_AFTER"]):
            os.kill(os.getpid(), signal.SIGTERM)
    return method
BatchOutput.write_durably = then_stopped(BatchOutput.write_durably)  # --jobs 1
BatchOutput.place_staged = then_stopped(BatchOutput.place_staged)  # --jobs 2
sys.exit(main(sys.argv[1:]))
"""
RECORDS = 240  # 15 batches
STOP_AFTER = 4


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_leaves_every_placed_file_in_the_manifest(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    """SIGTERM as a batch's files are placed: that batch is 'written' and listed."""
    records = many_records(RECORDS)
    args = command_of(test_pki, tmp_path, monkeypatch, records, jobs)
    env = {**os.environ, "STOP_AFTER": str(STOP_AFTER)}
    proc = subprocess.run([sys.executable, "-c", RUN, *args], env=env, capture_output=True, timeout=120)
    assert_stopped(proc.returncode, proc.stderr, tmp_path, at_least=STOP_AFTER * 16)
    assert len(hc1_files(tmp_path / "out")) == STOP_AFTER * 16  # the batches placed, no more
    assert_completed_by_the_next_run(args, tmp_path, records)


def test_sigterm_from_outside(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`kill` at whatever point the run has got to (--jobs 2)."""
    records = many_records(3 * RECORDS)
    args = command_of(test_pki, tmp_path, monkeypatch, records, "2")
    env = {**os.environ, "STOP_AFTER": "0"}  # never stops itself
    proc = subprocess.Popen([sys.executable, "-c", RUN, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        out, end = tmp_path / "out", time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None:
            if out.is_dir() and len(hc1_files(out)) >= 3 * 16:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_stopped(proc.returncode, err, tmp_path, at_least=3 * 16)
    assert_completed_by_the_next_run(args, tmp_path, records)


def command_of(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records: list[Record], jobs: str) -> list[str]:
    command = batch_command(test_pki, tmp_path, monkeypatch)  # sets the key's passphrase in os.environ
    return command(write_records(tmp_path / "in.jsonl", records), "--jobs", jobs)


def hc1_files(out: Path) -> set[str]:
    return {p.name.removesuffix(".hc1.txt") for p in out.iterdir() if p.name.endswith(".hc1.txt")}


def assert_stopped(returncode: int, stderr: bytes, tmp_path: Path, *, at_least: int, line: str = "error: interrupted") -> None:
    """Exit 2 with one line; every HC1 file listed in the manifest and every
    listed file there; no row 'signed' whose files are all in place."""
    assert returncode == 2, stderr.decode()
    assert stderr.decode().splitlines() == [line]
    out = tmp_path / "out"
    hc1 = hc1_files(out)
    assert len(hc1) >= at_least
    with (out / "manifest.jsonl").open(encoding="utf-8") as fh:
        manifest = [json.loads(line) for line in fh]
    assert sorted(e["record_id"] for e in manifest) == sorted(hc1)  # every HC1 file listed, once
    assert [n for e in manifest for n in e["files"] if not (out / n).is_file()] == []
    led = Ledger.open(str(tmp_path / "ledger.sqlite"), actor="t", create=False)
    try:
        placed = [c.record_id for c in led.in_states(("signed",)) if all((out / f.name).is_file() for f in c.files)]
        written = {c.record_id for c in led.in_states(("written",))}
    finally:
        led.close()
    assert placed == []
    assert written == hc1


def assert_completed_by_the_next_run(args: list[str], tmp_path: Path, records: list[Record]) -> None:
    proc = subprocess.run([sys.executable, "-m", "signer", *args], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])


@pytest.mark.parametrize("fault", ["pool", "shutdown", "worker"])
def test_a_failed_run_gives_back_what_it_froze(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    """signer.run freezes what the process holds before the --jobs workers
    fork (gc.freeze) and gives it back at the end, however the run ends: the
    pool cannot be made (EMFILE), a Ctrl-C as the pool's normal shutdown
    ends, a worker's error (EIO in its flush of the last batch's file: the
    batches before it still 'written' and listed)."""
    import errno
    import gc
    import signal
    from concurrent.futures import ProcessPoolExecutor

    import signer.run
    from signer.cli import main

    monkeypatch.setattr(signer.run, "BATCH_SIZE", 8)
    records = many_records(60)  # 8 batches, the last one of 4
    args = command_of(test_pki, tmp_path, monkeypatch, records, "2")

    class Pool(ProcessPoolExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if fault == "pool":
                raise OSError(errno.EMFILE, "Too many open files")
            super().__init__(*args, **kwargs)

        def shutdown(self, *args: Any, **kwargs: Any) -> None:
            super().shutdown(*args, **kwargs)
            if fault == "shutdown":
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, as the wait for the workers ends

    real_flush = durable.flush_files

    def failing(fd: int, paths: list[str], one_by_one: bool) -> None:  # in the workers (inherited through fork)
        if fault == "worker" and any(path.endswith("/R00057.png") for path in paths):
            raise OSError(errno.EIO, "Input/output error")
        real_flush(fd, paths, one_by_one)

    monkeypatch.setattr(signer.run, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(durable, "flush_files", failing)
    assert gc.get_freeze_count() == 0
    try:
        assert main(args) == 2
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()  # for the next tests, whatever happened
    err = capsys.readouterr().err
    out = tmp_path / "out"
    if fault == "pool":
        assert err == "error: Too many open files\n"
        assert not out.exists() or hc1_files(out) == set()
        return
    if fault == "shutdown":
        assert err == "error: interrupted\n"
        # all done before it (the resume point is left: the run did not end normally)
        check_consistent(str(tmp_path / "ledger.sqlite"), out, [r.record_id for r in records], extra=[".resume"])
        return
    # the 7 batches before the last one: written and listed (the 7th by the stop path)
    assert_stopped(2, err.encode(), tmp_path, at_least=56, line=f"error: cannot write into {out}: Input/output error")
