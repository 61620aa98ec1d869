"""No thread of the run is running when the ``--jobs`` workers are forked:
a fork while the ledger's checkpoint thread is inside SQLite would leave its
locks held in the children. The pool forks its workers at its first task,
and a run whose first IN_FLIGHT x jobs batches have nothing to sign (the
next month's file = last month's records + new ones) used to start the
thread before that."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import signer.run
from signer.cli import main
from tests.fixtures.pki import TestPki as Pki

from .helpers import batch_command, check_consistent, many_records, write_records


def test_no_checkpoint_thread_when_the_workers_fork(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(signer.run, "BATCH_SIZE", 8)  # IN_FLIGHT x 2 jobs = 6 batches = 48 records
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(72)
    first = write_records(tmp_path / "first.jsonl", records[:50])  # the first 6 batches and 2 more records
    assert main(command(first)) == 0
    threads: list[list[str]] = []  # at each submit: the first one forks the workers
    real_submit = signer.run._submit

    def submit(pool: Any, task: Any) -> Any:
        threads.append([t.name for t in threading.enumerate()])
        return real_submit(pool, task)

    monkeypatch.setattr(signer.run, "_submit", submit)
    source = write_records(tmp_path / "in.jsonl", records)
    assert main(command(source, "--jobs", "2")) == 0
    assert len(threads) >= 2  # batches 7 and 8 (the last, 9, may be the run's own: _Flight.input_read)
    assert "ledger-checkpoint" not in threads[0]
    assert "ledger-checkpoint" in threads[1]  # started once the workers exist (batch 1 written meanwhile)
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])
