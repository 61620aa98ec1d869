"""With ``--jobs N`` the run's own process is one of the N signing processes
(signer.run.SigningRun.sign_all, ``_sign_here``): it signs a batch itself,
with the workers' staging and journal, whenever the N - 1 workers have work
enough queued. Outputs, ledger, manifest and the adoption after a kill must
not tell which process signed a batch; a killed worker still stops the run.

The worker is slowed (``Signer.sign`` sleeps in every process but the run's)
so that its queue fills and the run's process signs some batches for sure."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import signer.durable as durable
import signer.run
from signer.cli import main
from signer.ledger import Ledger
from tests.fixtures.pki import TestPki as Pki

from .helpers import AT, CENTRE, batch_command, check_consistent, many_records, write_records
from .test_stop import assert_completed_by_the_next_run, assert_stopped, hc1_files

BATCH = 8


def slow_workers(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.05) -> list[int]:
    """``Signer.sign`` sleeps first in the forked workers (not in this process);
    returns the list that collects the sizes of the batches this process signs itself."""
    here = os.getpid()
    real_sign = signer.run.Signer.sign
    real_here = signer.run._sign_here
    signed_here: list[int] = []

    def sign(self: Any, *args: Any, **kwargs: Any) -> Any:
        if os.getpid() != here:
            time.sleep(seconds)
        return real_sign(self, *args, **kwargs)

    def sign_here(signer_: Any, task: Any) -> Any:
        signed_here.append(len(task[0]))
        return real_here(signer_, task)

    monkeypatch.setattr(signer.run.Signer, "sign", sign)
    monkeypatch.setattr(signer.run, "_sign_here", sign_here)
    return signed_here


def until(done: Callable[[], bool]) -> None:
    """Poll ``done`` until true, 30 s at most (the test's assertions then fail)."""
    end = time.monotonic() + 30
    while not done() and time.monotonic() < end:
        time.sleep(0.005)


def slow_here(monkeypatch: pytest.MonkeyPatch, seconds: float = 0.4) -> None:
    """The run's own process sleeps before each batch it signs itself, so that
    the worker's batches are ready before it at the end of the input; and once
    the input is read, a batch is written only after every task handed to the
    worker so far ended and its flush was confirmed (with each flush 20 ms
    slower the worker took the last batches and the run placed each as its
    flush ended: never two ready together)."""
    import signer.batch as batch_module

    real_here, real_submit, real_write = signer.run._sign_here, signer.run._submit, batch_module.LedgerRun._write
    tasks: list[Any] = []  # handed to the worker

    def sign_here(signer_: Any, task: Any) -> Any:
        time.sleep(seconds)
        return real_here(signer_, task)

    def submit(pool: Any, task: Any) -> Any:
        tasks.append(real_submit(pool, task))
        return tasks[-1]

    def confirmed() -> bool:
        board = signer.run._board
        return all(t.done() and (t.exception() is not None or board is None or board.ended(t.result())) for t in tasks)

    def write(run: Any, *args: Any) -> None:
        if run._input_read:
            until(confirmed)
        real_write(run, *args)

    monkeypatch.setattr(signer.run, "_sign_here", sign_here)
    monkeypatch.setattr(signer.run, "_submit", submit)
    monkeypatch.setattr(batch_module.LedgerRun, "_write", write)


def test_the_run_and_its_worker_both_sign(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(20 * BATCH)
    submitted: list[int] = []
    real_submit = signer.run._submit

    def submit(pool: Any, task: Any) -> Any:
        submitted.append(len(task[0]))
        return real_submit(pool, task)

    monkeypatch.setattr(signer.run, "_submit", submit)
    signed_here = slow_workers(monkeypatch, 0.3)  # with 0.05 s it kept pace with admissions 80 ms slower
    source = write_records(tmp_path / "in.jsonl", records)
    assert main(command(source, "--jobs", "2")) == 0
    assert capsys.readouterr().out.startswith(f"batch: {len(records)} record(s): {len(records)} issued")
    assert signed_here and submitted  # both signed
    assert sum(signed_here) + sum(submitted) == len(records)  # every batch once
    current = check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [e["record_id"] for e in manifest] == [r.record_id for r in records]  # input order
    # the same again: nothing new, whichever process signed what
    assert main(command(source, "--jobs", "2")) == 0
    assert f"{len(records)} skipped" in capsys.readouterr().out
    again = check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])
    assert {k: v.uvci for k, v in again.items()} == {k: v.uvci for k, v in current.items()}


