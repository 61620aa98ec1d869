"""The reconciliation lists' rows made from pieces (_Writers.flagged) are the rows made cell by cell (_Writers.row)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from signer.cleaning.outputs import _code_texts, _Writers
from signer.cleaning.tables import load_tables

_PIECES = ["a", "Ễ", " ", "Nguyễn", "1980-02-03", "=", "+", "-", "@", ",", '"', "\t", "\n", "\r", "&", "<", ">",
           "\x07", "\x1f", "\x00", "\ufffe", "z" * 20000]  # fmt: skip  (no lone surrogate: the readers never make one)
_TEXT = st.lists(st.sampled_from(["a", "Ễ", " ", "1"] * 8 + _PIECES), max_size=5).map("".join)
_ROW = st.tuples(st.integers(1, 10**7), st.lists(_TEXT, min_size=11, max_size=11),
                 st.sampled_from(["", "registry_not_found", "id_wrong_length;registry_dob_mismatch",
                                  "registry_name_diacritics", "dose_interval_short;vaccine_unknown"]))  # fmt: skip
_TABLES = load_tables()
_HEADER = [f"h{k}" for k in range(17)]


def _files(base: Path) -> dict[str, bytes]:
    out = {"csv": base.with_suffix(".csv").read_bytes()}
    with zipfile.ZipFile(base.with_suffix(".xlsx")) as z:
        out.update({n: z.read(n) for n in z.namelist()})
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(_ROW, max_size=40), st.booleans())
def test_rows_from_pieces_are_the_rows_cell_by_cell(tmp_path_factory, rows, registry_values: bool) -> None:  # type: ignore[no-untyped-def]
    """CSV bytes and XLSX members: the same for texts that need CSV quoting, the formula quote, XML escaping,
    a cut at the cell limit or none of these (most rows), with and without the six registry values."""
    texts = _code_texts(_TABLES)
    tmp = tmp_path_factory.mktemp("lists")
    fast, plain = _Writers(tmp / "a" / "x", _HEADER, ("csv", "xlsx")), _Writers(tmp / "b" / "x", _HEADER, ("csv", "xlsx"))
    for line, var, codes in rows:
        var = [*var, "R", "1990", "F", "", "-x", "Lê"] if registry_values else var
        t = texts(codes)
        fast.flagged(line, var, t)
        plain.row(t.values(line, var))
    fast.close()
    plain.close()
    assert _files(tmp / "a" / "x") == _files(tmp / "b" / "x")


def test_row_texts_are_the_reason_table_texts() -> None:
    """The cached pieces of a code string: its labels joined as the lists print them."""
    t = _code_texts(_TABLES)("registry_not_found;registry_dob_mismatch")
    r = _TABLES.reasons
    assert t.codes == "registry_not_found registry_dob_mismatch"
    assert t.vi == f"{r['registry_not_found'].vi}; {r['registry_dob_mismatch'].vi}"
    assert t.en == f"{r['registry_not_found'].en}; {r['registry_dob_mismatch'].en}"
    assert t.values(7, [str(k) for k in range(11)])[:14] == [7, *map(str, range(9)), t.codes, t.vi, t.en, "9"]
