"""Corrections flow back: a corrected export re-checks only what changed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

from signer.cleaning.evaluate import evaluate
from signer.cleaning.run import CheckOptions, run_checks
from tests.cleaning.conftest import NOW, Checked

#: Injected errors that the commune police fix in the export (the person is right in the registry).
FIXABLE = {"id_missing", "id_wrong_length", "id_separators", "cccd_sex_mismatch", "registry_name_diacritics", "dob_format",
           "dose_interval_short", "vaccine_unknown", "registry_dob_mismatch"}  # fmt: skip


def _store_rows(path: Path) -> dict[str, tuple]:
    conn = sqlite3.connect(path)
    try:
        return {r[0]: r for r in conn.execute("SELECT * FROM result")}
    finally:
        conn.close()


def test_corrected_export_verifies_fixed_records_only(checked_jsonl: Checked, tmp_path: Path) -> None:
    base = tmp_path / "run"
    shutil.copytree(checked_jsonl.out, base)  # the first run's outputs and state
    state = base / "state" / "results.sqlite"
    before = _store_rows(state)
    verified_before = (base / "verified.jsonl").read_text("utf-8").splitlines()

    truth = [json.loads(x) for x in checked_jsonl.paths["truth"].read_text("utf-8").splitlines()]
    fixes = {t["line"]: t["original"] for t in truth if t["kind"] in FIXABLE}
    assert len(fixes) > 80
    lines = checked_jsonl.paths["records"].read_bytes().split(b"\n")  # keeps its malformed lines
    for line, original in fixes.items():
        lines[line - 1] = json.dumps(original, ensure_ascii=False).encode()
    corrected = tmp_path / "corrected.jsonl"
    corrected.write_bytes(b"\n".join(lines))

    summary = run_checks(
        CheckOptions(records=corrected, registry=str(checked_jsonl.paths["registry"]), out_dir=base, now=NOW, workers=1)
    )
    inc = summary["incremental"]
    assert inc["newly_verified"] == len(fixes)
    fixed_ids = {o["record_id"] for o in fixes.values()}
    # Re-checked: the fixed ones plus those whose verdict depends on the date (future dates) and duplicates.
    volatile = sum(1 for t in truth if t["kind"] in ("dob_future", "dose_future", "record_id_duplicate"))
    assert inc["rechecked"] == len(fixes) + volatile
    # a name wrong only in its diacritics was verified already (soft reason, registry spelling): fixing it
    # re-checks and re-lists it as newly verified, but does not add a verified person
    soft = {o["record_id"] for t in truth if t["kind"] == "registry_name_diacritics" for o in [t["original"]]}
    assert soft
    before_total = checked_jsonl.summary["totals"]["subjects"]["verified"]
    assert summary["totals"]["subjects"]["verified"] == before_total + len(fixes) - len(soft)

    # The others are untouched: same stored rows, same stamped lines in the same order.
    after = _store_rows(state)
    for rid, row in before.items():
        if rid not in fixed_ids:
            assert after[rid] == row or rid in {t["record_id"] for t in truth if "future" in t["kind"]}
    verified_after = (base / "verified.jsonl").read_text("utf-8").splitlines()
    assert [x for x in verified_after if json.loads(x)["record_id"] not in fixed_ids] == [
        x for x in verified_before if json.loads(x)["record_id"] not in fixed_ids]  # fmt: skip
    # the soft ones' lines are the same: the registry's spelling is what the fix writes
    assert {x for x in verified_after if json.loads(x)["record_id"] in soft} == {
        x for x in verified_before if json.loads(x)["record_id"] in soft}  # fmt: skip
    new = [json.loads(x) for x in (base / "verified-new.jsonl").read_text("utf-8").splitlines()]
    assert {r["record_id"] for r in new} == fixed_ids

    score = evaluate(checked_jsonl.paths["truth"], base)  # fixed lines are now clean, the rest still found
    assert score["found"] == score["injected"] - len(fixes)
    assert set(score["missed"]) <= set(fixes)
    assert score["false_positives"] == 0


def test_registry_change_rechecks_everything(checked_jsonl: Checked, tmp_path: Path) -> None:
    base = tmp_path / "run"
    shutil.copytree(checked_jsonl.out, base)
    registry = tmp_path / "registry.csv"
    registry.write_bytes(checked_jsonl.paths["registry"].read_bytes() + b"\n")
    summary = run_checks(
        CheckOptions(records=checked_jsonl.paths["records"], registry=str(registry), out_dir=base, now=NOW, workers=1,
                     state_dir=base / "state", formats=("csv",))
    )  # fmt: skip
    assert summary["incremental"]["unchanged_reused"] == 0
    assert summary["registry"]["reused_index"] is False
    assert summary["totals"] == checked_jsonl.summary["totals"]
    assert summary["incremental"]["newly_verified"] == 0
