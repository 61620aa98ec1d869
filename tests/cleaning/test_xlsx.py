"""Our streaming XLSX writer, read back by openpyxl (the independent reader); same cells as openpyxl's writer."""

from __future__ import annotations

import warnings
from pathlib import Path

from openpyxl import Workbook, load_workbook

from signer.cleaning.xlsx import XlsxWriter

ROWS = [
    ["line", "full_name", "reasons_vi", "note"],
    [12, "Nguyễn Thị Thanh Hương", "Họ tên sai dấu so với CSDL dân cư (có thể gõ nhầm)", ""],
    [13, "Trần <Văn> & \"Đức\"", "a\tb\nc", "bell\x07gone"],
    [2**40, "", None, "x" * 40000],
]


def _read(path: Path) -> list[list[object]]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a well-formed file: openpyxl has nothing to complain about
        wb = load_workbook(path, read_only=True)
        rows = [list(r) for r in wb.active.iter_rows(values_only=True)]
        title = wb.active.title
        wb.close()
    assert title == "Đối chiếu"
    return rows


def test_written_file_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "a.xlsx"
    with XlsxWriter(path, sheet="Đối chiếu") as x:
        for row in ROWS:
            x.row(row)
    rows = _read(path)
    assert rows[0] == ROWS[0]
    assert rows[1] == [*ROWS[1][:3], None] and isinstance(rows[1][0], int)  # empty cell, as openpyxl reads ""
    assert rows[2] == [13, "Trần <Văn> & \"Đức\"", "a\tb\nc", "bellgone"]  # control character dropped
    assert rows[3][0] == 2**40 and rows[3][1] is None and rows[3][2] is None and rows[3][3] == "x" * 32767


def test_same_cells_as_openpyxl_writer(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.xlsx", tmp_path / "theirs.xlsx"
    with XlsxWriter(ours, sheet="Đối chiếu") as x:
        for row in ROWS[:2]:
            x.row(row)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Đối chiếu")
    for row in ROWS[:2]:
        ws.append(row)
    wb.save(theirs)
    assert _read(ours) == _read(theirs)


def test_pipeline_engines_agree(checked_jsonl, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from signer.cleaning.run import CheckOptions, run_checks
    from tests.cleaning.conftest import NOW

    outs = {}
    for engine in ("fast", "openpyxl"):
        outs[engine] = tmp_path / engine
        run_checks(CheckOptions(records=checked_jsonl.paths["records"], registry=str(checked_jsonl.paths["registry"]),
                                out_dir=outs[engine], now=NOW, workers=1, formats=("xlsx",), xlsx_engine=engine))  # fmt: skip
    files = sorted(p.relative_to(outs["fast"]) for p in outs["fast"].rglob("*.xlsx"))
    assert files == sorted(p.relative_to(outs["openpyxl"]) for p in outs["openpyxl"].rglob("*.xlsx"))
    assert len(files) > 100
    for rel in files[:40]:
        assert _read(outs["fast"] / rel) == _read(outs["openpyxl"] / rel)
