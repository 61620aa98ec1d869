"""`signer batch`: exactly once, idempotent re-runs, corrections that supersede,
files written again, refused records in a 0600 CSV, progress, on both dialects."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.batch import PARTIAL_DIR, BatchOutput
from signer.batch_report import Progress, estimate_records
from signer.cli import main
from signer.ledger import Ledger
from signer.manifest import read_manifest
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, stamp, write_key_files
from verifier.errors import ConfigError

from .helpers import AT, CENTRE, check_consistent, many_records, read_csv_rows, write_records


@pytest.fixture()
def key_args(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    folder = tmp_path / "keys"
    folder.mkdir()
    key, cert = write_key_files(test_pki.dsc_ec, folder)
    return ["--key", str(key), "--cert", str(cert)]


def batch(records: Path, out: Path, ledger: str, key_args: list[str], *extra: str) -> int:
    args = ["batch", str(records), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", AT]
    return main([*args, "--progress", "none", *key_args, *extra])


def test_rerun_issues_nothing_and_a_correction_supersedes(
    ledger_target: str, key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = many_records(12)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert batch(source, out, ledger_target, key_args) == 0
    first = check_consistent(ledger_target, out, [r.record_id for r in records])
    assert "12 record(s): 12 issued, 0 skipped as already issued, 0 refused" in capsys.readouterr().out
    manifest = (out / "manifest.jsonl").read_bytes()

    # the same input again: nothing new, nothing rewritten
    assert batch(source, out, ledger_target, key_args) == 0
    assert "12 record(s): 0 issued, 12 skipped as already issued" in capsys.readouterr().out
    assert check_consistent(ledger_target, out, [r.record_id for r in records]) == first
    assert (out / "manifest.jsonl").read_bytes() == manifest

    # a corrected record: a new certificate that supersedes the old one
    fixed = list(records)
    fixed[3] = stamp(replace(records[3], full_name="Trần Thị Bích"))
    assert batch(write_records(tmp_path / "fixed.jsonl", fixed), out, ledger_target, key_args) == 0
    assert "1 issued (1 superseding an earlier certificate), 11 skipped" in capsys.readouterr().out
    now = check_consistent(ledger_target, out, [r.record_id for r in records])
    old, new = first["R00003"], now["R00003"]
    assert new.uvci != old.uvci
    ledger = Ledger.open(ledger_target, actor="t", create=False)
    try:
        replaced = ledger.by_uvci(old.uvci)
        assert replaced is not None and replaced.state == "superseded" and replaced.superseded_by == new.uvci
        assert old.uvci in ledger.revoked_uvcis()
        assert [c.state for c in ledger.by_record("R00003")] == ["superseded", "written"]
    finally:
        ledger.close()
    assert {k: v for k, v in now.items() if k != "R00003"} == {k: v for k, v in first.items() if k != "R00003"}


def test_missing_and_damaged_files_are_written_again_with_the_same_uvci(
    key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    ledger = str(tmp_path / "ledger.sqlite")
    records = many_records(5)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert batch(source, out, ledger, key_args) == 0
    before = check_consistent(ledger, out, [r.record_id for r in records])
    (out / "R00001.png").unlink()
    (out / "R00002.hc1.txt").write_text("HC1:garbled")  # another size
    damaged = out / "R00004.hc1.txt"
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"X")  # same size: only --check-files hash sees it
    capsys.readouterr()
    assert batch(source, out, ledger, key_args) == 0
    assert "2 with missing or damaged files written again, 3 skipped" in capsys.readouterr().out
    assert batch(source, out, ledger, key_args, "--check-files", "hash") == 0
    assert "1 with missing or damaged files written again, 4 skipped" in capsys.readouterr().out
    after = check_consistent(ledger, out, [r.record_id for r in records])
    for rid in ("R00001", "R00002", "R00004"):
        assert after[rid].uvci == before[rid].uvci
        assert after[rid].payload_hash == before[rid].payload_hash  # same certificate content
        assert after[rid].iat == before[rid].iat and after[rid].exp == before[rid].exp
    assert after["R00000"] == before["R00000"]


def test_refused_records_go_to_a_private_csv(
    key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    records = many_records(6)
    records[1] = stamp(replace(records[1], doses=(replace(records[1].doses[0], vaccine="Covaxin"),)))
    records[2] = replace(records[2], verified="")
    records[4] = replace(records[0], line=5)  # duplicate id
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    ledger = str(tmp_path / "ledger.sqlite")
    assert batch(source, out, ledger, key_args) == 1
    captured = capsys.readouterr()
    assert "6 record(s): 3 issued, 0 skipped as already issued, 3 refused" in captured.out
    assert "1 x unknown vaccine" in captured.out
    errors = out / "errors.csv"
    assert stat.S_IMODE(errors.stat().st_mode) == 0o600
    rows = read_csv_rows(errors)
    assert rows[0] == ["line", "record_id", "reason"]
    assert [r[:2] for r in rows[1:]] == [["2", "R00001"], ["3", "R00002"], ["5", "R00000"]]
    text = errors.read_text() + captured.out + captured.err
    for record in records:
        assert record.id_number not in text and record.full_name not in text
    check_consistent(ledger, out, ["R00000", "R00003", "R00005"])
    # the unsigned records' reservations were released, nothing is pending
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        assert led.counts() == {"written": 3, "released": 1}  # the unknown vaccine had a UVCI reserved
    finally:
        led.close()


def test_plain_progress_lines(tmp_path: Path) -> None:
    ticks = iter([0.0, 5.0, 20.0, 40.0])
    err = io.StringIO()
    progress = Progress(err, total=100, mode="auto", clock=lambda: next(ticks), interval=10)
    progress.update(10)  # 5 s: no line yet
    progress.update(30)  # 20 s: 40 records, 2/s, 60 left -> 30 s
    assert err.getvalue() == "progress: 40/100 record(s) (40%), 2/s, ETA 0:00:30\n"
    source = write_records(tmp_path / "in.jsonl", many_records(3))
    assert estimate_records(source) == 3


def test_a_large_input_is_estimated_from_its_first_part(tmp_path: Path) -> None:
    """Over SAMPLE_BYTES, the lines of the first part scaled by the size (not
    a read of the whole input at every start, a resume's too)."""
    from signer import batch_report

    line = b'{"record_id": "R%06d", "name": "x"}\n'
    big = tmp_path / "big.jsonl"
    count = 3 * batch_report.SAMPLE_BYTES // len(line % 0) + 1234
    big.write_bytes(b"".join(line % i for i in range(count)))
    estimate = estimate_records(big)
    assert estimate is not None and abs(estimate - count) <= count // 100
    csv_file = tmp_path / "big.csv"
    csv_file.write_bytes(b"record_id,name\n" + b"".join(b"R%06d,x\n" % i for i in range(count)))
    estimate = estimate_records(csv_file)
    assert estimate is not None and abs(estimate - count) <= count // 100


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal() -> None:
    err = Terminal()
    progress = Progress(err, total=20, mode="auto")
    assert progress.mode == "bar"
    for _ in range(4):
        progress.update(5)
    progress.close()
    shown = err.getvalue()
    assert "20/20" in shown and "rec/s" in shown and "100%" in shown


def test_one_run_per_folder_and_stray_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / PARTIAL_DIR).mkdir(parents=True)
    (out / PARTIAL_DIR / "R1.png").write_bytes(b"half")
    with BatchOutput(out) as output:
        assert list(output.partial.iterdir()) == []
        with pytest.raises(ConfigError, match="another run is writing"), BatchOutput(out):
            pass
    assert os.listdir(out) == []


