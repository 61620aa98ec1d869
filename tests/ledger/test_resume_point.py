"""The resume point (signer.batch_resume): a batch killed after some batches
starts again from its first unfinished line, with the same result as reading
everything again (counts, refused records, duplicate ids across the cut,
files = ledger = manifest); a changed input or other settings read the whole
input; leftovers of a kill between an append and the point are cut off."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import signer.run as run_module
from signer.batch_report import BatchCounts
from signer.batch_resume import ERRORS, POINT, RESUME_DIR, SEEN, ResumePoint
from signer.cli import main
from signer.records import Record, read_records
from signer.run import SeenIds
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import stamp

from .helpers import batch_command, check_consistent, many_records, write_records

BATCH = 4


def mixed_input(path: Path) -> tuple[Path, list[str]]:
    """30 lines: records, a duplicate id on each side of the cut, an unverified
    record, a bad JSON line, blank lines; returns the ids that get a certificate."""
    records = many_records(24)
    records[20] = replace(records[2], line=21)  # duplicate of a record of the first batches
    records[5] = replace(records[5], verified="")  # refused: not verified
    write_records(path, records)
    lines = path.read_text("utf-8").splitlines(keepends=True)
    lines.insert(9, "\n")
    lines.insert(14, "{not json\n")
    lines.insert(15, "   \n")
    lines.insert(22, '{"record_id": "R1", "unknown": ' + "[" * 2000 + "\n")
    path.write_text("".join(lines), "utf-8")
    issued = [r.record_id for i, r in enumerate(records) if i not in (5, 20)]
    return path, issued


def killed_after(saves: int, args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the batch in a child that dies (as kill -9) after its n-th resume point."""
    pid = os.fork()
    if pid == 0:
        try:
            original = ResumePoint.save
            count = 0

            def save(self: ResumePoint, *a: Any, **k: Any) -> None:
                nonlocal count
                original(self, *a, **k)
                count += 1
                if count >= saves:
                    os._exit(9)

            monkeypatch.setattr(ResumePoint, "save", save)
            main(args)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9


