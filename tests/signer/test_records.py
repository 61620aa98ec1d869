"""signer.records: the streaming readers (JSONL and CSV) and their row problems."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from signer.records import Record, RowProblem, read_records
from verifier.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "record_id": "R1", "full_name": "Nguyễn Văn An", "date_of_birth": "1990-01-02", "sex": "Nam",
    "nationality": "VN", "id_number": "001090000123",
    "doses": [{"date": "2021-08-01", "vaccine": "Pfizer", "lot": "FK1", "dose_number": 1,
               "series_doses": 2, "site": "Trạm Y tế"}],
}  # fmt: skip


def _jsonl(tmp_path: Path, *objs: object) -> list[Record | RowProblem]:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs), "utf-8")
    return list(read_records(path))


def test_jsonl_record_and_sex_spelling(tmp_path: Path) -> None:
    [rec] = _jsonl(tmp_path, GOOD)
    assert isinstance(rec, Record)
    assert (rec.sex, rec.id_number, rec.line, rec.doses[0].dose_number) == ("M", "001090000123", 1, 1)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"full_name": ["Nguyễn", "Văn An"]}, "bad_json"),
        ({"id_number": {"cccd": "001090000123"}}, "bad_json"),
        ({"doses": [{**GOOD["doses"][0], "lot": ["FK1"]}]}, "bad_doses"),  # type: ignore[index]
        ({"doses": "Pfizer"}, "bad_doses"),
        ({"sex": "unknown"}, "bad_sex"),
        ({"doses": [{**GOOD["doses"][0], "dose_number": "one"}]}, "bad_number"),  # type: ignore[index]
    ],
)
def test_jsonl_structure_problems_are_reported_and_the_run_goes_on(
    tmp_path: Path, change: dict[str, object], reason: str
) -> None:
    bad, good = _jsonl(tmp_path, {**GOOD, **change}, {**GOOD, "record_id": "R2"})
    assert isinstance(bad, RowProblem) and (bad.line, bad.reason) == (1, reason)
    assert isinstance(good, Record) and good.record_id == "R2"


def test_csv_with_bom_vietnamese_headers_and_leading_zeros() -> None:
    records = list(read_records(ROOT / "examples" / "records.csv"))
    assert records and all(isinstance(r, Record) for r in records)
    ids = [r.id_number for r in records if isinstance(r, Record)]
    assert any(i.startswith("0") for i in ids)  # IDs stay text


def test_csv_row_problems_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_bytes(
        "record_id,full_name,date_of_birth,sex,id_number\n"
        "A1,Lê Thị Hoa,1990,Nữ,001190000001\n"
        "A2,too,few\n".encode()
        + b"A3,\xff\xfe broken,1990,F,001190000002\n"
        + "A4,Trần Văn Bình,1985-02-03,M,001085000004\n".encode()
    )
    out = list(read_records(path))
    assert [(type(x).__name__, x.line) for x in out] == [
        ("Record", 2), ("RowProblem", 3), ("RowProblem", 4), ("Record", 5)
    ]
    assert [x.reason for x in out if isinstance(x, RowProblem)] == ["column_count", "bad_encoding"]


def test_missing_file_and_unusable_header_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        list(read_records(tmp_path / "nope.jsonl"))
    path = tmp_path / "h.csv"
    path.write_text("a,b,c\n1,2,3\n", "utf-8")
    with pytest.raises(ConfigError, match="full_name"):
        list(read_records(path))