def test_files_the_run_signed_itself_are_adopted_after_a_kill(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed (os._exit, as kill -9) right after the run's own process staged
    a batch: the next run adopts those files (its journal in a staging folder
    named after the run's process), signs nothing of them again."""
    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * BATCH)
    source = write_records(tmp_path / "in.jsonl", records)
    args = command(source, "--jobs", "2")
    pid = os.fork()
    if pid == 0:
        try:
            slow_workers(monkeypatch, 0.2)
            real_here = signer.run._sign_here

            def sign_here_then_die(signer_: Any, task: Any) -> Any:
                real_here(signer_, task)
                os._exit(9)

            monkeypatch.setattr(signer.run, "_sign_here", sign_here_then_die)
            main(args)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the run's process signed no batch"
    own = [p for p in (tmp_path / "out" / ".partial").iterdir() if p.name.startswith(f"w{pid}-")]
    assert len(own) == 1  # the run's own staging folder: one batch
    lines = [json.loads(line) for line in (own[0] / ".journal").read_text().splitlines()]
    assert len(lines) == BATCH
    led = Ledger.open(str(tmp_path / "ledger.sqlite"), actor="t", create=False)
    try:
        pending = {c.record_id: c.uvci for c in led.in_states(("reserved", "signed"))}
    finally:
        led.close()
    assert {line["record_id"] for line in lines} <= set(pending)

    time.sleep(1)  # the orphaned worker ends (its watchdog polls every 0.5 s)
    capsys.readouterr()
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert "of them with the files it had finished" in summary
    current = check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])
    for line in lines:  # the very files the run's process had signed, under the reserved UVCI
        cert = current[line["record_id"]]
        assert cert.uvci == pending[line["record_id"]]
        assert sorted([f.name, f.sha256, f.size] for f in cert.files) == sorted(line["files"])


