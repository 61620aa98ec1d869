"""End to end on synthetic data: every injected error found with its reason, clean records verified."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from signer.cleaning.synth import RECORD_KINDS, ROW_KINDS_CSV, ROW_KINDS_JSONL
from signer.records import is_verified, read_records, record_from_mapping
from tests.cleaning.conftest import Checked


@pytest.mark.parametrize("dataset", ["checked_jsonl", "checked_csv", "checked_dose_rows"])
def test_every_injected_error_is_found_and_clean_records_pass(dataset: str, request: pytest.FixtureRequest) -> None:
    checked: Checked = request.getfixturevalue(dataset)
    score = checked.score
    row_kinds = ROW_KINDS_JSONL if dataset == "checked_jsonl" else ROW_KINDS_CSV
    assert set(score["injected_by_kind"]) == set(RECORD_KINDS) | set(row_kinds)
    assert all(n >= 5 for n in score["injected_by_kind"].values()), score["injected_by_kind"]
    assert score["missed"] == [], score["recall_by_kind"]
    assert score["false_positives"] == 0, score["false_positive_lines"]
    assert score["record_recall"] == 1.0 and score["record_precision"] == 1.0
    # one cause, one reason: every injected error gets exactly its codes, and no code lands on another kind's record
    assert score["extra_codes_by_kind"] == {}, score["extra_codes_by_kind"]
    assert all(v == 1.0 for v in score["precision_by_code"].values()), score["precision_by_code"]
    # every suggestion made is the true person; every person unique by name, date of birth and sex is found
    assert score["suggestions_expected"] > 50 and score["suggestions_wrong"] == 0
    assert score["suggestions_unique_right"] == score["suggestions_unique_expected"] > 50
    assert score["suggestions_right"] >= 0.98 * score["suggestions_expected"]
    totals = checked.summary["totals"]["subjects"]
    n_rows = sum(score["injected_by_kind"][k] for k in row_kinds)
    soft = score["injected_by_kind"]["registry_name_diacritics"]  # listed and verified (issue 9, point 7)
    assert checked.summary["verified_with_soft_reasons"] == soft
    assert totals["verified"] == score["verified"] == 3000 - (score["flagged"] - n_rows - soft)
    if dataset == "checked_dose_rows":
        inp = checked.summary["input"]
        assert inp["shape"] == "dose_rows" and inp["people"] == 3000 and inp["unused_columns"] == []
        assert inp["rows"] == checked.summary["totals"]["doses"]["checked"] + checked.summary["reasons"]["dose_missing"] + n_rows


def test_workers_give_the_same_answer_as_one(checked_csv: Checked, tmp_path: Path) -> None:
    from signer.cleaning.run import CheckOptions, run_checks
    from tests.cleaning.conftest import NOW

    one = run_checks(
        CheckOptions(records=checked_csv.paths["records"], registry=str(checked_csv.paths["registry"]),
                     out_dir=tmp_path, now=NOW, workers=1, formats=("csv",))
    )  # fmt: skip
    assert checked_csv.summary["workers"] == 2 and one["workers"] == 1
    for key in ("totals", "reasons", "by_province"):
        assert one[key] == checked_csv.summary[key]
    assert (tmp_path / "verified.jsonl").read_bytes() == (checked_csv.out / "verified.jsonl").read_bytes()


def test_verified_records_carry_a_current_stamp(checked_jsonl: Checked) -> None:
    records = list(read_records(checked_jsonl.out / "verified.jsonl"))
    assert len(records) == checked_jsonl.summary["totals"]["subjects"]["verified"] > 2000
    assert all(is_verified(r) for r in records)  # type: ignore[arg-type]
    first = json.loads((checked_jsonl.out / "verified.jsonl").read_text("utf-8").splitlines()[0])
    first["full_name"] += " X"
    assert not is_verified(record_from_mapping(first))  # type: ignore[arg-type]
    # first run: every verified record is new
    assert (checked_jsonl.out / "verified-new.jsonl").read_bytes() == (checked_jsonl.out / "verified.jsonl").read_bytes()


def _rows(out: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted((out / "reconciliation").rglob("*.csv")):
        if path.name.startswith("_"):
            continue
        with path.open(encoding="utf-8-sig", newline="") as fh:
            rows += [dict(r, _file=str(path)) for r in csv.DictReader(fh)]
    return rows


def test_reconciliation_lists_per_commune(checked_jsonl: Checked) -> None:
    rows = _rows(checked_jsonl.out)
    assert len(rows) == checked_jsonl.summary["files"]["flagged_records"]
    by_file: dict[str, set[tuple[str, str]]] = {}
    for r in rows:
        by_file.setdefault(r["_file"], set()).add((r["province"], r["commune"]))
        assert r["reason_codes"] and r["reasons_vi"] and r["reasons_en"]
        assert len(r["reasons_vi"].split("; ")) == len(r["reason_codes"].split())
    assert all(len(places) == 1 for places in by_file.values())  # one commune per file
    # Vietnamese and English labels, registry field names but no registry values by default
    mismatch = next(r for r in rows if "registry_name_mismatch" in r["reason_codes"])
    assert "Họ tên không khớp" in mismatch["reasons_vi"] and "Name differs" in mismatch["reasons_en"]
    assert mismatch["differing_fields"] == "full_name"
    assert "registry_full_name" not in mismatch
    # XLSX has the same rows as the CSV
    csv_path = Path(mismatch["_file"])
    wb = load_workbook(csv_path.with_suffix(".xlsx"), read_only=True)
    xrows = [[("" if v is None else str(v)) for v in row] for row in wb.active.iter_rows(values_only=True)]
    with csv_path.open(encoding="utf-8-sig", newline="") as fh:
        crows = list(csv.reader(fh))
    assert xrows == crows


def test_unreadable_rows_listed_with_line_and_reason(checked_jsonl: Checked, checked_csv: Checked) -> None:
    for checked, kinds in ((checked_jsonl, {"row_bad_json", "row_bad_encoding"}),
                           (checked_csv, {"row_column_count", "row_bad_encoding"})):  # fmt: skip
        with (checked.out / "reconciliation" / "_unreadable-rows.csv").open(encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        truth = [json.loads(x) for x in checked.paths["truth"].read_text("utf-8").splitlines()]
        expected = {(t["line"], t["kind"]) for t in truth if t["kind"].startswith("row_")}
        assert {(int(r["line"]), r["reason_code"]) for r in rows} == expected
        assert {r["reason_code"] for r in rows} == kinds


def test_summary_in_ministry_terms(checked_jsonl: Checked) -> None:
    s = checked_jsonl.summary
    on_disk = json.loads((checked_jsonl.out / "summary.json").read_text("utf-8"))
    assert on_disk == s
    for unit in ("subjects", "doses"):
        t = s["totals"][unit]
        assert t["checked"] == sum(v for k, v in t.items() if k != "checked")
        assert sum(p[unit]["checked"] for p in s["by_province"]) == t["checked"]
        for p in s["by_province"]:
            assert sum(c[unit]["verified"] for c in p["communes"]) == p[unit]["verified"]
    assert s["totals"]["subjects"]["id_missing_or_malformed"] > 0
    assert s["totals"]["doses"]["checked"] > s["totals"]["subjects"]["checked"]
    assert len(s["by_province"]) >= 60


def test_verified_line_is_the_json_lines_form() -> None:
    from dataclasses import replace

    from signer.cleaning.run import verified_line
    from signer.records import Dose
    from tests.cleaning.test_checks import CLEAN

    odd = replace(CLEAN, full_name='Quote " back\\slash \x01 {x} {}', doses=(Dose("2021-01-01", 'A"Z', "l\\o", 1, 2, "s\n"),))
    weird_type = replace(CLEAN, doses=(Dose("2021-01-01", "Pfizer", "", True, 2, ""),))  # type: ignore[arg-type]
    phoned = (replace(CLEAN, phone="+84900000123"), replace(odd, phone='+8490"\\'), replace(CLEAN, doses=(), phone="+1"))
    for rec in (CLEAN, odd, replace(CLEAN, doses=()), replace(CLEAN, verified="stale"), weird_type, *phoned):
        obj = rec.to_json()
        obj["verified"] = "f" * 64
        assert verified_line(rec, "f" * 64) == json.dumps(obj, ensure_ascii=False) + "\n"


def test_duplicates_across_workers_match_one_worker(checked_jsonl: Checked, tmp_path: Path) -> None:
    """Record IDs of the first half repeated in the second: two workers report what one reports."""
    from signer.cleaning.run import CheckOptions, run_checks
    from tests.cleaning.conftest import NOW

    raw = checked_jsonl.paths["records"].read_bytes().split(b"\n")
    good = [line for line in raw[:400] if line.startswith(b'{"record_id": "R')]
    copies = good[:60]  # verified and flagged ones, copied unchanged or with another name
    changed = [c.replace(b'"full_name": "', b'"full_name": "X', 1) for c in good[60:90]]
    export = tmp_path / "dups.jsonl"
    export.write_bytes(b"\n".join(raw + copies + changed) + b"\n")
    results = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        results[workers] = run_checks(CheckOptions(records=export, registry=str(checked_jsonl.paths["registry"]),
                                                   out_dir=out, now=NOW, workers=workers, formats=("csv",)))  # fmt: skip
    one, two = results[1], results[2]
    assert two["workers"] == 2
    assert one["reasons"]["record_id_duplicate"] == two["reasons"]["record_id_duplicate"] >= 90
    for key in ("totals", "reasons", "by_province"):
        assert one[key] == two[key]
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()
    assert _rows(tmp_path / "w1") == [dict(r, _file=r["_file"].replace("/w2/", "/w1/")) for r in _rows(tmp_path / "w2")]
    import sqlite3

    def store(workers: int) -> list[tuple]:
        conn = sqlite3.connect(tmp_path / f"w{workers}" / "state" / "results.sqlite")
        rows = conn.execute("SELECT record_id, fingerprint, codes, fields, suggestion, line FROM result "
                            "ORDER BY record_id").fetchall()  # fmt: skip
        conn.close()
        return rows

    assert store(1) == store(2)


@pytest.mark.parametrize("repeat_at_cut", [False, True])
def test_ranges_in_record_id_order_skip_the_join_but_not_a_duplicate_at_the_cut(
    checked_jsonl: Checked, tmp_path: Path, repeat_at_cut: bool
) -> None:
    """An export in record ID order: the two ranges' IDs do not meet and fix_cross_duplicates makes no join; an
    ID repeated right at the cut (the greatest of the first range is the least of the second) is still found.
    Two workers report what one reports, either way."""
    import re
    import sqlite3

    from signer.cleaning import dupes
    from signer.cleaning.run import CheckOptions, run_checks
    from signer.records import split_for_parallel
    from tests.cleaning.conftest import NOW

    raw = checked_jsonl.paths["records"].read_bytes().split(b"\n")
    key = re.compile(rb'^\{"record_id": "(R[0-9]+)"')
    by_id = {key.match(line)[1]: line for line in reversed(raw) if key.match(line)}  # type: ignore[index]
    good = [by_id[k] for k in sorted(by_id)]  # each ID once (the data's own repeats dropped), in ID order
    export = tmp_path / "sorted.jsonl"
    export.write_bytes(b"\n".join(good) + b"\n")
    [_, (start, _, _)] = split_for_parallel(export, 2)
    lines = export.read_bytes()[:start].split(b"\n")
    last = key.match(lines[-2])[1]  # type: ignore[index]  # the first range's greatest ID
    if repeat_at_cut:
        text = export.read_bytes()
        first = key.match(text[start:])[1]  # type: ignore[index]
        assert len(first) == len(last) and first > last
        export.write_bytes(text[:start] + text[start:].replace(first, last, 1))
        assert split_for_parallel(export, 2)[1][0] == start  # the same cut: the repeat is its first record
    joins: list[int] = []
    meet = dupes._ranges_meet

    def counted(conn: sqlite3.Connection, k: int) -> bool:
        joins.append(meet(conn, k))
        return joins[-1]

    results = {}
    for workers in (1, 2):
        dupes._ranges_meet = counted  # type: ignore[assignment]
        try:
            results[workers] = run_checks(CheckOptions(records=export, registry=str(checked_jsonl.paths["registry"]),
                                                       out_dir=tmp_path / f"w{workers}", now=NOW, workers=workers,
                                                       formats=("csv",)))  # fmt: skip
        finally:
            dupes._ranges_meet = meet  # type: ignore[assignment]
    one, two = results[1], results[2]
    assert two["workers"] == 2 and joins == [repeat_at_cut]
    assert one["reasons"].get("record_id_duplicate", 0) == two["reasons"].get("record_id_duplicate", 0) \
        == (1 if repeat_at_cut else 0)  # fmt: skip
    for k in ("totals", "reasons", "by_province", "incremental"):
        assert one[k] == two[k], k
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (tmp_path / "w1" / name).read_bytes() == (tmp_path / "w2" / name).read_bytes()
    assert _rows(tmp_path / "w1") == [dict(r, _file=r["_file"].replace("/w2/", "/w1/")) for r in _rows(tmp_path / "w2")]
