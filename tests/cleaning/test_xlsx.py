"""Our streaming XLSX writer, read back by openpyxl (the independent reader); same cells as openpyxl's writer."""

from __future__ import annotations

import warnings
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from signer.cleaning.xlsx import XlsxWriter, _cell, cells, text_cells

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


_PIECES = ["a", "Ễ", " ", "&", "<", ">", '"', "\t", "\n", "\r", "\x07", "\x1f", "\x00", "\ufffe", "\uffff", "\ud800",
           "=", ",", "x" * 9000]  # fmt: skip
_TEXT = st.lists(st.sampled_from(_PIECES), max_size=6).map("".join)
#: mostly printable texts (so that a whole row often is), now and then one special character or a long run
_MOSTLY_PLAIN = st.lists(st.sampled_from(["a", "Ễ", " ", "=", ",", "-"] * 6 + _PIECES + ["y" * 20000]), max_size=6).map("".join)
_VALUE = st.one_of(_TEXT, _TEXT, _TEXT, st.integers(-(2**70), 2**70), st.none(), st.booleans(), st.floats(allow_nan=False))


@settings(max_examples=400, deadline=None)
@given(st.lists(_VALUE, max_size=20))
def test_cells_in_one_join_are_the_cells_one_by_one(values: list[object]) -> None:
    """cells()/text_cells() join the cells of plain texts in one go (escaping, cutting and odd types go cell by
    cell): the XML is always the per-cell _cell's, for any mix of texts (markup characters, control
    characters, U+FFFE, lone surrogates, texts over the cell limit), integers, None, booleans and floats."""
    one_by_one = "".join(map(_cell, values))
    assert cells(values) == one_by_one
    if all(type(v) is str for v in values):
        joined = text_cells(values)  # type: ignore[arg-type]
        assert joined is None or joined == one_by_one


@settings(max_examples=400, deadline=None)
@given(st.lists(_MOSTLY_PLAIN, max_size=20), st.integers(0, 2**40))
def test_text_rows_in_one_join_are_the_cells_one_by_one(texts: list[str], line: int) -> None:
    """As above, for rows of texts only (with a line number first, or not) that are often all plain."""
    assert text_cells(texts) in (None, "".join(map(_cell, texts)))
    assert cells(texts) == "".join(map(_cell, texts))
    assert cells([line, *texts]) == "".join(map(_cell, [line, *texts]))


def test_plain_rows_take_the_joined_path() -> None:
    """The rows of the lists (a line number, then texts without markup) are made by the join, not cell by cell."""
    texts = ["R1", "Nguyễn Thị Hương", "1980-02-03", "F", "VN", "", "Hà Nội", "Phường 2", "2021-07-01 AZ 1/2"]
    assert text_cells(texts) == "".join(map(_cell, texts))
    assert text_cells(["a & b"]) is None and text_cells(["a\tb"]) is not None and text_cells(["x" * 32768]) is None
