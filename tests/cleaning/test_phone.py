"""The phone number on records: contact data for the citizen portal, never content, never logged."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from signer.records import (
    FIELDS,
    Record,
    RowProblem,
    fingerprint_form,
    load_column_map,
    normalise_phone,
    read_records,
    record_fingerprint,
)
from tests.cleaning.test_bad_input import REGISTRY
from tests.cleaning.test_dose_rows import HEAD, HUONG

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "text",
    ["0912 345 678", "0912.345.678", "+84912345678", "84912345678", "0912-345-678", "(+84) 912 345 678",
     "+84 0912 345 678", "0084 912 345 678", "912345678", " 0912345678 ", "0912\u00a0345\u00a0678"],
)  # fmt: skip
def test_vietnamese_spellings_become_e164(text: str) -> None:
    assert normalise_phone(text) == "+84912345678"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("+44 7700 900123", "+447700900123"), ("+1 (555) 010-9999", "+15550109999"), ("0065 6123 4567", "+6561234567"),
     ("+82 10 1234 5678", "+821012345678"), ("+8491234567", ""), ("+84912345678 9", ""), ("+123456", ""),
     ("+1234567890123456", ""), ("+0912345678", ""), ("++84912345678", "")],
)  # fmt: skip
def test_other_countries_are_e164_when_they_look_valid(text: str, expected: str) -> None:
    assert normalise_phone(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", " ", "-", "N/A", "không có", "0912 345 67", "09123456789", "0212345678", "024 3825 1234", "+84 24 3825 1234",
     "0112345678", "612345678", "0912345678 ext 2", "0912345678/0987654321", "0912345678;0987654321",
     "9.12345678E+8", "912345678.0", "０９１２３４５６７８", "0912 345 678\x00"],
)  # fmt: skip
def test_anything_else_is_refused(text: str) -> None:
    assert normalise_phone(text) == ""


def _person_csv(tmp_path: Path, header: str, phones: list[str]) -> Path:
    path = tmp_path / "r.csv"
    rows = [f"A{i},Nguyễn Văn An,1990-01-02,Nam,VN,00109000012{i},Hà Nội,Phường X,{p},2021-08-01,Pfizer,FK1,1,2,S"
            for i, p in enumerate(phones)]  # fmt: skip
    head = f"record_id,full_name,dob,sex,nationality,citizen_id,province,commune,{header},dose1_date,dose1_vaccine," \
        "dose1_lot,dose1_number,dose1_series,dose1_site"  # fmt: skip
    path.write_text("\n".join([head, *rows]) + "\n", "utf-8")
    return path


@pytest.mark.parametrize("alias", load_column_map().fields["phone"])
def test_every_alias_of_the_mapping_is_read(tmp_path: Path, alias: str) -> None:
    [rec] = read_records(_person_csv(tmp_path, alias, ["0900 000 123"]))
    assert isinstance(rec, Record) and rec.phone == "+84900000123"


def test_aliases_are_those_of_the_brief() -> None:
    assert set(load_column_map().fields["phone"]) >= {"phone", "phone_number", "mobile", "Số điện thoại",
                                                      "So dien thoai", "SĐT", "Điện thoại"}  # fmt: skip
    assert "phone" not in FIELDS


def test_person_rows_usable_missing_and_unusable(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    recs = list(read_records(_person_csv(tmp_path, "Số điện thoại", ["0900.000.123", "", "0900 000 12"])))
    assert [(r.phone, r.phone_unusable) for r in recs if isinstance(r, Record)] == [
        ("+84900000123", False), ("", False), ("", True)]  # fmt: skip
    assert "phone" not in recs[1].to_json() and recs[0].to_json()["phone"] == "+84900000123"
    assert "0900" not in caplog.text and "not used" not in caplog.text  # the column is taken, no value logged


def test_dose_rows_take_the_first_non_empty_phone(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    rows = [HUONG.format("2021-08-02", "AstraZeneca", 1, 1) + ",",
            HUONG.format("2021-10-25", "AstraZeneca", 2, 2) + ",0900 000 321",
            HUONG.format("2022-01-25", "Pfizer", 3, 3) + ",0900 000 999"]  # fmt: skip
    path.write_text("\n".join([HEAD + ",mobile", *rows]) + "\n", "utf-8")
    [rec] = read_records(path)
    assert isinstance(rec, Record) and (rec.rows, rec.phone, rec.phone_unusable) == (3, "+84900000321", False)
    # a phone that differs between a person's rows does not split the person
    path.write_text("\n".join([HEAD + ",mobile", rows[0] + "x", *rows[1:]]) + "\n", "utf-8")
    [rec] = read_records(path)
    assert isinstance(rec, Record) and (rec.rows, rec.phone, rec.phone_unusable) == (3, "", True)


def test_a_phone_too_long_is_a_row_problem_that_does_not_show_it(tmp_path: Path) -> None:
    [bad] = read_records(_person_csv(tmp_path, "phone", ["0900" * 300]))
    assert isinstance(bad, RowProblem) and bad.reason == "field_too_long" and "0900" not in bad.message


def test_jsonl_phone_key(tmp_path: Path) -> None:
    base = json.loads((ROOT / "examples" / "records.jsonl").read_text("utf-8").splitlines()[0])
    lines = [{**base, "phone": "0900 000 777"}, {**base, "phone": 84900000778}, {**base, "phone": None},
             {**base, "phone": "12"}, {**base, "phone": ["0900000777"]}]  # fmt: skip
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in lines), "utf-8")
    a, b, c, d, e = read_records(path)
    assert isinstance(a, Record) and isinstance(b, Record) and isinstance(c, Record) and isinstance(d, Record)
    assert [(r.phone, r.phone_unusable) for r in (a, b, c, d)] == [
        ("+84900000777", False), ("+84900000778", False), ("", False), ("", True)]  # fmt: skip
    assert isinstance(e, RowProblem) and e.reason == "bad_json" and "0900" not in e.message
    # to_json writes the phone only when known, and reads back the same record
    path.write_text(json.dumps(a.to_json(), ensure_ascii=False) + "\n" + json.dumps(c.to_json()) + "\n", "utf-8")
    again, none = read_records(path)
    assert again == replace(a, line=1) and "phone" not in c.to_json() and isinstance(none, Record) and not none.phone


def test_the_phone_is_not_content() -> None:
    [rec] = [r for r in read_records(ROOT / "examples" / "records.jsonl") if isinstance(r, Record)][:1]
    assert rec.phone
    other = replace(rec, phone="+84900000999")
    assert record_fingerprint(other) == record_fingerprint(rec) == record_fingerprint(replace(rec, phone=""))
    assert fingerprint_form(other) == fingerprint_form(rec) and b"900" not in fingerprint_form(rec)


def test_examples_have_usable_missing_and_unusable_phones() -> None:
    by_format = []
    for name in ("records.csv", "records.jsonl"):
        recs = [r for r in read_records(ROOT / "examples" / name) if isinstance(r, Record)]
        by_format.append([(r.record_id, r.phone, r.phone_unusable) for r in recs])
    csv_form, jsonl_form = by_format
    assert csv_form == jsonl_form
    phones = [p for _, p, _ in csv_form]
    assert all(p == "" or p.startswith(("+84900000", "+447700900")) for p in phones)  # fake ranges only
    assert sum(1 for _, p, bad in csv_form if not p and not bad) >= 2 and sum(bad for *_, bad in csv_form) == 1


def _check(tmp_path: Path, records: Path, out: Path) -> subprocess.CompletedProcess[str]:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "signer", "check", str(records), "--registry", str(reg), "--out", str(out),
         "--at", "2026-06-01T00:00:00Z", "--formats", "csv", "--workers", "1"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip


def test_check_carries_the_phone_counts_it_and_never_shows_it(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    # A1 verifies; B1 (wrong birth date) is flagged and listed; C1 has an unusable phone.
    rows = [HUONG.format("2021-08-02", "AstraZeneca", 1, 1) + ",0900 000 555",
            HUONG.format("2021-10-25", "AstraZeneca", 2, 2) + ",",
            "B1,001062004567,Trần Văn Đức,1962-02-02,M,VN,2021-09-10,Sinopharm,L3,1,2,Phường Hàng Bạc,Hà Nội,0900.000.556",
            "C1,,Lê Văn C,1970-01-01,M,VN,2021-09-10,Sinopharm,L4,1,2,Phường Hàng Bạc,Hà Nội,0900 000 5"]  # fmt: skip
    path.write_text("\n".join([HEAD + ",Số điện thoại", *rows]) + "\n", "utf-8")
    out = tmp_path / "out"
    proc = _check(tmp_path, path, out)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text("utf-8"))
    assert summary["input"]["phones"] == {"usable": 2, "unusable": 1}
    verified = [json.loads(x) for x in (out / "verified.jsonl").read_text("utf-8").splitlines()]
    assert [(v["record_id"], v["phone"]) for v in verified] == [("A1", "+84900000555")]
    # nowhere else: console, summary, reconciliation lists, state
    for text in [proc.stdout, proc.stderr] + [p.read_bytes().decode("utf-8", "replace") for p in out.rglob("*")
                                              if p.is_file() and p.suffix != ".jsonl"]:  # fmt: skip
        assert "0900" not in text and "900000" not in text

    # a new phone number: the same verdict, no new certificate to sign, the new number carried
    path.write_text(path.read_text("utf-8").replace("0900 000 555", "+84 900 000 666"), "utf-8")
    proc = _check(tmp_path, path, out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "verified.jsonl").read_text("utf-8"))["phone"] == "+84900000666"
    assert (out / "verified-new.jsonl").read_text("utf-8") == ""
