"""A run stopped at the folder flush (step 5 waits for fsync of the output folder) places nothing more and never
moves its resume point past a batch left 'signed' (review10-batch F1, F2).

F1: one folder flush fails (a transient EIO): the run exits 2, and the batch signed after it is not placed by
the stop path (it was, with the resume point saved past the batch left 'signed': the same command then skipped
those records and exited 0). F2: SIGTERM while the run waits for the folder flush: the stop path waits for that
flush before it commits step 5 ('written'); it used to commit at once, before the renames were on disk.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.cli import main
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from tests.fixtures.pki import TestPki as Pki
from tests.ledger.helpers import (
    AT,
    CENTRE,
    batch_command,
    check_consistent,
    many_records,
    write_records,
)
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files


@pytest.mark.parametrize("fail_at", [1, 3])
def test_one_failed_folder_flush_places_nothing_more(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], fail_at: int) -> None:  # fmt: skip
    import signer.batch as batch_module
    import signer.run as run_module

    monkeypatch.setattr(run_module, "BATCH_SIZE", 4)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(4 * 30)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = command(source, "--jobs", "2")
    real = batch_module.BatchOutput.sync_folder
    calls = [0]

    def failing_once(output: object) -> None:
        calls[0] += 1
        if calls[0] == fail_at:
            raise OSError(errno.EIO, "Input/output error")
        real(output)

    monkeypatch.setattr(batch_module.BatchOutput, "sync_folder", failing_once)
    assert main(args) == 2
    assert "cannot write into" in capsys.readouterr().err
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        states = {c.record_id: c.state for c in led.in_states(("reserved", "signed", "written"))}
    finally:
        led.close()
    point = out / ".resume" / "point.json"
    line = json.loads(point.read_text())["line"] if point.exists() else 0
    assert [r.record_id for r in records if r.line <= line and states.get(r.record_id) != "written"] == []
    monkeypatch.setattr(batch_module.BatchOutput, "sync_folder", real)
    assert main(args) == 0
    assert "not in this input" not in capsys.readouterr().err
    check_consistent(ledger, out, [r.record_id for r in records])


LAUNCH = (
    "import sys, os, time, signer.run, signer.batch as b; signer.run.BATCH_SIZE = 8\n"
    "log = open(os.environ['FLUSH_LOG'], 'a', buffering=1)\n"
    "real_sync = b.BatchOutput.sync_folder\n"
    "n = [0]\n"
    "def sync(self):\n"
    "    n[0] += 1\n"
    "    if n[0] == 3:\n"
    "        log.write('slow folder flush starts\\n'); time.sleep(4)\n"
    "    real_sync(self)\n"
    "    log.write(f'folder flush {n[0]} ended\\n')\n"
    "b.BatchOutput.sync_folder = sync\n"
    "real_mark = b.LedgerRun._mark_written\n"
    "def mark(self, done):\n"
    "    r = real_mark(self, done)\n"
    "    if done: log.write('step 5 prepared\\n')\n"
    "    return r\n"
    "b.LedgerRun._mark_written = mark\n"
    "from signer.cli import main; sys.exit(main(sys.argv[1:]))"
)


def test_sigterm_while_the_folder_flush_runs_waits_for_it(test_pki: Pki, tmp_path: Path) -> None:
    records = many_records(40 * 8)
    source = write_records(tmp_path / "in.jsonl", records)
    key, cert = write_key_files(test_pki.dsc_ec, tmp_path)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    env = {k: v for k, v in os.environ.items() if k != LEDGER_KEY_ENV}
    env[KEY_PASSPHRASE_ENV] = TEST_PASSPHRASE
    log = tmp_path / "log"
    env["FLUSH_LOG"] = str(log)
    command = [sys.executable, "-c", LAUNCH, "batch", str(source), "--out", str(out), "--ledger", ledger,
               "--centre", CENTRE, "--at", AT, "--jobs", "2", "--progress", "none", "--key", str(key),
               "--cert", str(cert)]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    end = time.monotonic() + 60
    while time.monotonic() < end and not (log.exists() and "slow folder flush" in log.read_text()):
        time.sleep(0.01)
    time.sleep(1.0)  # into the slow flush
    os.kill(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    lines = log.read_text().splitlines()
    slow = lines.index("slow folder flush starts")
    ended = lines.index("folder flush 3 ended")
    assert all(i > ended for i, x in enumerate(lines) if x == "step 5 prepared" and i > slow), lines
    again = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    check_consistent(ledger, out, [r.record_id for r in records])