@pytest.fixture()
def setup(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], Path, list[str]]:
    monkeypatch.setattr(run_module, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    source, issued = mixed_input(tmp_path / "in.jsonl")
    return command(source), source, issued


def errors_of(out: Path) -> list[list[str]]:
    with (out / "errors.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def test_resume_from_the_point_gives_the_full_result(
    setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args, _, issued = setup
    out = tmp_path / "out"
    # the reference: the same input in one go, into another folder and ledger
    reference = [a.replace(str(tmp_path / "out"), str(tmp_path / "ref")).replace("ledger.sqlite", "ref.sqlite")
                 for a in args]  # fmt: skip
    assert main(reference) == 1
    want = capsys.readouterr().out.splitlines()[0]
    assert "26 record(s): 22 issued, 0 skipped as already issued, 4 refused" in want  # 2 bad lines, dup, unverified
    killed_after(3, args, monkeypatch)  # 3 batches of 4 items: lines 1..13 finished
    assert (out / RESUME_DIR / "point.json").is_file()
    assert main(args) == 1
    captured = capsys.readouterr()
    assert re.search(r"resuming after line 13 of .*in\.jsonl", captured.err), captured.err
    got = captured.out.splitlines()[0]
    assert got.startswith("batch: 26 record(s): 22 issued") and got.endswith(", 4 refused"), got
    assert sorted(map(tuple, errors_of(out))) == sorted(map(tuple, errors_of(tmp_path / "ref")))
    assert any("duplicate record id" in row[2] for row in errors_of(out))  # across the cut
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)
    assert not (out / RESUME_DIR).exists()  # the run ended: nothing to resume
    assert main(args) == 1
    assert "26 record(s): 0 issued, 22 skipped as already issued, 4 refused" in capsys.readouterr().out


def test_a_changed_input_or_other_settings_read_everything(
    setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    args, source, issued = setup
    out = tmp_path / "out"
    killed_after(2, args, monkeypatch)
    assert main([*args, "--check-files", "hash"]) == 1  # other settings: the point is not used
    assert "resuming" not in capsys.readouterr().err
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)

    killed_after(1, [*args[:3], str(tmp_path / "out2"), *args[4:]], monkeypatch)
    data = source.read_bytes()
    source.write_bytes(data.replace(b'"R00000"', b'"R0000X"', 1))  # the same size, another prefix
    os.utime(source, ns=(os.stat(source).st_atime_ns, os.stat(source).st_mtime_ns))
    assert main([*args[:3], str(tmp_path / "out2"), *args[4:]]) == 1
    assert "resuming" not in capsys.readouterr().err


def test_leftovers_after_the_point_are_cut_off(
    setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Killed after appending a batch's refused rows and ids, before the point named them."""
    args, _, issued = setup
    out = tmp_path / "out"
    killed_after(2, args, monkeypatch)
    with (out / RESUME_DIR / ERRORS).open("a", encoding="utf-8") as fh:
        fh.write("99,R99999,not verified\n")
    with (out / RESUME_DIR / SEEN).open("ab") as fh:
        fh.write(os.urandom(64))
    assert main(args) == 1
    assert "resuming after line" in capsys.readouterr().err
    assert ["99", "R99999", "not verified"] not in errors_of(out)
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)


@pytest.mark.parametrize("damaged", [SEEN, ERRORS])
def test_a_point_whose_rows_changed_under_it_is_not_used(
    damaged: str, setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The point's files are not flushed to disk: after a power cut the bytes
    it names may be other bytes of the same length (here: changed by hand).
    Such a point is not used; the run reads everything, with the full result."""
    args, _, issued = setup
    out = tmp_path / "out"
    killed_after(3, args, monkeypatch)  # lines 1..13: a duplicate id seen, refused rows written
    path = out / RESUME_DIR / damaged
    data = bytearray(path.read_bytes())
    assert data
    if damaged == SEEN:
        data[:] = bytes(len(data))  # the ids of the prefix forgotten
    else:
        data[:] = data.replace(b"not verified", b"NOT VERIFIED") if b"not verified" in data else data.upper()
    path.write_bytes(bytes(data))
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "resuming" not in captured.err
    got = captured.out.splitlines()[0]
    assert got.startswith("batch: 26 record(s): ") and got.endswith(", 4 refused"), got
    rows = errors_of(out)[1:]  # after the header
    assert len(rows) == 4 and ["25", "R00002", "duplicate record id in this file"] in rows
    assert ["6", "R00005", "not verified (run the checks, or --allow-unverified)"] in rows
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)


@pytest.mark.parametrize("damage", ["not an object", "torn rows"])
def test_a_point_that_cannot_be_read_is_not_used(
    damage: str, setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A point.json that is JSON but not an object, or an errors.csv whose named bytes were torn into a field
    that csv refuses (a quote, then more than its 128 KiB field limit): the point is not used and the run
    reads everything, instead of stopping with an internal error (AttributeError, csv.Error)."""
    args, _, issued = setup
    out = tmp_path / "out"
    killed_after(3, args, monkeypatch)
    if damage == "not an object":
        (out / RESUME_DIR / POINT).write_text("[1, 2]", "utf-8")
    else:  # the point names a long errors.csv prefix; its bytes are now a quote and NULs, as a torn file
        point = out / RESUME_DIR / POINT
        size = 200_000
        (out / RESUME_DIR / ERRORS).write_bytes(b'"' + bytes(size - 1))
        point.write_text(re.sub(r'"errors_bytes": *\d+', f'"errors_bytes": {size}', point.read_text("utf-8")),
                         "utf-8")  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "resuming" not in captured.err and "internal error" not in captured.err
    assert captured.out.splitlines()[0].endswith(", 4 refused")
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)


def test_the_point_lines_up_with_the_reader(tmp_path: Path) -> None:
    """After any line, reading from the point's offset gives exactly the rest
    (blank, bad and too-long lines included)."""
    source, _ = mixed_input(tmp_path / "in.jsonl")
    everything = list(read_records(source))
    lines = source.read_bytes().count(b"\n")
    for cut in range(1, lines):
        point = ResumePoint(tmp_path, source, {})
        point._input = source.open("rb")
        try:
            offset = point._advance(cut)
        finally:
            point.close()
        assert offset is not None
        point._line, point.offset = cut, offset
        rest = list(point.items(None))
        assert rest == [item for item in everything if item.line > cut], cut
        assert all(isinstance(r, Record) or r.line > cut for r in rest)


def saved_point(folder: Path, source: Path, line: int) -> None:
    """A point after ``line`` of ``source`` in ``folder``, as a run saves it."""
    point = ResumePoint.open(folder, source, {})
    point.save(line, BatchCounts(), {"signed": 0, "failed": 0, "clamped": 0}, [], bytes(16), [])
    point.close()


def slow_prefix_check(monkeypatch: pytest.MonkeyPatch, seconds: float, times: dict[str, float] | None = None) -> None:
    """The check of the input's prefix takes ``seconds`` longer (its end in ``times["checked"]``)."""
    import time

    real_hash = ResumePoint._hash_prefix

    def slow_hash(self: ResumePoint, *a: Any) -> bool:
        time.sleep(seconds)
        ok = real_hash(self, *a)
        if times is not None:
            times["checked"] = time.monotonic()
        return ok

    monkeypatch.setattr(ResumePoint, "_hash_prefix", slow_hash)


def test_the_prefix_is_checked_in_a_thread_and_waited_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """open() reads the point's files at once; start_check() hashes the
    input's prefix in a thread (the run reads its first batch meanwhile);
    verified() waits for it (and, not started, checks it then); an error
    making a fresh point (here: the folder cannot be made) reaches the caller
    at the first use, and close() does not raise (a run stopping for another
    reason reports its own error)."""

    source = write_records(tmp_path / "in.jsonl", many_records(3))
    point = ResumePoint.open(tmp_path, source, {})
    assert point._loader is None and point.line == 0  # no point yet: nothing to check, a fresh one made
    assert (tmp_path / RESUME_DIR / SEEN).exists()
    point.finish()
    saved_point(tmp_path, source, 2)
    slow_prefix_check(monkeypatch, 0.3)
    point = ResumePoint.open(tmp_path, source, {})
    assert point._loader is None  # started by the run, once its workers are forked
    point.start_check()
    thread = point._loader
    assert thread is not None and thread.is_alive()
    point.start_check()
    assert point._loader is thread  # once
    assert point.line == 2  # the point's own files: read already
    assert [r.record_id for r in point.items(None)] == ["R00002"]  # from the point, before the check
    point.verified()
    assert not thread.is_alive() and point._loader is None
    point.finish()
    saved_point(tmp_path, source, 2)
    point = ResumePoint.open(tmp_path, source, {})
    checked: dict[str, float] = {}
    slow_prefix_check(monkeypatch, 0, checked)
    point.verified()  # never started: checked here
    assert checked and point._loader is None
    point.finish()
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / RESUME_DIR).write_text("a file where the folder goes")
    point = ResumePoint.open(blocked, source, {})
    with pytest.raises(OSError):
        point.restore(BatchCounts(), SeenIds())
    point = ResumePoint.open(blocked, source, {})
    point.close()  # no error: the run's own is the one reported
    assert point._loader is None


