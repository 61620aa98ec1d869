"""Corrections flow back: a corrected export re-checks only what changed."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

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


def test_first_run_links_verified_new_and_the_next_run_separates_them(tmp_path: Path) -> None:
    """A first run: verified-new.jsonl is verified.jsonl (one file, two names). The next run replaces both names
    with new files: verified-new holds only the changed person's line, and the first run's file is untouched."""
    import os

    from signer.cleaning.synth import SynthConfig, generate

    paths = generate(tmp_path / "data", SynthConfig(records=600, seed=5, shape="dose_rows", headers="en"))
    reg, out = str(paths["registry"]), tmp_path / "out"
    first = run_checks(CheckOptions(records=paths["records"], registry=reg, out_dir=out, now=NOW, workers=2,
                                    formats=("csv",)))  # fmt: skip
    verified, new = out / "verified.jsonl", out / "verified-new.jsonl"
    lines = verified.read_text("utf-8").splitlines()
    assert first["workers"] == 2 and len(lines) == first["incremental"]["newly_verified"] > 300
    assert os.stat(verified).st_ino == os.stat(new).st_ino and new.read_bytes() == verified.read_bytes()
    assert not list(out.glob(".part*")) and not list(out.glob("*.tmp-*"))
    kept = tmp_path / "first-run-verified.jsonl"
    os.link(verified, kept)  # the first run's file, whatever the next run does to the names

    # the next run: one verified person's lot number changed (a new fingerprint: checked again, verified, new)
    changed = json.loads(lines[len(lines) // 2])
    head, *rows = paths["records"].read_text("utf-8").splitlines()
    lot = changed["doses"][0]["lot"]
    at = next(i for i, r in enumerate(rows) if r.startswith(changed["record_id"] + ",") and f",{lot}," in r)
    rows[at] = rows[at].replace(f",{lot},", f",{lot}X,", 1)
    edited = tmp_path / "edited.csv"
    edited.write_text("\n".join([head, *rows]) + "\n", "utf-8")
    second = run_checks(CheckOptions(records=edited, registry=reg, out_dir=out, now=NOW, workers=2,
                                     formats=("csv",)))  # fmt: skip
    assert second["incremental"]["newly_verified"] == 1
    [line] = new.read_text("utf-8").splitlines()
    assert json.loads(line)["record_id"] == changed["record_id"] and json.loads(line)["doses"][0]["lot"] == lot + "X"
    after = verified.read_text("utf-8").splitlines()
    assert len(after) == len(lines) and line in after and lines[len(lines) // 2] not in after
    assert os.stat(verified).st_ino != os.stat(new).st_ino
    assert kept.read_text("utf-8").splitlines() == lines  # neither name was rewritten in place


def test_link_or_copy_replaces_the_target(tmp_path: Path) -> None:
    import os

    from signer.cleaning.run import _link_or_copy

    src, target = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    src.write_bytes(b'{"x": 1}\n' * 1000)
    target.write_bytes(b"old\n")
    _link_or_copy(src, target)
    assert os.stat(target).st_ino == os.stat(src).st_ino and target.read_bytes() == src.read_bytes()
    _link_or_copy(src, target, link=False)  # the kernel copy: its own file, same bytes
    assert os.stat(target).st_ino != os.stat(src).st_ino and os.stat(src).st_nlink == 1
    assert target.read_bytes() == src.read_bytes() and (os.stat(target).st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl", "b.jsonl"]


@pytest.mark.parametrize("workers", [1, 2])
def test_stale_parts_of_a_killed_run_do_not_become_this_runs_output(tmp_path: Path, workers: int) -> None:
    """A run killed hard (SIGKILL, OOM) leaves its ``.partN-*`` files. The next run into that folder with an empty
    results store (state deleted, a new --state-dir) writes the outputs it writes without them: verified-new.jsonl
    is verified.jsonl, not the stale part (whose lines would be signed, and this run's new lines never)."""
    from signer.cleaning.synth import SynthConfig, generate

    paths = generate(tmp_path / "data", SynthConfig(records=600, seed=7, shape="dose_rows", headers="en"))
    reg = str(paths["registry"])

    def run(out: Path) -> dict[str, Any]:
        return run_checks(CheckOptions(records=paths["records"], registry=reg, out_dir=out, now=NOW, workers=workers,
                                       state_dir=out / "state", formats=("csv",)))  # fmt: skip

    clean = run(tmp_path / "clean")
    assert clean["workers"] == workers
    stale = tmp_path / "stale"
    stale.mkdir()
    lines = (tmp_path / "clean" / "verified.jsonl").read_text("utf-8").splitlines(keepends=True)
    for part in range(3):  # what a killed later run leaves (also of a part this run has not)
        (stale / f".part{part}-verified-new.jsonl").write_text("".join(lines[part:part + 3]), "utf-8")
        (stale / f".part{part}-verified.jsonl").write_text("".join(lines[part:part + 2]), "utf-8")
    summary = run(stale)
    for key in ("totals", "reasons", "incremental", "input", "files"):
        assert summary[key] == clean[key], key
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (stale / name).read_bytes() == (tmp_path / "clean" / name).read_bytes(), name
    assert (stale / "verified-new.jsonl").read_bytes() == (stale / "verified.jsonl").read_bytes()
    assert len(lines) == clean["incremental"]["newly_verified"] > 300
    assert not list(stale.glob(".part*"))
