"""``python -m signer synth|check`` end to end; nothing personal in the console output."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path


def _run(*args: str, module: str = "signer") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, check=False)


def test_synth_then_check_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    proc = _run("synth", "--out", str(data), "--records", "1500", "--seed", "3", "--format", "csv",
                "--headers", "vi", "--malformed-rows", "4")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (data / "records.csv").read_bytes().startswith("Mã hồ sơ,Họ và tên".encode())
    again = tmp_path / "again"
    assert _run("synth", "--out", str(again), "--records", "1500", "--seed", "3", "--format", "csv",
                "--headers", "vi", "--malformed-rows", "4").returncode == 0  # fmt: skip
    assert (again / "records.csv").read_bytes() == (data / "records.csv").read_bytes()  # seeded

    out = tmp_path / "out"
    proc = _run("check", str(data / "records.csv"), "--registry", str(data / "registry.csv"), "--out", str(out),
                "--at", "2026-06-01T00:00:00Z")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Vaccination data check summary" in proc.stdout and "Đối tượng / subjects" in proc.stdout
    assert len([x for x in proc.stderr.splitlines() if x.startswith("line ")]) == 4
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert sum(n for c, n in summary["reasons"].items() if c.startswith("row_")) == 4

    # No citizen ID or name on the console.
    with (data / "registry.csv").open(encoding="utf-8") as fh:
        people = list(csv.reader(fh))[1:]
    console = proc.stdout + proc.stderr
    assert not [p for p in people if p[0] in console or p[1] in console]

    # The same command through python -m signer.cleaning, JSON output, and the index reused.
    proc = _run("check", str(data / "records.csv"), "--registry", str(data / "registry.csv"), "--out", str(out),
                "--at", "2026-06-01", "--json", "--formats", "csv", module="signer.cleaning")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["registry"]["reused_index"] is True
    assert result["incremental"]["unchanged_reused"] > 1000
    assert result["totals"] == summary["totals"]
    assert not list(out.rglob("*.xlsx"))


def test_registry_values_only_on_request(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run("synth", "--out", str(data), "--records", "800", "--seed", "5").returncode == 0
    args = ["check", str(data / "records.jsonl"), "--registry", str(data / "registry.csv"), "--formats", "csv"]
    assert _run(*args, "--out", str(tmp_path / "plain")).returncode == 0
    proc = _run(*args, "--out", str(tmp_path / "staff"), "--show-registry-values")
    assert proc.returncode == 0, proc.stderr

    def rows(out: Path) -> list[dict[str, str]]:
        found = []
        for path in (out / "reconciliation").rglob("*.csv"):
            if not path.name.startswith("_"):
                with path.open(encoding="utf-8-sig") as fh:
                    found += list(csv.DictReader(fh))
        return found

    plain = rows(tmp_path / "plain")
    assert plain and "registry_full_name" not in plain[0]
    staff = rows(tmp_path / "staff")
    names = [r for r in staff if "registry_name_mismatch" in r["reason_codes"]]
    assert names and all(r["registry_full_name"] and r["registry_full_name"] != r["full_name"] for r in names)
    suggested = [r for r in staff if r["suggested_id"]]
    assert suggested and all(r["suggested_full_name"] and r["suggested_date_of_birth"] for r in suggested)
    registry_names = {row[1] for row in csv.reader((data / "registry.csv").open(encoding="utf-8"))}
    assert all(r["registry_full_name"] in registry_names for r in names)