def test_a_csv_input_has_no_point(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("record_id\n")
    point = ResumePoint.open(tmp_path, source, {})
    assert not point.enabled and not (tmp_path / RESUME_DIR).exists()
    point.finish()


def test_stamp_helper_still_verifies() -> None:
    assert stamp(many_records(1)[0]).verified


def test_a_stop_while_waiting_for_the_check_waits_for_its_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (SIGINT) while the run waits for the check of the input's
    prefix takes effect once the thread has ended: it must not outlive the
    folder's lock (review 12b, F2: before, the interrupted join returned at
    once and the thread went on)."""
    import signal
    import threading
    import time

    from signer.run import stop_signals

    source = write_records(tmp_path / "in.jsonl", many_records(3))
    saved_point(tmp_path, source, 2)
    # the order, by events rather than delays: the run joins the check's
    # thread, then Ctrl-C, then the check ends
    joining, sent, checked = threading.Event(), threading.Event(), threading.Event()
    real_hash = ResumePoint._hash_prefix

    def hash_after_the_stop(self: ResumePoint, *a: Any) -> bool:
        assert sent.wait(30)
        time.sleep(0.5)  # a join that Ctrl-C broke would return meanwhile
        try:
            return real_hash(self, *a)
        finally:
            checked.set()

    def stop_once_joining() -> None:
        if joining.wait(30):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        sent.set()

    monkeypatch.setattr(ResumePoint, "_hash_prefix", hash_after_the_stop)
    with stop_signals():
        point = ResumePoint.open(tmp_path, source, {})
        point.start_check()
        thread = point._loader
        assert thread is not None
        real_join = thread.join

        def join(timeout: float | None = None) -> None:
            joining.set()
            real_join(timeout)

        thread.join = join  # type: ignore[method-assign]
        threading.Thread(target=stop_once_joining, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            point.verified()
        # the stop came during the join and took effect once the check had
        # ended (not thread.is_alive(): Python 3.11 marks a thread whose join
        # was interrupted as stopped, though it runs on)
        assert joining.is_set() and checked.is_set()
        point.close()
    assert (tmp_path / RESUME_DIR / POINT).exists()


def test_the_first_ledger_change_waits_for_the_check_of_the_prefix(
    setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The input's prefix is hashed in the point's thread while the run reads
    and admits its first batch from the point: the run starts before the check
    ends, and changes the ledger only after it."""
    import time

    from signer.batch import LedgerRun
    from signer.ledger import Ledger

    args, _, issued = setup
    out = tmp_path / "out"
    killed_after(3, args, monkeypatch)
    times: dict[str, float] = {}
    slow_prefix_check(monkeypatch, 0.5, times)
    real_admit, real_apply = LedgerRun._admit, Ledger.apply

    def admit(self: LedgerRun, *a: Any, **k: Any) -> Any:
        times.setdefault("admitting", time.monotonic())
        return real_admit(self, *a, **k)

    def apply(self: Ledger, *a: Any, **k: Any) -> Any:
        times.setdefault("changed", time.monotonic())
        return real_apply(self, *a, **k)

    monkeypatch.setattr(LedgerRun, "_admit", admit)
    monkeypatch.setattr(Ledger, "apply", apply)
    assert main(args) == 1
    assert "resuming after line 13" in capsys.readouterr().err
    assert times["admitting"] < times["checked"] < times["changed"], times
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)


