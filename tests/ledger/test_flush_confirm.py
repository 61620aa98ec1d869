"""The run's wait for a worker's flush confirmations (review10-batch F4, F4b).

A worker's later task confirmed never covers its earlier task's failed flush (F4b).

The worker's task 1 fails the flush of one file (EIO), its task 2 flushes fine, both before the run, busy
signing a batch of its own, collects task 1: the run must still stop at batch 1 with nothing of it placed
(``_FlushBoard.confirm`` confirms nothing after a failure), and the same command then completes.

A worker killed while the run waits for its confirmation (F4): the run stops at once (exit 2, "a signing
process stopped unexpectedly"), never waits for ever, and the same command then completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.ledger.secret import LEDGER_KEY_ENV
from tests.fixtures.pki import TestPki as Pki
from tests.ledger.helpers import AT, CENTRE, check_consistent, many_records, write_records
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

BATCH = 8
#: The run's process sleeps 1.5 s before each batch it signs itself; in the worker, the flush of R00003's task fails
#: (argv[1]: the file name, "NONE" for a run without a failure).
LAUNCH = (
    "import sys, os, time, errno, signer.run, signer.durable as d; signer.run.BATCH_SIZE = 8\n"
    "main_pid = os.getpid(); real = d.flush_files; real_sign = signer.run.Signer.sign; bad = sys.argv[1]\n"
    "def ff(fd, paths, one):\n"
    "    if os.getpid() != main_pid and any(p.endswith('/' + bad) for p in paths):\n"
    "        raise OSError(errno.EIO, 'Input/output error')\n"
    "    real(fd, paths, one)\n"
    "d.flush_files = ff\n"
    "def sign(self, *a, **k):\n"
    "    if os.getpid() == main_pid: time.sleep(1.5)\n"
    "    return real_sign(self, *a, **k)\n"
    "signer.run.Signer.sign = sign\n"
    "from signer.cli import main; sys.exit(main(sys.argv[2:]))"
)


def _batch(test_pki: Pki, tmp_path: Path, count: int) -> tuple[list[Any], Path, str, dict[str, str], list[str]]:
    """(records, out, ledger, environment, ``signer batch --jobs 2`` arguments) of ``count`` records."""
    records = many_records(count)
    source = write_records(tmp_path / "in.jsonl", records)
    key, cert = write_key_files(test_pki.dsc_ec, tmp_path)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    env = {k: v for k, v in os.environ.items() if k != LEDGER_KEY_ENV}
    env[KEY_PASSPHRASE_ENV] = TEST_PASSPHRASE
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", AT,
            "--jobs", "2", "--progress", "none", "--key", str(key), "--cert", str(cert)]  # fmt: skip
    return records, out, ledger, env, args


def test_a_later_confirmation_does_not_cover_a_failed_flush(test_pki: Pki, tmp_path: Path) -> None:
    records, out, ledger, env, args = _batch(test_pki, tmp_path, 20 * BATCH)
    run = subprocess.run([sys.executable, "-c", LAUNCH, "R00003.hc1.txt", *args], env=env, capture_output=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert b"Input/output error" in run.stderr and b"Traceback" not in run.stderr
    assert [r.record_id for r in records[:BATCH] if any(out.glob(r.record_id + ".*"))] == []
    again = subprocess.run([sys.executable, "-c", LAUNCH, "NONE", *args], env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    check_consistent(ledger, out, [r.record_id for r in records])


#: In a worker, the flush of R00010's task (argv[1]; "NONE": none) stalls 60 s after writing the worker's pid to argv[2].
LAUNCH_STALL = (
    "import sys, os, time, signer.run, signer.durable as d; signer.run.BATCH_SIZE = 8\n"
    "main_pid = os.getpid(); real = d.flush_files; slow, mark = sys.argv[1], sys.argv[2]\n"
    "def ff(fd, paths, one):\n"
    "    if os.getpid() != main_pid and any(p.endswith('/' + slow) for p in paths):\n"
    "        open(mark, 'w').write(str(os.getpid())); time.sleep(60)\n"
    "    real(fd, paths, one)\n"
    "d.flush_files = ff\n"
    "from signer.cli import main; sys.exit(main(sys.argv[3:]))"
)


def test_a_worker_killed_while_the_run_waits_for_it_stops_the_run(test_pki: Pki, tmp_path: Path) -> None:
    records, out, ledger, env, args = _batch(test_pki, tmp_path, 40 * BATCH)
    mark = tmp_path / "mark"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH_STALL, "R00010.hc1.txt", str(mark), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and not (mark.exists() and mark.read_text()):
            assert proc.poll() is None
            time.sleep(0.01)
        time.sleep(1.5)  # the run has the worker's next results and waits for this task's confirmation
        os.kill(int(mark.read_text()), signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, err
    assert err.decode().strip().splitlines()[-1] == "error: a signing process stopped unexpectedly; the run is incomplete"
    again = subprocess.run([sys.executable, "-c", LAUNCH_STALL, "NONE", str(mark), *args], env=env,
                           capture_output=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    check_consistent(ledger, out, [r.record_id for r in records])
