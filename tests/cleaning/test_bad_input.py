"""Malformed rows are reported by line and reason and do not stop the run; bad files are clear errors."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from signer.cleaning.run import CheckOptions, row_code, run_checks
from tests.cleaning.conftest import NOW
from verifier.errors import ConfigError

REGISTRY = (
    "Số định danh,Họ và tên,Ngày sinh,Giới tính,Tỉnh/Thành phố,Xã/Phường\n"
    "079185001234,Nguyễn Thị Thanh Hương,1985-03-14,Nữ,TP. Hồ Chí Minh,P. Bến Nghé\n"
    "001062004567,Trần Văn Đức,1962-02-01,Nam,Hà Nội,Phường Hàng Bạc\n"
)
HEADER = "Mã hồ sơ,Họ và tên,Ngày sinh,Giới tính,Quốc tịch,Số CCCD/CMND/Hộ chiếu,Tỉnh/Thành phố,Xã/Phường," \
    "Mũi 1 - Ngày tiêm,Mũi 1 - Vắc xin,Mũi 1 - Số lô,Mũi 1 - Mũi số,Mũi 1 - Số mũi phác đồ,Mũi 1 - Nơi tiêm"  # fmt: skip
GOOD = "A1,Nguyễn Thị Thanh Hương,1985-03-14,Nữ,VN,079185001234,Thành phố Hồ Chí Minh,Phường Bến Nghé," \
    "2021-08-02,AstraZeneca,ABV1,1,1,Trạm Y tế"  # fmt: skip


def _run(tmp_path: Path, records: Path) -> dict:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    return run_checks(CheckOptions(records=records, registry=str(reg), out_dir=tmp_path / "out", now=NOW, workers=1))


def _unreadable(tmp_path: Path) -> list[tuple[int, str]]:
    with (tmp_path / "out" / "reconciliation" / "_unreadable-rows.csv").open(encoding="utf-8-sig") as fh:
        return [(int(r["line"]), r["reason_code"]) for r in csv.DictReader(fh)]


def test_malformed_csv_rows(tmp_path: Path) -> None:
    lines = [
        HEADER,
        GOOD,  # line 2
        "A2,Trần Văn Đức,1962",  # 3: wrong column count
        GOOD.replace("A1,", "A3,").replace(",1,1,", ",một,1,"),  # 4: dose number not a number
        GOOD.replace("A1,", "A4,").replace(",Nữ,", ",Bê đê,"),  # 5: unknown sex
        GOOD.replace("A1,", "A5,").replace("1985-03-14", "1985-02-30"),  # 6: impossible date
        GOOD.replace("A1,", "A6,").replace("Trạm Y tế", '"' + "x" * 140_000 + '"'),  # 7: field too large
        GOOD.replace("A1,", "A7,"),  # 8: still checked after all that
    ]
    data = ("\n".join(lines) + "\n").encode()
    data += GOOD.replace("A1,", "A8,").replace("Hương", "H\xff").encode("utf-8", "surrogateescape").replace(
        b"H\xc3\xbf", b"H\xff") + b"\n"  # fmt: skip  # 9: not UTF-8
    path = tmp_path / "records.csv"
    path.write_bytes(data)
    summary = _run(tmp_path, path)
    assert _unreadable(tmp_path) == [
        (3, "row_column_count"), (4, "row_bad_number"), (5, "row_bad_sex"), (7, "row_bad_csv"), (9, "row_bad_encoding"),
    ]  # fmt: skip
    assert summary["totals"]["subjects"]["unreadable"] == 5
    assert summary["reasons"]["dob_invalid_date"] == 1
    assert summary["totals"]["subjects"]["verified"] == 2  # A1 and A7 (same person, other record id)
    assert summary["reasons"].get("record_id_duplicate") is None


def test_malformed_jsonl_lines(tmp_path: Path) -> None:
    good = {"record_id": "J1", "full_name": "Trần Văn Đức", "date_of_birth": "1962-02-01", "sex": "M",
            "nationality": "VN", "id_number": "001062004567", "province": "Hà Nội", "commune": "Phường Hàng Bạc",
            "doses": [{"date": "2021-09-10", "vaccine": "Sinopharm", "dose_number": 1, "series_doses": 2}]}  # fmt: skip
    lines = [
        json.dumps(good, ensure_ascii=False),
        "{not json",
        json.dumps(dict(good, record_id="J2", doses={"a": 1})),
        "[1, 2]",
        json.dumps(dict(good, record_id="")),
        json.dumps(good),  # duplicate record id
    ]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = _run(tmp_path, path)
    assert _unreadable(tmp_path) == [(2, "row_bad_json"), (3, "row_bad_doses"), (4, "row_bad_json")]
    assert summary["reasons"]["record_id_missing"] == 1
    assert summary["reasons"]["record_id_duplicate"] == 1
    assert summary["totals"]["subjects"]["verified"] == 1


@pytest.mark.parametrize("workers", [1, 2])
def test_jsonl_lines_with_an_escaped_lone_surrogate_are_bad_encoding_rows(tmp_path: Path, workers: int) -> None:
    """Valid JSON whose text decodes to a lone surrogate (not Unicode, as a byte that is not UTF-8 in a CSV row):
    reported as a bad_encoding row; the run goes on (it used to stop with an internal UnicodeEncodeError and no
    output). A surrogate pair is a character, and an escaped backslash before "ud800" is plain text."""
    good = {"record_id": "J1", "full_name": "Trần Văn Đức", "date_of_birth": "1962-02-01", "sex": "M",
            "nationality": "VN", "id_number": "001062004567", "province": "Hà Nội", "commune": "Phường Hàng Bạc",
            "doses": [{"date": "2021-09-10", "vaccine": "Sinopharm", "dose_number": 1, "series_doses": 2}]}  # fmt: skip
    dose = dict(good["doses"][0], lot="L\uDC00")  # type: ignore[index]
    lines = [
        json.dumps(good, ensure_ascii=False),
        json.dumps(dict(good, record_id="J2\ud800")),  # 2: record ID
        json.dumps(dict(good, record_id="J3", full_name="Trần Văn \udfff")),  # 3: name
        json.dumps(dict(good, record_id="J4", doses=[dose])).replace("\\udc00", "\\uDC00"),  # 4: a dose, capitals
        json.dumps(dict(good, record_id="J5", commune="Phường \U0001F600")),  # 5: a pair: a record
        json.dumps(dict(good, record_id="J6", commune="Phường \\ud800")),  # 6: a backslash, then text: a record
        json.dumps({"record_id": "J7", "\ud800": 1, **{k: v for k, v in good.items() if k != "record_id"}}),  # 7
        json.dumps(dict(good, record_id="J8")),
    ]
    assert "\\ud800" in lines[1] and "\\uDC00" in lines[3] and "\\ud83d\\ude00" in lines[4]
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    summary = run_checks(CheckOptions(records=path, registry=str(reg), out_dir=tmp_path / "out", now=NOW,
                                      workers=workers))  # fmt: skip
    assert summary["workers"] == workers
    assert _unreadable(tmp_path) == [(2, "row_bad_encoding"), (3, "row_bad_encoding"), (4, "row_bad_encoding"),
                                     (7, "row_bad_encoding")]  # fmt: skip
    assert summary["totals"]["subjects"]["unreadable"] == 4
    verified = [json.loads(x)["record_id"] for x in (tmp_path / "out" / "verified.jsonl").read_text("utf-8").splitlines()]
    assert verified == ["J1", "J5", "J6", "J8"]


def test_unknown_reader_reason_maps_to_row_other() -> None:
    assert row_code("column_count") == "row_column_count"
    assert row_code("something_new") == "row_other"


@pytest.mark.parametrize("which", ["records", "registry", "directory", "suffix"])
def test_missing_or_unusable_file_is_a_config_error(tmp_path: Path, which: str) -> None:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    rec = tmp_path / "records.csv"
    rec.write_text(HEADER + "\n" + GOOD + "\n", encoding="utf-8")
    other = tmp_path / "records.xml"
    other.write_text("<x/>")
    opts = {
        "records": dict(records=tmp_path / "nope.csv", registry=str(reg)),
        "registry": dict(records=rec, registry=str(tmp_path / "nope.csv")),
        "directory": dict(records=tmp_path, registry=str(reg)),
        "suffix": dict(records=other, registry=str(reg)),
    }[which]
    with pytest.raises(ConfigError):
        run_checks(CheckOptions(out_dir=tmp_path / "out", now=NOW, **opts))  # type: ignore[arg-type]
    assert not (tmp_path / "out" / "verified.jsonl").exists()


def test_cli_bad_file_one_line_exit_2(tmp_path: Path) -> None:
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, encoding="utf-8")
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("foo,bar\n1,2\n", encoding="utf-8")
    for args in (
        ["check", str(tmp_path / "missing.csv"), "--registry", str(reg), "--out", str(tmp_path / "o")],
        ["check", str(bad_header), "--registry", str(reg), "--out", str(tmp_path / "o")],
        ["check", str(bad_header), "--registry", str(tmp_path / "nope.sqlite"), "--out", str(tmp_path / "o")],
    ):
        proc = subprocess.run([sys.executable, "-m", "signer", *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
        assert "Traceback" not in proc.stderr


def test_flagged_record_without_province_or_commune(tmp_path: Path) -> None:
    # Such a record used to land in the unreadable rows' group and the run died
    # with KeyError on its joined reason codes (a traceback, no outputs).
    path = tmp_path / "records.jsonl"
    path.write_text(
        json.dumps({"record_id": "N1", "doses": [{"date": 1}]}) + "\n"
        + json.dumps({"record_id": "N2", "full_name": "Trần Văn Đức", "date_of_birth": "1962",
                      "sex": "M", "nationality": "VN", "id_number": "001062004567", "doses": []})
        + "\n",
        encoding="utf-8",
    )  # fmt: skip
    summary = _run(tmp_path, path)
    assert summary["totals"]["subjects"]["checked"] == 2
    assert not (tmp_path / "out" / "reconciliation" / "_unreadable-rows.csv").exists()
    with (tmp_path / "out" / "reconciliation" / "_unknown" / "_unknown.csv").open(encoding="utf-8-sig") as fh:
        rows = {r["record_id"]: r["reason_codes"].split() for r in csv.DictReader(fh)}
    assert set(rows) == {"N1", "N2"}
    assert "dose_date_invalid" in rows["N1"] and "dose_missing" in rows["N2"]


@pytest.mark.parametrize("engine", ["fast", "openpyxl"])
def test_reconciliation_cells_are_never_formulas(tmp_path: Path, engine: str) -> None:
    # A record ID like =HYPERLINK(...) went into the police's CSV as is (Excel runs
    # it) and openpyxl's writer stored it as a live formula in the XLSX.
    import zipfile

    from openpyxl import load_workbook

    evil = '=HYPERLINK("http://example.invalid/","x")'
    path = tmp_path / "records.csv"
    path.write_text(HEADER + "\n" + GOOD.replace("A1,", '"' + evil.replace('"', '""') + '",') + "\n"
                    + "@SUM(1),Trần Văn Đức,1962\n", encoding="utf-8")  # fmt: skip
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY.replace("Nguyễn Thị Thanh Hương,1985", "Nguyễn Thị Thanh Hà,1985"), encoding="utf-8")
    run_checks(CheckOptions(records=path, registry=str(reg), out_dir=tmp_path / "out", now=NOW, workers=1,
                            xlsx_engine=engine))  # fmt: skip
    lists = tmp_path / "out" / "reconciliation"
    [csv_path] = [p for p in lists.rglob("*.csv") if p.name != "_unreadable-rows.csv"]
    with csv_path.open(encoding="utf-8-sig") as fh:
        assert [r["record_id"] for r in csv.DictReader(fh)] == ["'" + evil]
    with (lists / "_unreadable-rows.csv").open(encoding="utf-8-sig") as fh:
        assert [r["record_id"] for r in csv.DictReader(fh)] == ["'@SUM(1)"]
    xlsx = csv_path.with_suffix(".xlsx")
    with zipfile.ZipFile(xlsx) as zf:
        assert not any(b"<f>" in zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    rows = list(load_workbook(xlsx).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[1][1] == evil  # the exact text, as text
