"""The run's wait for a worker's flush confirmations (review10-batch F4, F4b).

A worker's later task confirmed never covers its earlier task's failed flush (F4b).

The worker's task 1 fails its flush (EIO), its task 2's flush then really succeeds and is confirmed, both
before the run collects task 1 (the run waits for that order and the test checks it): the run must still stop
at batch 1 with nothing of it placed (``_FlushBoard.confirm`` confirms nothing after a failure), and the same
command then completes. The failure is injected in ``Flusher.flush`` itself, not below it: a flusher's own
failure is sticky (signer.durable), so task 2's flush would fail too and never confirm anything.

A worker killed while the run waits for its confirmation (F4): the run stops at once (exit 2, "a signing
process stopped unexpectedly"), never waits for ever, and the same command then completes.
"""

from __future__ import annotations

import errno
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
#: In the worker, the flush of the task holding argv[1] (a file name, "NONE": none) fails with EIO, once: raised
#: in place of ``Flusher.flush`` (not inside it, which would make that worker's flusher fail every later flush), so
#: the worker's next task's flush really succeeds. The worker logs each confirmation to argv[2] ("confirm WORKER
#: NUMBER ERRNO") and the run waits for a task ("wait WORKER NUMBER -") only once a worker's task confirmed without
#: error right after its failed one (at most 60 s).
LAUNCH = (
    "import sys, os, time, errno, signer.run, signer.durable as d; signer.run.BATCH_SIZE = 8\n"
    "main_pid = os.getpid(); real_flush = d.Flusher.flush; bad, log = sys.argv[1], sys.argv[2]\n"
    "def flush(self, files):\n"
    "    if os.getpid() != main_pid and any(p.endswith('/' + bad) for p, _ in files):\n"
    "        raise OSError(errno.EIO, 'Input/output error')\n"
    "    real_flush(self, files)\n"
    "d.Flusher.flush = flush\n"
    "board = signer.run._FlushBoard; real_confirm, real_wait = board.confirm, board.wait\n"
    "def note(line):\n"
    "    with open(log, 'a') as fh: fh.write(line + '\\n')\n"
    "def confirm(self, worker, number, error):\n"
    "    real_confirm(self, worker, number, error)\n"
    "    note(f'confirm {worker} {number} {error.errno if error else 0}')\n"
    "def covered():\n"
    "    seen = [line.split() for line in open(log)] if os.path.exists(log) else []\n"
    "    failed = {(w, int(n)) for k, w, n, e in seen if k == 'confirm' and e != '0'}\n"
    "    return any(k == 'confirm' and e == '0' and (w, int(n) - 1) in failed for k, w, n, e in seen)\n"
    "def wait(self, pool, worker, number, idle=None):\n"
    "    end = time.monotonic() + 60\n"
    "    while bad != 'NONE' and not covered() and time.monotonic() < end: time.sleep(0.01)\n"
    "    note(f'wait {worker} {number} -')\n"
    "    real_wait(self, pool, worker, number, idle)\n"
    "board.confirm, board.wait = confirm, wait\n"
    "from signer.cli import main; sys.exit(main(sys.argv[3:]))"
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
    log = tmp_path / "confirmations"
    run = subprocess.run([sys.executable, "-c", LAUNCH, "R00003.hc1.txt", str(log), *args], env=env,
                         capture_output=True, timeout=300)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert b"Input/output error" in run.stderr and b"Traceback" not in run.stderr
    assert [r.record_id for r in records[:BATCH] if any(out.glob(r.record_id + ".*"))] == []
    # what this is about happened: task 1 (batch 1) failed, task 2 then confirmed, and only then the run waited for task 1
    seen = [line.split() for line in log.read_text().splitlines()]
    failed, later, waited = ["confirm", "0", "1", str(errno.EIO)], ["confirm", "0", "2", "0"], ["wait", "0", "1", "-"]
    assert failed in seen and later in seen and waited in seen, seen
    assert seen.index(failed) < seen.index(later) < seen.index(waited), seen
    again = subprocess.run([sys.executable, "-c", LAUNCH, "NONE", str(tmp_path / "again"), *args], env=env,
                           capture_output=True, timeout=300)  # fmt: skip
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
