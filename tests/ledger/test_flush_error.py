"""A worker's flush of its staged files fails (EIO, a disk or thin-pool
error) and the run's process dies before it cleans up (killed, as with
kill -9): the next run must not adopt the staging folder's files. Those
pages may never reach the disk, yet the page cache gives their right
SHA-256 and the adopting run's own flush succeeds (Linux reports a
write-back error once). The failed flush used to leave the folder's journal
lines, so the next run adopted the files; now the journal is removed as
the flush fails, and every record is signed again with its reserved UVCI."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path
from typing import Any

import pytest

import signer.durable as durable
from signer.cli import main
from signer.ledger import Ledger
from tests.fixtures.pki import TestPki as Pki
from verifier.errors import ConfigError

from .helpers import batch_command, check_consistent, many_records, write_records

RECORDS = 10
FAILING = "R00001.png"


def test_files_of_a_failed_flush_are_not_adopted(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(RECORDS)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = command(source, "--jobs", "2")
    pid = os.fork()
    if pid == 0:  # the run whose worker's flush fails
        try:
            import signer.run as run

            real = durable.flush_files

            def failing(fd: int, paths: list[str], one_by_one: bool) -> None:  # in the workers (through fork)
                if any(path.endswith("/" + FAILING) for path in paths):
                    raise OSError(errno.EIO, "Input/output error")
                real(fd, paths, one_by_one)

            real_wait = run._FlushBoard.wait

            def wait_then_die(board: Any, *args: Any) -> None:
                try:
                    real_wait(board, *args)
                except ConfigError:  # the worker's flush failed: the run's process dies before its clean-up
                    os.kill(os.getpid(), signal.SIGKILL)

            monkeypatch.setattr(durable, "flush_files", failing)
            monkeypatch.setattr(run._FlushBoard, "wait", wait_then_die)
            main(args)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) in (9, -9), "the flush did not fail"
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        pending = {c.record_id: c.uvci for c in led.in_states(("reserved", "signed"))}
    finally:
        led.close()
    assert len(pending) == RECORDS
    folders = [p for p in (out / ".partial").iterdir() if (p / FAILING).is_file()]
    assert len(folders) == 1
    staged = {p.name: p.read_bytes() for p in folders[0].iterdir() if p.name.endswith(".hc1.txt")}
    assert len(staged) == RECORDS  # every file written

    capsys.readouterr()
    assert main(args) == 0
    current = check_consistent(ledger, out, [r.record_id for r in records])
    assert {rid: c.uvci for rid, c in current.items()} == pending  # the reserved UVCIs
    # signed again (ECDSA: another signature), not the failed run's files
    assert [name for name, data in staged.items() if (out / name).read_bytes() == data] == []


def test_a_failed_flush_of_adopted_files_drops_the_killed_runs_journal(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """review11-followup F1: the adopting run's fdatasync of a killed run's
    file fails (the file's write-back error, which the kernel reports once),
    and that run is killed in turn before its clean-up empties .partial-old:
    the next run's fdatasync of the same file returns 0, so it must not find
    the journal that names it. Every record is signed again with its
    reserved UVCI; none is adopted."""
    from .helpers import die
    from .test_adopt import RECORDS, Killed, adopted_ids

    killed = Killed(tmp_path, test_pki, monkeypatch, "before_write")
    pid = os.fork()
    if pid == 0:
        try:
            import signer.batch as batch

            real = durable.fdatasync_path

            def fdatasync_path(path: str) -> None:  # the first adopted HC1 file's error
                if path.endswith(".hc1.txt") and not getattr(fdatasync_path, "failed", False):
                    fdatasync_path.failed = True  # type: ignore[attr-defined]
                    raise OSError(errno.EIO, os.strerror(errno.EIO))
                real(path)

            monkeypatch.setattr(durable, "fdatasync_path", fdatasync_path)
            monkeypatch.setattr(batch.BatchOutput, "__exit__", die)  # killed before the clean-up
            main(killed.args)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    assert list((killed.out / ".partial-old").rglob(".journal")) == []
    summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set()
    assert f"{RECORDS} issued" in summary