def killed_with_staged_files(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[str], list[Record], Path]:
    """A --jobs 2 batch of 40 records killed after its third batch, leaving
    staged files and their journal lines: its command, records and folder."""
    monkeypatch.setattr(run_module, "BATCH_SIZE", BATCH)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(40)
    args = command(write_records(tmp_path / "in.jsonl", records), "--jobs", "2")
    killed_after(3, args, monkeypatch)
    out = tmp_path / "out"
    assert list((out / ".partial").glob("*/.journal")), "the killed run left no staged files"
    return args, records, out


def test_workers_started_early_fork_before_the_prefix_is_checked(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resume with --jobs 2 and a killed run's staged files starts its
    worker before its first batch, which checks those files' HC1s first, as
    it starts (signer.batch_adopt.prove_ahead), with the journal lines it
    finds in its copy of the run's memory (nothing pickled: the task that
    forks it has no arguments, and the run's own process lets go of them once
    forked); the check of the input's prefix (slowed here) starts after the
    fork, so that no thread of the run runs when it forks; every record is
    issued once."""
    import threading

    args, records, out = killed_with_staged_files(test_pki, tmp_path, monkeypatch)
    slow_prefix_check(monkeypatch, 0.3)
    forks: list[tuple[str, tuple[Any, ...], Any, list[str]]] = []
    real_submit = run_module._submit_call

    def submit(pool: Any, call: Any, *a: Any) -> Any:
        forks.append((call.__name__, a, run_module._first, [t.name for t in threading.enumerate()]))
        return real_submit(pool, call, *a)

    monkeypatch.setattr(run_module, "_submit_call", submit)
    capsys.readouterr()
    assert main(args) == 0
    assert "resuming after line 12" in capsys.readouterr().err
    name, args_sent, first, threads = forks[0]
    assert (name, args_sent) == ("_forked", ())
    assert first is not None and first[0] is run_module.prove_ahead
    assert first[1][0] and all(c.line["uvci"] for c in first[1][0]), "the killed run's journal lines"
    assert run_module._first is None
    assert "resume-point" not in threads and "ledger-checkpoint" not in threads, threads
    check_consistent(str(tmp_path / "ledger.sqlite"), out, [r.record_id for r in records])


def test_the_first_work_is_done_once_by_the_worker_that_claims_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every worker inherits the first work (signer.run._first); the first to
    set the shared claim does it as it starts, the others do not, and none
    keeps the journal lines it inherited."""
    import multiprocessing

    calls: list[str] = []
    monkeypatch.setattr(run_module, "_worker", object())
    claim = multiprocessing.get_context("fork").Value("b", 0)
    for _ in range(2):  # two workers' copies of the run's memory, one claim between them
        monkeypatch.setattr(run_module, "_first", (calls.append, ("proved",)))
        monkeypatch.setattr(run_module, "_first_claim", claim)
        run_module._run_first()
        assert run_module._first is None
    assert calls == ["proved"]
    monkeypatch.setattr(run_module, "_worker", None)  # a worker that could not start does nothing
    monkeypatch.setattr(run_module, "_first", (calls.append, ("again",)))
    monkeypatch.setattr(run_module, "_first_claim", multiprocessing.get_context("fork").Value("b", 0))
    run_module._run_first()
    assert calls == ["proved"]


