"""A batch task's files are closed as soon as each is flushed: a run of
256-record tasks with three files per record (hc1, png, svg) works under a
soft limit of 256 open files (``ulimit -n``). It used to hold every staged
file of a task open until the task's end (768 here; 1,024 with --pdf --svg,
over the common limit of 1,024) and stop with "Too many open files", with
--jobs 2 (signer.run.Stager, in the workers) and --jobs 1
(BatchOutput.write_durably, in the run's process)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.ledger.secret import LEDGER_KEY_ENV
from signer.run import BATCH_SIZE
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

from .helpers import AT, CENTRE, check_consistent, many_records, write_records

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 256  # open files: far fewer than a task's 3 x 256


def _low_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard))


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_batch_under_a_low_open_file_limit(test_pki: Pki, tmp_path: Path, jobs: str) -> None:
    assert BATCH_SIZE * 3 > 2 * LIMIT
    key, cert = write_key_files(test_pki.dsc_ec, tmp_path)
    records = many_records(BATCH_SIZE + 20)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = [sys.executable, "-m", "signer", "batch", str(source), "--out", str(out), "--ledger", ledger,
            "--centre", CENTRE, "--at", AT, "--progress", "none", "--key", str(key), "--cert", str(cert),
            "--svg", "--jobs", jobs]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != LEDGER_KEY_ENV}
    env[KEY_PASSPHRASE_ENV] = TEST_PASSPHRASE
    done = subprocess.run(args, cwd=ROOT, env=env, preexec_fn=_low_limit, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    current = check_consistent(ledger, out, [r.record_id for r in records])
    assert all(len(cert.files) == 3 for cert in current.values())