#: ``signer batch`` in batches of 8 whose worker is slow (the run's process
#: then signs some batches itself)
SLOW_WORKER = """
import os, sys, time
import signer.run
from signer.cli import main
signer.run.BATCH_SIZE = 8
here, real = os.getpid(), signer.run.Signer.sign
def sign(self, *args, **kwargs):
    if os.getpid() != here:
        time.sleep(0.05)
    return real(self, *args, **kwargs)
signer.run.Signer.sign = sign
sys.exit(main(sys.argv[1:]))
"""


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_killed_worker_stops_the_run_cleanly(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL of the pool's worker while the run's process signs too: exit 2
    with one line, every placed file listed, then the same command completes."""
    records = many_records(60 * BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    args = command(write_records(tmp_path / "in.jsonl", records), "--jobs", "2")
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WORKER, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        out, end = tmp_path / "out", time.monotonic() + 60
        while time.monotonic() < end and proc.poll() is None:
            if out.is_dir() and len(hc1_files(out)) >= 4 * BATCH:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the run ended before its worker could be killed"
        workers = children(proc.pid)
        assert len(workers) == 1  # --jobs 2: the run and one worker
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_stopped(
        proc.returncode, err, tmp_path, at_least=4 * BATCH,
        line="error: a signing process stopped unexpectedly; the run is incomplete",
    )  # fmt: skip
    assert len(hc1_files(tmp_path / "out")) < len(records)
    assert_completed_by_the_next_run(args, tmp_path, records)


def test_a_token_key_signs_in_the_run_and_its_worker(
    softhsm_token: Any,
    softhsm_pin_env: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """PKCS#11 (SoftHSM2) with --jobs 2: the worker logs in to the token in its
    own session after the fork; the run's process signs with the session it
    opened before (still its own: PKCS#11 state is per process)."""
    from signer.ledger.secret import LEDGER_KEY_ENV

    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    signed_here = slow_workers(monkeypatch, 0.3)
    records = many_records(10 * BATCH)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", AT,
            "--progress", "none", "--jobs", "2", "--pkcs11-module", softhsm_token.module,
            "--token-label", softhsm_token.token_label, "--key-label", "dsc-ec"]  # fmt: skip
    assert main(args) == 0
    captured = capfd.readouterr()
    assert softhsm_pin_env not in captured.out + captured.err
    assert signed_here and sum(signed_here) < len(records)  # the run and its worker both signed
    current = check_consistent(ledger, out, [r.record_id for r in records])
    from verifier import codec
    from verifier.crypto import verify_signature

    public = softhsm_token.es256_cert.public_key()
    for cert in current.values():  # every signature made with the token's key, whoever made it
        sign1 = codec.decode_sign1(codec.from_qr_text((out / f"{cert.record_id}.hc1.txt").read_text()))
        assert verify_signature(public, sign1.alg, codec.sig_structure(sign1.protected_bytes, sign1.payload), sign1.signature)


def test_the_worker_gets_two_tasks_at_most_and_the_run_signs_the_rest(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker never has more than TASKS_PER_WORKER batches not yet done
    (so at the end of the input it has at most that many left while the run's
    process signs the rest); every batch is signed once, by one of the two."""
    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * BATCH)
    tasks: list[Any] = []
    outstanding: list[int] = []  # the worker's tasks not yet done, at each new one
    real_submit = signer.run._submit

    def submit(pool: Any, task: Any) -> Any:
        outstanding.append(sum(not t.done() for t in tasks))
        tasks.append(real_submit(pool, task))
        return tasks[-1]

    monkeypatch.setattr(signer.run, "_submit", submit)
    signed_here = slow_workers(monkeypatch, 0.5)
    source = write_records(tmp_path / "in.jsonl", records)
    assert main(command(source, "--jobs", "2")) == 0
    assert capsys.readouterr().out.startswith(f"batch: {len(records)} record(s): {len(records)} issued")
    assert max(outstanding) < signer.run.TASKS_PER_WORKER
    assert signed_here and len(tasks) < len(records) // BATCH  # both signed
    assert len(tasks) * BATCH + sum(signed_here) == len(records)
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])


def test_the_worker_is_fed_while_the_run_signs_a_batch(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's process hands a held-back batch to the worker in the middle
    of signing one itself (every JOURNAL_EVERY records), not only between
    batches: a worker whose tasks end meanwhile does not wait for work.

    The worker's first task waits until the run's process starts signing a
    batch itself, and that batch until the worker's first task ended: else a
    worker faster than the admissions (20 ms more each was enough) took every
    batch and the run's process signed none."""
    monkeypatch.setattr(signer.run, "BATCH_SIZE", 2 * signer.run.JOURNAL_EVERY)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * 2 * signer.run.JOURNAL_EVERY)
    here, inside, during = os.getpid(), [False], []
    tasks: list[Any] = []  # handed to the worker, in order
    signing_here = tmp_path / "signing-here"  # made as this process starts signing a batch itself
    real_check, real_here, real_submit = signer.run.self_check, signer.run._sign_here, signer.run._submit

    def slow_check(*args: Any) -> Any:  # this process signs slowly, the worker fast
        if os.getpid() == here:
            time.sleep(0.005)
        else:  # once this process signs a batch itself
            until(signing_here.exists)
        return real_check(*args)

    sizes: list[int] = []  # of the batches signed, here or by the worker

    def sign_here(signer_: Any, task: Any) -> Any:
        sizes.append(len(task[0]))
        signing_here.touch()
        until(tasks[0].done)  # the worker's first task has ended: the first between() hands a batch over
        inside[0] = True
        try:
            return real_here(signer_, task)
        finally:
            inside[0] = False

    def submit(pool: Any, task: Any) -> Any:
        sizes.append(len(task[0]))
        during.append(inside[0])
        tasks.append(real_submit(pool, task))
        return tasks[-1]

    monkeypatch.setattr(signer.run, "self_check", slow_check)
    monkeypatch.setattr(signer.run, "_sign_here", sign_here)
    monkeypatch.setattr(signer.run, "_submit", submit)
    source = write_records(tmp_path / "in.jsonl", records)
    assert main(command(source, "--jobs", "2")) == 0
    assert capsys.readouterr().out.startswith(f"batch: {len(records)} record(s): {len(records)} issued")
    assert any(during)  # handed over while this process was signing a batch
    assert sum(sizes) == len(records)  # each batch once: not the one being signed here
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])