def test_batch_needs_a_centre(key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_records(tmp_path / "in.jsonl", many_records(1))
    args = ["batch", str(source), "--out", str(tmp_path / "o"), "--ledger", str(tmp_path / "l.sqlite"), *key_args]
    assert main(args) == 2
    assert "--centre" in capsys.readouterr().err
    assert not (tmp_path / "l.sqlite").exists()


def test_manifest_lists_current_certificates(key_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    source = write_records(tmp_path / "in.jsonl", many_records(3))
    out = tmp_path / "out"
    ledger = str(tmp_path / "ledger.sqlite")
    assert batch(source, out, ledger, key_args) == 0
    (out / "manifest.jsonl").unlink()  # made again from the ledger
    assert batch(source, out, ledger, key_args) == 0
    entries = read_manifest(out / "manifest.jsonl")
    assert [e["record_id"] for e in entries] == ["R00000", "R00001", "R00002"]
    assert all(e["files"] == [f"{e['record_id']}.hc1.txt", f"{e['record_id']}.png"] for e in entries)


def test_folder_lock_ends_with_the_run_not_its_workers(tmp_path: Path) -> None:
    """A run killed with -9 leaves forked workers for up to a second: they must
    not keep the folder locked (they close their copy of the descriptor)."""
    import subprocess
    import sys

    out = tmp_path / "out"
    script = (
        "import os, sys, time\n"
        "from signer.batch import BatchOutput\n"
        "with BatchOutput(__import__('pathlib').Path(sys.argv[1])):\n"
        "    child = os.fork()\n"
        "    if child == 0:\n"
        "        null = os.open(os.devnull, os.O_WRONLY); os.dup2(null, 1); os.dup2(null, 2)\n"
        "        time.sleep(20); os._exit(0)\n"
        "    print(child, flush=True); os._exit(0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, timeout=60, check=True)
    orphan = int(proc.stdout)
    try:
        os.kill(orphan, 0)  # still sleeping, with its copy of the folder's descriptor closed
        with BatchOutput(out):
            pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(orphan, signal.SIGKILL)


@pytest.mark.parametrize("jobs", ["2"])
def test_two_signing_processes(
    ledger_target: str, key_args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, jobs: str
) -> None:
    import gc

    import signer.run

    monkeypatch.setattr("signer.run.BATCH_SIZE", 4)
    records = many_records(21)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    frozen = []  # the workers fork at the first submit: what the run held then is out of the collector's reach
    first_submit = signer.run._submit
    monkeypatch.setattr(signer.run, "_submit", lambda pool, task: frozen.append(gc.get_freeze_count()) or first_submit(pool, task))
    assert batch(source, out, ledger_target, key_args, "--jobs", jobs) == 0
    assert frozen and frozen[0] > 1000 and gc.get_freeze_count() == 0  # and given back at the end
    monkeypatch.setattr(signer.run, "_submit", first_submit)
    first = check_consistent(ledger_target, out, [r.record_id for r in records])

    submitted = []
    real_submit = signer.run._submit
    monkeypatch.setattr(signer.run, "_submit", lambda pool, task: submitted.append(task) or real_submit(pool, task))
    assert batch(source, out, ledger_target, key_args, "--jobs", jobs) == 0
    assert submitted == []  # nothing to sign: no worker is started
    assert check_consistent(ledger_target, out, [r.record_id for r in records]) == first
    assert [e["record_id"] for e in read_manifest(out / "manifest.jsonl")] == [r.record_id for r in records]


@pytest.mark.parametrize("other", ["Another centre", "Zeta centre"])  # sorts before / after CENTRE
def test_one_centre_per_folder(
    other: str, key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Record ids are unique per centre only: a second centre in the same
    folder would overwrite the first one's files (found by the folder's
    lowest and highest centre in the ledger's index)."""
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    assert other < CENTRE if other.startswith("A") else other > CENTRE
    source = write_records(tmp_path / "in.jsonl", many_records(2))
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    assert batch(source, out, ledger, key_args) == 0
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger, "--centre", other, *key_args]
    assert main(args) == 2
    assert f"holds the certificates of another centre ({CENTRE})" in capsys.readouterr().err
    assert main([*args[:3], str(tmp_path / "out2"), *args[4:]]) == 0
    assert batch(source, out, ledger, key_args) == 0  # its own centre again: fine


def test_show_by_citizen_reads_the_id_from_stdin(
    key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    records = many_records(3)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    assert batch(source, out, ledger, key_args) == 0
    capsys.readouterr()
    citizen = records[1].id_number
    spaced = " ".join(citizen[i : i + 4] for i in range(0, len(citizen), 4))
    monkeypatch.setattr("sys.stdin", io.StringIO(spaced + "\n"))
    assert main(["ledger", "show", "--ledger", ledger, "--citizen"]) == 0
    shown = capsys.readouterr().out
    assert '"record_id": "R00001"' in shown and shown.count("\n") == 1
    assert citizen not in shown
    monkeypatch.setattr("sys.stdin", io.StringIO("000000000000\n"))
    assert main(["ledger", "show", "--ledger", ledger, "--citizen"]) == 1
    assert main(["ledger", "show", "--ledger", ledger, "--centre", CENTRE, "--date", "2026-06-01"]) == 0
    assert capsys.readouterr().out.count("\n") == 3


def test_expiry_cut_to_the_dsc_is_reported(
    key_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    source = write_records(tmp_path / "in.jsonl", many_records(2))
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    assert batch(source, out, ledger, key_args, "--validity-days", "3650") == 0
    assert "warning: 2 certificate(s) expire with the DSC on" in capsys.readouterr().err
    assert all(e["exp_clamped"] for e in read_manifest(out / "manifest.jsonl"))


@pytest.mark.parametrize("centres", [["B"], ["A", "B"], ["B", "C"], ["A", "B", "C"], ["b", "B"]])
def test_the_folder_check_on_both_databases(ledger_target: str, centres: list[str]) -> None:
    """check_folder_centre on SQLite and PostgreSQL: an empty folder (both ends
    NULL) passes, one centre passes, another centre sorting before or after it
    (or differing in case) is refused (from review 12's scratch test)."""
    from types import SimpleNamespace

    from signer.batch import check_folder_centre
    from signer.ledger.store import Reservation
    from signer.uvci import new_uvcis

    ledger = Ledger.open(ledger_target, actor="t")
    try:
        folder = SimpleNamespace(key="/x/out", path=Path("/x/out"), centre_checked=None)
        empty = SimpleNamespace(key="/x/empty", path=Path("/x/empty"), centre_checked=None)
        check_folder_centre(ledger, empty, "B")  # type: ignore[arg-type]
        assert empty.centre_checked == "B"
        uvcis = new_uvcis(len(centres), made_at=1780315200)
        ledger.apply([
            Reservation(uvci=u, centre=c, record_id=f"r{i}", record_hash=f"h{i}", generation=0, citizen_hash=None,
                        out_dir=folder.key, line=1, verified=True)
            for i, (u, c) in enumerate(zip(uvcis, centres, strict=True))
        ], [])  # fmt: skip
        if set(centres) == {"B"}:
            check_folder_centre(ledger, folder, "B")  # type: ignore[arg-type]
        else:
            with pytest.raises(ConfigError, match="another centre"):
                check_folder_centre(ledger, folder, "B")  # type: ignore[arg-type]
    finally:
        ledger.close()
