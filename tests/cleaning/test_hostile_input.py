"""Hostile records files (issue 8, point 5): no traceback, bounded memory, private outputs.

Each case runs the real command in a subprocess, as an operator would.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.cleaning.run import row_code
from signer.records import MAX_FIELD_CHARS, MAX_LINE_BYTES, Record, RowProblem, read_records
from tests.cleaning.test_bad_input import GOOD, HEADER, REGISTRY
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

GOOD_JSON = {"record_id": "J1", "full_name": "Trần Văn Đức", "date_of_birth": "1962-02-01", "sex": "M",
             "nationality": "VN", "id_number": "001062004567", "province": "Hà Nội", "commune": "Phường Hàng Bạc",
             "doses": [{"date": "2021-09-10", "vaccine": "Sinopharm", "dose_number": 1, "series_doses": 2}]}  # fmt: skip
NESTED = '{"record_id": "N1", "doses": ' + "[" * 200_000 + "]" * 200_000 + "}"


def _cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signer", *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})})  # fmt: skip


def _check(tmp_path: Path, records: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    return _cmd("check", str(records), "--registry", str(reg), "--out", str(tmp_path / "out"),
                "--at", "2026-06-01T00:00:00Z", "--formats", "csv", *extra)  # fmt: skip


def _unreadable(tmp_path: Path) -> list[tuple[int, str]]:
    with (tmp_path / "out" / "reconciliation" / "_unreadable-rows.csv").open(encoding="utf-8-sig") as fh:
        return [(int(r["line"]), r["reason_code"]) for r in csv.DictReader(fh)]


def test_deeply_nested_json_is_a_bad_row_in_check(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps(GOOD_JSON, ensure_ascii=False) + "\n" + NESTED + "\n"
                    + json.dumps(dict(GOOD_JSON, record_id="J2"), ensure_ascii=False) + "\n", encoding="utf-8")  # fmt: skip
    proc = _check(tmp_path, path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert _unreadable(tmp_path) == [(2, "row_bad_json")]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text("utf-8"))
    assert summary["totals"]["subjects"]["verified"] == 2


def test_deeply_nested_json_is_a_bad_row_in_sign(tmp_path: Path, test_pki: Pki) -> None:
    key, cert = write_key_files(test_pki.dsc_ec, tmp_path)
    path = tmp_path / "records.jsonl"
    path.write_text(NESTED + "\n" + "[" * 5000 + "\n", encoding="utf-8")
    proc = _cmd("sign", str(path), "--out", str(tmp_path / "signed"), "--key", str(key), "--cert", str(cert),
                "--at", "2026-06-01T12:00:00Z", env={KEY_PASSPHRASE_ENV: TEST_PASSPHRASE})  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert [x.split(":")[0] for x in proc.stderr.splitlines() if x.startswith("line ")] == ["line 1", "line 2"]
    assert "nested too deeply" in proc.stderr


MEASURED = (
    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.stderr.write(p.stderr); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024); "
    "sys.exit(p.returncode)"
)


def _check_measured(tmp_path: Path, records: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run ``check`` under a fresh parent: its peak resident memory (largest process, MB) is the parent's."""
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", MEASURED, sys.executable, "-m", "signer", "check", str(records), "--registry", str(reg),
         "--out", str(tmp_path / "out"), "--at", "2026-06-01T00:00:00Z", "--formats", "csv", *extra],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc, int(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_a_huge_line_is_skipped_in_constant_memory(tmp_path: Path, suffix: str) -> None:
    # A 1 GB line used to run 7 minutes, take 4 GB and end in sqlite3.DataError.
    # 200 MB here: held whole, it would show in the peak memory several times over.
    path = tmp_path / f"records.{suffix}"
    huge = 200 << 20
    with path.open("wb") as fh:
        if suffix == "jsonl":
            fh.write((json.dumps(GOOD_JSON, ensure_ascii=False) + "\n").encode())
            fh.write(b'{"record_id": "H1", "full_name": "')
        else:
            fh.write((HEADER + "\n" + GOOD + "\n").encode())
            fh.write(b"H1,")
        block = b"x" * (1 << 20)
        for _ in range(huge >> 20):
            fh.write(block)
        fh.write(b'"}\n' if suffix == "jsonl" else b",1962\n")
        good2 = json.dumps(dict(GOOD_JSON, record_id="J2"), ensure_ascii=False) if suffix == "jsonl" else GOOD.replace("A1,", "A2,")  # fmt: skip
        fh.write((good2 + "\n").encode())
    proc, peak_mb = _check_measured(tmp_path, path, "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert _unreadable(tmp_path) == [(3 if suffix == "csv" else 2, "row_line_too_long")]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text("utf-8"))
    assert summary["totals"]["subjects"]["verified"] == 2
    assert peak_mb < 150, peak_mb  # about 70 MB: the interpreter, the libraries and the caches


def test_over_long_fields_are_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    long = "x" * (MAX_FIELD_CHARS + 1)
    rows = [dict(GOOD_JSON, full_name=long), dict(GOOD_JSON, record_id=long),
            dict(GOOD_JSON, doses=[dict(GOOD_JSON["doses"][0], lot=long)]), dict(GOOD_JSON, verified=[[1]])]  # type: ignore[index]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "x" * (MAX_LINE_BYTES + 10) + "\n", "utf-8")
    out = list(read_records(path))
    assert [(x.line, x.reason) for x in out if isinstance(x, RowProblem)] == [
        (1, "field_too_long"), (2, "field_too_long"), (3, "field_too_long"), (4, "bad_json"), (5, "line_too_long")]
    assert not [x for x in out if isinstance(x, Record)]
    assert all(len(x.record_id) <= MAX_FIELD_CHARS for x in out if isinstance(x, RowProblem))
    assert row_code("field_too_long") == "row_field_too_long" and row_code("line_too_long") == "row_line_too_long"


def test_outputs_are_created_private(tmp_path: Path) -> None:
    # verified.jsonl, the lists and the registry index used to be 0644 (world-readable).
    path = tmp_path / "records.csv"
    path.write_text(HEADER + "\n" + GOOD + "\n" + GOOD.replace("A1,", "A2,").replace("Hương", "Hà") + "\n",
                    encoding="utf-8")  # fmt: skip
    old = os.umask(0o022)  # the usual umask: only our modes keep the files private
    try:
        proc = _check(tmp_path, path, "--formats", "csv,xlsx")
        again = _check(tmp_path, path, "--formats", "csv,xlsx", "--workers", "2", "--xlsx-engine", "openpyxl")
    finally:
        os.umask(old)
    assert proc.returncode == 0 and again.returncode == 0, proc.stderr + again.stderr
    out = tmp_path / "out"
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"verified.jsonl", "verified-new.jsonl", "summary.json", "results.sqlite"} <= names
    assert any(n.startswith("registry-") for n in names) and any(n.endswith(".xlsx") for n in names)
    assert any(n.endswith(".csv") for n in names)
    modes = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert {k: oct(v) for k, v in modes.items() if v != 0o600} == {}
    dirs = {str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode) for p in out.rglob("*") if p.is_dir()}
    assert {k: oct(v) for k, v in dirs.items() if v != 0o700} == {}
