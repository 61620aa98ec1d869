"""signer.records.split_for_parallel/read_records_range: same records and lines as read_records."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from signer.records import read_records, read_records_range, split_for_parallel
from tests.cleaning.conftest import Checked


@pytest.mark.parametrize("parts", [1, 2, 3, 8])
@pytest.mark.parametrize("dataset", ["checked_jsonl", "checked_csv"])
def test_ranges_cover_the_file_exactly(dataset: str, parts: int, request: pytest.FixtureRequest) -> None:
    path = request.getfixturevalue(dataset).paths["records"]
    ranges = split_for_parallel(path, parts)
    assert len(ranges) == parts and ranges[0][0] == 0 and ranges[-1][1] == path.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    got = list(itertools.chain.from_iterable(read_records_range(path, *r) for r in ranges))
    assert got == list(read_records(path))


def test_cut_never_falls_inside_a_quoted_field(tmp_path: Path, checked_csv: Checked) -> None:
    text = checked_csv.paths["records"].read_text("utf-8", errors="surrogateescape")
    head, *rows = text.split("\n")
    # Every row gets a dose site with a quoted line break: half of all newlines are inside quotes.
    rows = [r.replace("Trạm Y tế", '"Trạm Y tế\nsố 2"', 1) if r.startswith("R") else r for r in rows]
    path = tmp_path / "multiline.csv"
    path.write_bytes("\n".join([head, *rows]).encode("utf-8", "surrogateescape"))
    whole = list(read_records(path))
    for parts in (2, 5, 13):
        got = list(itertools.chain.from_iterable(read_records_range(path, *r) for r in split_for_parallel(path, parts)))
        assert got == whole


def test_rows_that_are_not_utf8_are_found_without_a_test_per_row(tmp_path: Path) -> None:
    """A row's UTF-8 test is left out while the reader has decoded every line so far (_range_lines records the
    lines it could not decode): a bad byte anywhere, in any range, in a dose row or in a quoted line of a row
    spanning two lines, still makes its row row_bad_encoding, as the test of every row did."""
    import io

    from signer.records import RowProblem, _cells, _range_lines

    head = "record_id,citizen_id,full_name,dob,sex,nationality,dose_date,vaccine_product,lot,dose_number,series_total\n"
    rows = [f"R{k:04d},0010850{k:05d},Nguyễn Văn An,1985-01-01,M,VN,2021-08-0{1 + k % 2},Pfizer,L{k},1,2\n"
            for k in range(400)]  # fmt: skip
    bad = {37: b"Nguy\xe1n", 250: b'"Ng\nuy\xff"', 399: b"\xc3"}  # a bad byte early, in a quoted line, at the end
    data = bytearray(head.encode())
    for k, row in enumerate(rows):
        line = row.encode()
        if k in bad:
            line = line.replace("Nguyễn Văn An".encode(), bad[k])
        data += line
    path = tmp_path / "r.csv"
    path.write_bytes(bytes(data))
    whole = list(read_records(path))
    problems = [x for x in whole if isinstance(x, RowProblem)]
    assert [(p.line, p.reason) for p in problems] == [(39, "bad_encoding"), (253, "bad_encoding"),
                                                       (402, "bad_encoding")]  # fmt: skip
    for parts in (2, 3, 7):
        got = list(itertools.chain.from_iterable(read_records_range(path, *r) for r in split_for_parallel(path, parts)))
        assert got == whole
    undecoded: list[int] = []
    lines = list(_range_lines(io.BytesIO(bytes(data)), 0, None, undecoded))
    assert [lines.index(next(x for x in lines if x and x.startswith(f"R{k:04d}"))) for k in (37, 250)] == [38, 251]
    assert len(undecoded) == 3 and all(data[o - 1 : o] == b"\n" for o in undecoded)  # each a line start
    row = ["R1", "Nguy\udce1n"]
    assert _cells(row) is None and _cells(row, True) is None and _cells(row, False) == [*row, ""]