def test_a_failed_flush_of_a_file_the_run_staged_itself(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run's own process does not wait for its staged files' flushes when
    it has signed a batch (Stager.later: that batch's step 3 waits for them,
    and the flush failing drops the folder's journal at once, as in a worker).
    A flush that fails (EIO) stops the run at that batch's step 3 with one
    line, nothing of it placed; the same command then completes."""
    import errno

    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * BATCH)
    source = write_records(tmp_path / "in.jsonl", records)
    args = command(source, "--jobs", "2")
    out = tmp_path / "out"
    here = os.getpid()
    real_flush = durable.flush_files

    def failing(fd: int, paths: list[str], one_by_one: bool) -> None:  # the run's own first staged batch only
        own = [path for path in paths if f"/w{here}-" in path and path.endswith(".png")]
        if os.getpid() == here and own and not failed:
            failed.append(own[0])
            raise OSError(errno.EIO, "Input/output error")
        real_flush(fd, paths, one_by_one)

    failed: list[str] = []
    slow_workers(monkeypatch, 0.2)
    monkeypatch.setattr(durable, "flush_files", failing)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write into") and "Input/output error" in err
    staged_name = Path(failed[0]).name
    assert not (out / staged_name).exists()  # its batch not placed
    assert main(args) == 0
    check_consistent(str(tmp_path / "ledger.sqlite"), out, [r.record_id for r in records])


class _HandOver:
    """Stands in for the pool in the scheduler's own test: keeps each task
    handed over, for the test to end in the order it chooses."""

    def __init__(self) -> None:
        from concurrent.futures import Future

        self.tasks: list[Future[Any]] = []
        self._future = Future

    def submit(self, fn: Any, task: Any) -> Any:
        future = self._future()
        self.tasks.append(future)
        return future


def test_once_the_input_is_read_a_worker_gets_a_task_only_when_it_has_none() -> None:
    """At the end of the input a batch queued behind a worker's current task
    would leave the run's process idle while the worker signs both: the held
    batches are the run's own to sign, and a worker gets one only when its
    tasks are all done."""
    from signer.run import Admitted, Job, _Flight, _with_last

    record = many_records(1)[0]
    assert list(_with_last(iter([[1], [2], [3]]))) == [([1], False), ([2], False), ([3], True)]  # type: ignore[list-item]
    assert list(_with_last(iter([]))) == []
    flight, pool = _Flight(1), _HandOver()
    for _ in range(4):
        flight.add([record], Admitted({}, [Job(0, record, True)]))
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == signer.run.TASKS_PER_WORKER and flight.held() == 2
    flight.input_read()
    pool.tasks[0].set_result([])  # one task left to the worker: nothing more for it
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 2 and flight.held() == 2
    pool.tasks[1].set_result([])  # none left: one more
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 3 and flight.held() == 1


def test_a_task_ending_before_an_older_one_frees_its_worker() -> None:
    """With 2 workers (--jobs 3), a later task that ends first frees a place:
    a held-back batch goes to the pool at once, not after the oldest task ends
    (review9: the fast worker sat idle about 1 s a 20k run)."""
    from signer.run import Admitted, Job, _Flight

    record = many_records(1)[0]
    flight, pool = _Flight(2), _HandOver()
    for _ in range(6):
        flight.add([record], Admitted({}, [Job(0, record, True)]))
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 2 * signer.run.TASKS_PER_WORKER and flight.held() == 2
    pool.tasks[1].set_result([])  # the second worker's task ends; the first worker's oldest does not
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 5 and flight.held() == 1


def test_tasks_that_adopt_weigh_less_in_a_workers_queue() -> None:
    """A resume starts with batches whose records the killed run had finished
    (adopted: checked, not signed, ~3 times faster). Counted as whole tasks,
    two of them were done before the run's process had signed one batch of
    its own, and the worker sat idle; weighed, the worker is handed more."""
    from signer.run import ADOPT_WEIGHT, Admitted, Job, _Flight, _weight

    record = many_records(1)[0]
    adopted = Job(0, record, True, adopt=object())  # type: ignore[arg-type]  # what an Attempt is does not matter here
    signed = Job(0, record, True)
    assert _weight([signed, signed]) == 1.0
    assert _weight([adopted, adopted]) == ADOPT_WEIGHT
    assert _weight([adopted, signed]) == (1 + ADOPT_WEIGHT) / 2
    flight, pool = _Flight(1), _HandOver()
    for _ in range(5):
        flight.add([record], Admitted({}, [adopted]))
    flight.add([record], Admitted({}, [signed]))
    flight.feed(pool)  # type: ignore[arg-type]
    # 0.3 each: the first five adopting tasks (1.5) and the signing one (2.5) are the worker's
    assert len(pool.tasks) == 6 and flight.held() == 0
    flight.add([record], Admitted({}, [signed]))
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 6 and flight.held() == 1  # full: held back for the run's process
    for task in pool.tasks[:4]:  # 0.3 + 1 left: room for the held one
        task.set_result([])
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 7 and flight.held() == 0


def test_at_the_end_a_held_batch_waits_for_a_worker_about_to_be_free() -> None:
    """Once the input is read, the run's process signed a held batch whenever
    the oldest batch was a worker's not ended: a resume's last batch of 160
    was signed here while the worker was to end ~20 ms later, and four batches
    were then written with the worker idle. Now the batch is left to the
    worker when it is free before this process could have signed it and
    before it has written the batches ahead."""
    from signer.run import Admitted, Job, _Flight

    record = many_records(1)[0]
    flight, pool = _Flight(1), _HandOver()
    for size in (100, 100, 60):  # the last batch: 60 records
        flight.add([record] * size, Admitted({}, [Job(i, record, True) for i in range(size)]))
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 2 and flight.held() == 1
    flight.input_read()
    held = flight.oldest_held()
    first, _ = flight._fed
    assert flight.sign_here_rather(held, first.handed)  # nothing measured yet: as before
    flight.per_record = 0.001  # 1 ms a record: 0.1 s a worker's task, 0.06 s the held batch here
    flight.spent, flight.admitted = 0.2, 4  # 0.05 s to write each batch
    # the first task in progress, the second queued behind it: a worker free in 0.2 s
    assert flight.worker_free_in(first.handed) == pytest.approx(0.2, abs=0.01)
    assert flight.sign_here_rather(held, first.handed)
    pool.tasks[0].set_result([])
    ended = flight._done_at
    assert flight.worker_free_in(ended) == pytest.approx(0.1)  # the second task, begun as the first ended
    assert flight.sign_here_rather(held, ended)  # busy for 0.1 s: time to sign it here
    # 10 ms before the worker is free, with two batches ahead to write (0.1 s): the worker's
    assert not flight.sign_here_rather(held, ended + 0.09)
    flight.spent = 0.01  # writing the batches ahead would take 5 ms: signed here after all
    assert flight.sign_here_rather(held, ended + 0.09)
    pool.tasks[1].set_result([])
    assert flight.worker_free_in(ended + 0.09) == 0.0  # nothing left: handed over at the next feed
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 3 and flight.held() == 0


def test_the_last_batch_in_leaves_the_held_ones_to_the_end_rule() -> None:
    """While the input is read, more batches held back than workers means the
    workers have enough: the oldest held one is signed here at once. Once the
    last batch is in, no longer: :meth:`_Flight.sign_here_rather` decides
    (signing here as the last batch came in left the worker idle at the end
    of a 100,000-record resume while this process wrote what it had kept
    waiting, up to 0.4 s)."""
    from signer.run import Admitted, Job, _Flight

    record = many_records(1)[0]
    flight, pool = _Flight(1), _HandOver()
    for _ in range(3):
        flight.add([record], Admitted({}, [Job(0, record, True)]))
    flight.feed(pool)  # type: ignore[arg-type]
    assert len(pool.tasks) == 2 and flight.held() == 1
    assert not flight.signs_held_here(last=False)  # as many held as workers: kept for them
    flight.add([record], Admitted({}, [Job(0, record, True)]))
    assert flight.held() == 2
    assert flight.signs_held_here(last=False)
    flight.input_read()
    assert not flight.signs_held_here(last=True)


def test_batches_ready_together_at_the_end_are_placed_together(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Once the input is read, the batches the worker finished while the run's
    process signed its own are committed, placed and marked written together
    (one transaction and one flush of the folder for all of them): the run's
    process signs slowly here, so the worker's batches wait for it. Nothing
    else changes: every record once, in input order, ledger and files agree."""
    import signer.batch as batch_module

    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * BATCH)
    slow_here(monkeypatch)

    merged: list[int] = []
    real_merge = batch_module._Unplaced.merge

    def merge(self: Any, later: Any) -> None:
        merged.append(len(later.batch))
        real_merge(self, later)

    flushes: list[int] = []
    real_sync = batch_module.BatchOutput.sync_folder

    def sync_folder(self: Any) -> None:
        flushes.append(1)
        real_sync(self)

    monkeypatch.setattr(batch_module._Unplaced, "merge", merge)
    monkeypatch.setattr(batch_module.BatchOutput, "sync_folder", sync_folder)
    source = write_records(tmp_path / "in.jsonl", records)
    assert main(command(source, "--jobs", "2")) == 0
    assert capsys.readouterr().out.startswith(f"batch: {len(records)} record(s): {len(records)} issued")
    assert merged and all(size == BATCH for size in merged)
    assert len(flushes) <= 12 - len(merged)  # one flush of the folder per placement, not per batch
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])
    manifest = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [e["record_id"] for e in manifest] == [r.record_id for r in records]
    assert not (tmp_path / "out" / ".resume").exists()  # the run ended: no point left


