"""`signer sign --jobs N` (no ledger) while the run's own process signs batches
and hands batches over to its workers in the middle of its own: error lines and
the manifest stay in input order, every record signed once, no file left over
(a review's test: writing the first finished batch instead of the oldest passed
tests/ledger/test_run_signs.py). The run's process and, much more, the first
worker to start are slowed, the other worker (--jobs 3) is not, and the test
checks that the case it is about happened: the run had to wait for a batch while
a newer one had ended (with --jobs 3 also one worker's before the other's)."""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import signer.run
from signer.cli import main
from signer.manifest import read_manifest
from tests.ledger.helpers import many_records, write_records
from tests.signer.test_cli import key_args

AT = "2026-06-01T12:00:00Z"


@pytest.mark.parametrize("jobs", ["2", "3"])
def test_sign_with_jobs_keeps_input_order(jobs: str, ec_key_files: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    from keys.secrets import KEY_PASSPHRASE_ENV
    from tests.signer.conftest import TEST_PASSPHRASE
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    monkeypatch.setattr(signer.run, "BATCH_SIZE", 32)
    here = os.getpid()
    real_check, real_start, real_sign = signer.run.self_check, signer.run._start_worker, signer.run.Signer.sign
    real_collect = signer.run.SigningRun._collect
    slow, first, ended = [False], tmp_path / "first-worker", tmp_path / "ended"
    overtaken: list[int] = []  # the batches (first line) the run waited for while a newer one had ended

    def ends() -> list[tuple[int, ...]]:  # (first line, pid) of each batch signed so far, as they ended
        return [tuple(map(int, line.split())) for line in ended.read_text().splitlines()] if ended.exists() else []

    def start_worker(*args: Any) -> None:  # the first worker to start is the slow one (set in that process only)
        real_start(*args)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(first, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            slow[0] = True

    def check(*args: Any) -> Any:  # run's process slow; in --jobs 3 one worker much slower than the other
        if os.getpid() == here:
            time.sleep(0.002)
        elif slow[0]:
            time.sleep(0.01)
        return real_check(*args)

    def sign(self: Any, records: Any, *args: Any, **kwargs: Any) -> Any:  # each batch's end, in every process
        results = real_sign(self, records, *args, **kwargs)
        with open(ended, "a") as fh:
            fh.write(f"{records[0].line} {os.getpid()}\n")
        return results

    def collect(self: Any, flight: Any, item: Any, idle: Any = None) -> Any:  # step 3 of the oldest batch
        batch, _, task = item
        if not task.done() and any(line > batch[0].line for line, _ in ends()):
            overtaken.append(batch[0].line)
        return real_collect(self, flight, item, idle)

    monkeypatch.setattr(signer.run, "_start_worker", start_worker)
    monkeypatch.setattr(signer.run.SigningRun, "_collect", collect)
    monkeypatch.setattr(signer.run, "self_check", check)
    monkeypatch.setattr(signer.run.Signer, "sign", sign)
    sizes: list[int] = []
    real_here, real_submit = signer.run._sign_here, signer.run._submit

    def sign_here(s: Any, task: Any) -> Any:
        sizes.append(len(task[0]))
        return real_here(s, task)

    def submit(pool: Any, task: Any) -> Any:
        sizes.append(len(task[0]))
        return real_submit(pool, task)

    monkeypatch.setattr(signer.run, "_sign_here", sign_here)
    monkeypatch.setattr(signer.run, "_submit", submit)
    records = many_records(20 * 32)
    for i in range(7, len(records), 37):  # duplicates: refused rows interleaved
        records[i] = replace(records[i - 3], line=records[i].line)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert main(["sign", str(source), "--out", str(out), "--at", AT, "--jobs", jobs, *key_args(ec_key_files)]) == 1
    err = capsys.readouterr().err
    lines = [int(line.split()[1].rstrip(":")) for line in err.splitlines() if line.startswith("line ")]
    refused = list(range(8, len(records) + 1, 37))
    assert lines == refused
    manifest = read_manifest(out / "manifest.jsonl")
    assert [e["line"] for e in manifest] == [r.line for r in records if r.line not in refused]
    assert sum(sizes) == len(records) - len(refused)
    assert len(list(out.glob("*.hc1.txt"))) == len(records) - len(refused)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != ".partial"]
    # the case this is about happened: the run waited for a batch while a newer one had ended (writing the first
    # finished batch would write that one first); with --jobs 3 one worker's batch ended before the other's older one
    assert len(ends()) == len(records) // 32
    assert overtaken, ends()
    workers = [line for line, pid in ends() if pid != here]
    assert jobs == "2" or workers != sorted(workers), ends()