def test_other_bytes_under_the_same_size_and_times_stop_the_run_before_any_change(
    setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The point names the input's size, times and inode; bytes that do not
    hash as it says (here: the point's digest edited by hand) stop the run
    with a clear message before the ledger changes, the point is removed, and
    the same command again reads the whole input."""
    import json
    import sqlite3

    args, _, issued = setup
    out = tmp_path / "out"
    killed_after(3, args, monkeypatch)
    path = out / RESUME_DIR / POINT
    data = json.loads(path.read_text("utf-8"))
    data["sha256"] = "0" * 64
    path.write_text(json.dumps(data), "utf-8")

    def events() -> int:
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    before = events()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not what the interrupted run read" in err and "run the same command again" in err, err
    assert "Traceback" not in err
    assert events() == before
    assert not path.exists()
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "resuming" not in captured.err
    assert captured.out.splitlines()[0].endswith(", 4 refused")
    check_consistent(str(tmp_path / "ledger.sqlite"), out, issued)


def test_other_bytes_stop_a_run_whose_worker_started_early_before_any_change(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --jobs 2 and a killed run's staged files the worker is forked
    before the input's prefix is checked: other bytes under the same size and
    times still stop the run before the ledger changes, with the message and
    no worker left running; the same command again issues every record once."""
    import json
    import multiprocessing
    import sqlite3

    args, records, out = killed_with_staged_files(test_pki, tmp_path, monkeypatch)
    path = out / RESUME_DIR / POINT
    data = json.loads(path.read_text("utf-8"))
    data["sha256"] = "0" * 64
    path.write_text(json.dumps(data), "utf-8")
    forked: list[str] = []
    real_submit = run_module._submit_call

    def submit(pool: Any, call: Any, *a: Any) -> Any:
        forked.append(call.__name__)
        return real_submit(pool, call, *a)

    monkeypatch.setattr(run_module, "_submit_call", submit)

    def events() -> int:
        with sqlite3.connect(tmp_path / "ledger.sqlite") as db:
            return int(db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    before = events()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "is not what the interrupted run read" in err and "Traceback" not in err, err
    assert forked[:1] == ["_forked"]  # the worker was started before the check
    assert events() == before and not path.exists()
    assert multiprocessing.active_children() == []
    assert main(args) == 0
    check_consistent(str(tmp_path / "ledger.sqlite"), out, [r.record_id for r in records])


def test_the_prefix_is_hashed_from_a_mapping_of_the_input(tmp_path: Path) -> None:
    """The input up to the point's offset is mapped and hashed; an input cut
    short under that offset (between the check of its size and the hash) fails
    the check, without an exception; the running hash goes on from the offset."""
    import hashlib

    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"a": 1}\n' * 10)
    point = ResumePoint(tmp_path, source, {})
    point.offset, point._prefix = 81, (hashlib.sha256(b'{"a": 1}\n' * 10).hexdigest(), 9)
    point._check_prefix()
    assert point._prefix_ok is False  # 81 bytes are there, but not these
    point._prefix = (hashlib.sha256(b'{"a": 1}\n' * 9).hexdigest(), 9)
    point._check_prefix()
    assert point._prefix_ok is True and point._pos == 81 and point._newlines == 9
    point._hash.update(b'{"a": 1}\n')
    assert point._hash.hexdigest() == hashlib.sha256(source.read_bytes()).hexdigest()
    point.offset, point._prefix = 200, (hashlib.sha256(b'{"a": 1}\n' * 20).hexdigest(), 20)
    point._check_prefix()  # past the end: mmap refuses it
    assert point._prefix_ok is False


def test_an_input_whose_change_time_moved_is_read_again(
    setup: tuple[list[str], Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """The same bytes, size and mtime, but a change since (here a chmod: the
    change time moves): the point is not used."""
    args, source, issued = setup
    killed_after(3, args, monkeypatch)
    os.chmod(source, 0o600)
    assert main(args) == 1
    assert "resuming" not in capsys.readouterr().err
    check_consistent(str(tmp_path / "ledger.sqlite"), tmp_path / "out", issued)


def test_each_batch_of_seen_ids_is_saved_sorted(tmp_path: Path) -> None:
    """seen.bin holds each batch's ids as a sorted run (the next run's sort of
    the whole file then merges runs: about half the time of random order)."""
    import array

    lines = [f'{{"record_id": "R{i}"}}\n' for i in range(4)]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(lines), "utf-8")
    point = ResumePoint.open(tmp_path, source, {})
    run = {"signed": 0, "failed": 0, "clamped": 0}
    point.save(1, BatchCounts(), run, [], bytes(16), [3, -7, 2])
    point.save(3, BatchCounts(), run, [], bytes(16), [9, 0])
    point.close()
    values = array.array("q")
    values.frombytes((tmp_path / RESUME_DIR / SEEN).read_bytes())
    assert list(values) == [-7, 2, 3, 0, 9]
    again = ResumePoint.open(tmp_path, source, {})
    seen = SeenIds()
    again.restore(BatchCounts(), seen)
    assert again.line == 3 and len(seen) == 5
    again.verified()
    again.close()