_MERGED = ["batch", "seen", "signed", "released", "done", "files", "staged", "unsynced", "adopted_flushes", "fails",
           "skipped", "clamped"]  # fmt: skip


@pytest.mark.parametrize("after", ["batch", "done"])
def test_a_stop_inside_a_merge_waits_for_it(
    after: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real SIGINT landing inside the merge of two batches at the end (after
    the field ``after`` is merged) takes effect once the merge is whole: the
    stopped run's resume point never passes a batch not written, no
    certificate is 'written' without its files, and the same command again
    completes every record (review 12b, F1: before, a half-merged batch was
    committed and placed by the stop path)."""
    import signer.batch as batch_module

    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(12 * BATCH)
    slow_here(monkeypatch)

    fired: list[tuple[int, int]] = []

    def merge(self: Any, later: Any) -> None:  # the real merge, a field at a time, interrupted once
        for name in _MERGED:
            value = getattr(self, name)
            setattr(self, name, [*value, *later.batch] if name == "batch" else value + getattr(later, name))
            if name == after and not fired:
                fired.append((min(i.line for i in later.batch), max(i.line for i in later.batch)))
                # to this thread: sent to the process, the kernel may hand it to another thread
                # (the pool's, a flush thread), and the main thread then meets it later, at the
                # end of the run where a stop is dropped (seen in CI: the run ended with 0)
                signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    assert set(_MERGED) == {f.name for f in dataclasses.fields(batch_module._Unplaced)}
    monkeypatch.setattr(batch_module._Unplaced, "merge", merge)
    source = write_records(tmp_path / "in.jsonl", records)
    assert main(command(source, "--jobs", "2")) != 0  # stopped
    capsys.readouterr()
    assert fired, "no merge happened"
    first, last = fired[0]
    point = json.loads((tmp_path / "out" / ".resume" / "point.json").read_text())
    ledger = Ledger.open(str(tmp_path / "ledger.sqlite"), actor="check", create=False)
    try:
        states = {c.record_id: c.state for c in ledger.in_states(("reserved", "signed", "written"))}
    finally:
        ledger.close()
    merged_in = [r.record_id for r in records if first <= r.line <= last]
    if point["line"] >= last:
        assert all(states.get(rid) == "written" for rid in merged_in)
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert all(f"{rid}.hc1.txt" in files for rid, state in states.items() if state == "written")
    monkeypatch.undo()  # the same command again, as it is
    command = batch_command(test_pki, tmp_path, monkeypatch)
    monkeypatch.setattr(signer.run, "BATCH_SIZE", BATCH)
    assert main(command(source, "--jobs", "2")) == 0
    assert "not in this input" not in capsys.readouterr().err
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", [r.record_id for r in records])
