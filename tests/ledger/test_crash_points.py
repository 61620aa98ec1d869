"""The crash-safety argument of docs/ledger.md, one step at a time: a forked
`signer batch` dies (os._exit: no finally, no cleanup, as with kill -9) at a
chosen point, then the same command finishes the work, and the next one has
nothing left to do. The random kills of test_kill.py cover the rest."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from signer.cli import main
from signer.ledger import Ledger
from tests.fixtures.pki import TestPki as Pki

from .helpers import (
    after,
    batch_command,
    check_consistent,
    die,
    many_records,
    write_records,
)

RECORDS = 10


def counts_and_signed(ledger: str) -> tuple[dict[str, int], dict[str, Any]]:
    """The ledger's certificates by state, and the files of each 'signed' one (by UVCI)."""
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        return led.counts(), {c.uvci: c.files for c in led.in_states(("signed",))}
    finally:
        led.close()


def crash_points() -> dict[str, Callable[[pytest.MonkeyPatch], None]]:
    import signer.batch as batch
    import signer.batch_manifest as batch_manifest
    from signer.ledger.store import Ledger as L

    def after_reservation(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(batch.LedgerRun, "_admit", after(batch.LedgerRun._admit, 1))  # its transaction committed

    def after_signed(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(L, "apply", after(L.apply, 2))  # the reservation, then the signed transaction

    def half_renamed(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(batch.os, "replace", after(os.replace, 7))

    def files_in_place(mp: pytest.MonkeyPatch) -> None:
        mp.setattr(batch.LedgerRun, "_mark_written", die)

    def during_manifest(mp: pytest.MonkeyPatch) -> None:  # the lines of the batch, before they are appended
        mp.setattr(batch_manifest, "manifest_entry_of", after(batch_manifest.manifest_entry_of, 4))

    return {
        "after_reservation": after_reservation,
        "after_signed": after_signed,
        "half_renamed": half_renamed,
        "files_in_place": files_in_place,
        "during_manifest": during_manifest,
    }


#: What the run after the crash reports.
EXPECTED = {
    "after_reservation": f"{RECORDS} issued ({RECORDS} resumed from an interrupted run)",
    "after_signed": f"{RECORDS} issued ({RECORDS} resumed from an interrupted run)",
    "half_renamed": f"{RECORDS} issued ({RECORDS} resumed from an interrupted run)",
    "files_in_place": f"{RECORDS} issued ({RECORDS} resumed from an interrupted run)",
    "during_manifest": f"0 issued, {RECORDS} skipped",
}


@pytest.mark.parametrize("point", list(EXPECTED))
def test_crash_at_each_step_then_the_same_command(
    point: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(RECORDS)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = command(source)
    pid = os.fork()
    if pid == 0:  # the run that dies
        try:
            crash_points()[point](monkeypatch)
            main(args)
        finally:
            os._exit(3)  # reached only if the crash point was never hit
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the crash point was not reached"
    left, signed_files = counts_and_signed(ledger)
    if point == "during_manifest":
        assert left == {"written": RECORDS} and (out / ".partial").exists()
    else:
        assert set(left) <= {"reserved", "signed"} and sum(left.values()) == RECORDS, left
    capsys.readouterr()
    assert main(args) == 0
    assert EXPECTED[point] in capsys.readouterr().out
    current = check_consistent(ledger, out, [r.record_id for r in records])
    if point == "files_in_place":  # completed without signing again: the very files of the signed state
        assert {c.uvci: c.files for c in current.values()} == signed_files
    assert main(args) == 0
    assert f"0 issued, {RECORDS} skipped as already issued" in capsys.readouterr().out
    assert check_consistent(ledger, out, [r.record_id for r in records]) == current


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("point", ["in_the_next_admission", "after_the_next_admission"])
def test_crash_between_a_batch_placed_and_its_written_commit(
    point: str, jobs: int, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A batch's step 3 ('signed') is committed with the reservations of the
    next batch admitted after it was signed (one transaction), and its files
    placed right after; its step 5 ('written') with the admission after that,
    together with the next batch's step 3. Killed inside that transaction (it
    rolls back): the first batch stays 'signed' with its files in place, the
    second 'reserved' (its files staged, not placed) and the batch being
    admitted is not reserved; the same command completes the first without
    signing it again (the very files of the signed state). Killed right after
    it: the first is written, the second signed with its files in place, the
    admitted one reserved."""
    import signer.batch as batch_module
    import signer.run as run_module

    monkeypatch.setattr(run_module, "BATCH_SIZE", 4)
    # the admission that carries the first batch's step 5: the next but one
    # (--jobs 1), the second after the batches in flight (--jobs 2: the worker's
    # TASKS_PER_WORKER tasks and one held back for it, IN_FLIGHT signed by the run's process)
    call = 2 + (1 if jobs == 1 else (run_module.TASKS_PER_WORKER + 1) * (jobs - 1) + run_module.IN_FLIGHT)
    count = 4 * call + 2
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(count)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    pid = os.fork()
    if pid == 0:  # the run that dies
        try:
            if point == "in_the_next_admission":  # its reservations made, not committed
                monkeypatch.setattr(batch_module.LedgerRun, "_reserve", after(batch_module.LedgerRun._reserve, call))
            else:
                monkeypatch.setattr(batch_module.LedgerRun, "_admit", after(batch_module.LedgerRun._admit, call))
            main(command(source, "--jobs", str(jobs)))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the crash point was not reached"
    left, placed = counts_and_signed(ledger)
    in_flight = 4 * (call - 2)  # reserved before the admission that carries step 5, the first batch not counted
    assert placed and all((out / f.name).is_file() for files in placed.values() for f in files)
    if point == "in_the_next_admission":
        assert left == {"signed": 4, "reserved": in_flight}, left
    else:
        assert left == {"written": 4, "signed": 4, "reserved": in_flight}, left
    resumed = 4 + in_flight
    capsys.readouterr()
    assert main(command(source)) == 0
    assert f"{count} issued ({resumed} resumed from an interrupted run" in capsys.readouterr().out
    current = check_consistent(ledger, out, [r.record_id for r in records])
    if placed:  # completed without signing again
        assert {c.uvci: c.files for c in current.values() if c.uvci in placed} == placed
    assert main(command(source)) == 0
    assert f"0 issued, {count} skipped as already issued" in capsys.readouterr().out


@pytest.mark.parametrize("jobs", [1, 2])
def test_crash_between_the_signed_commit_in_an_admission_and_the_placing(
    jobs: int, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed right after the admission's transaction that carries the first
    batch's step 3 ('signed') committed, before its files are placed: that
    batch is 'signed' with none of its files in place (staged, or with
    --jobs 1 not written yet), the batches admitted so far 'reserved'; the
    same command completes the work, every record issued once."""
    import signer.batch as batch_module
    import signer.run as run_module

    monkeypatch.setattr(run_module, "BATCH_SIZE", 4)
    admissions = 1 + (1 if jobs == 1 else (run_module.TASKS_PER_WORKER + 1) * (jobs - 1) + run_module.IN_FLIGHT)
    count = 4 * (admissions + 2) + 2
    command = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(count)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    pid = os.fork()
    if pid == 0:  # the run that dies
        try:
            monkeypatch.setattr(batch_module.LedgerRun, "_place", die)
            main(command(source, "--jobs", str(jobs)))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9, "the crash point was not reached"
    left, signed = counts_and_signed(ledger)
    assert left == {"signed": 4, "reserved": 4 * (admissions - 1)}, left
    assert not [f.name for files in signed.values() for f in files if (out / f.name).exists()]
    capsys.readouterr()
    assert main(command(source)) == 0
    assert f"{count} issued ({4 * admissions} resumed from an interrupted run" in capsys.readouterr().out
    check_consistent(ledger, out, [r.record_id for r in records])


def test_a_failed_folder_flush_leaves_the_batch_signed(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --jobs the folder is flushed after a batch's renames in a thread,
    while the next batch is read and admitted; step 5 ('written') waits for
    it. When that flush fails, no certificate of the batch is marked written
    (its renames may not be on disk), the run stops with one line, and the
    same command completes the work."""
    import errno

    import signer.batch as batch_module
    import signer.run as run_module

    monkeypatch.setattr(run_module, "BATCH_SIZE", 4)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    count = 4 * (run_module.IN_FLIGHT * 2 + 2) + 2  # admissions after the first batch is placed
    records = many_records(count)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = command(source, "--jobs", "2")

    def failing(output: object) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(batch_module.BatchOutput, "sync_folder", failing)
    assert main(args) == 2
    assert f"cannot write into {out}: Input/output error" in capsys.readouterr().err
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        left = led.counts()
    finally:
        led.close()
    assert "written" not in left and left.get("signed", 0) >= 4, left
    monkeypatch.undo()
    monkeypatch.setattr(run_module, "BATCH_SIZE", 4)
    command = batch_command(test_pki, tmp_path, monkeypatch)
    assert main(command(source)) == 0
    assert f"{count} issued (" in capsys.readouterr().out
    check_consistent(ledger, out, [r.record_id for r in records])


def test_record_changed_after_a_crash(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Reserved for data that then changed: the reservation is released (its UVCI
    goes to the revoked list, a file may have reached the disk) and the record
    gets a new UVCI, in the same transaction."""
    from dataclasses import replace

    from tests.signer.conftest import stamp

    args = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(3)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")

    pid = os.fork()
    if pid == 0:
        try:
            crash_points()["after_signed"](monkeypatch)
            main(args(write_records(tmp_path / "in.jsonl", records)))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        before = {c.record_id: c.uvci for c in led.in_states(("signed",))}
    finally:
        led.close()
    changed = list(records)
    changed[1] = stamp(replace(records[1], date_of_birth="1990-01-01"))
    assert main(args(write_records(tmp_path / "changed.jsonl", changed))) == 0
    assert "3 issued (2 resumed from an interrupted run)" in capsys.readouterr().out
    now = check_consistent(ledger, out, [r.record_id for r in records])
    assert now["R00000"].uvci == before["R00000"] and now["R00001"].uvci != before["R00001"]
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        assert led.by_uvci(before["R00001"]).state == "released"  # type: ignore[union-attr]
        assert before["R00001"] in led.revoked_uvcis()
    finally:
        led.close()


def test_crash_while_a_correction_replaces_the_files(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A corrected record's new files replace the old certificate's (same names):
    killed after the first rename, the folder holds one new and one old file;
    the next run completes the new certificate and supersedes the old one."""
    from dataclasses import replace

    import signer.batch as batch_module
    from tests.signer.conftest import stamp

    args = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(3)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")

    assert main(args(write_records(tmp_path / "in.jsonl", records))) == 0
    old = check_consistent(ledger, out, [r.record_id for r in records])["R00002"]
    changed = list(records)
    changed[2] = stamp(replace(records[2], full_name="Lê Văn Tám"))
    source = write_records(tmp_path / "changed.jsonl", changed)
    pid = os.fork()
    if pid == 0:
        try:
            monkeypatch.setattr(batch_module.os, "replace", after(os.replace, 1))
            main(args(source))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    capsys.readouterr()
    assert main(args(source)) == 0
    assert "1 issued (1 superseding an earlier certificate, 1 resumed from an interrupted run)" in capsys.readouterr().out
    new = check_consistent(ledger, out, [r.record_id for r in records])["R00002"]
    assert new.uvci != old.uvci
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        assert led.by_uvci(old.uvci).superseded_by == new.uvci  # type: ignore[union-attr]
    finally:
        led.close()


def test_release_what_an_interrupted_run_left_for_records_gone_from_the_input(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = batch_command(test_pki, tmp_path, monkeypatch)
    records = many_records(4)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")

    pid = os.fork()
    if pid == 0:
        try:
            crash_points()["files_in_place"](monkeypatch)
            main(args(write_records(tmp_path / "in.jsonl", records)))
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9
    # the centre's next input holds only two of them
    assert main(args(write_records(tmp_path / "fewer.jsonl", records[:2]))) == 0
    captured = capsys.readouterr()
    assert "warning: 2 certificate(s) reserved" in captured.err and "signer ledger release" in captured.err
    assert main(["ledger", "release", "--ledger", ledger, "--out", str(out), "--reason", "records withdrawn"]) == 0
    assert "2 certificate(s) released" in capsys.readouterr().out
    assert main(args(write_records(tmp_path / "fewer.jsonl", records[:2]))) == 0
    assert "warning" not in capsys.readouterr().err
    check_consistent(ledger, out, [r.record_id for r in records[:2]])  # their files are gone too
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        assert led.counts() == {"written": 2, "released": 2}
    finally:
        led.close()
