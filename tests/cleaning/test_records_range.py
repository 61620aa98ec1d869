"""signer.records.split_for_parallel/read_records_range: same records and lines as read_records."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

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


@pytest.mark.parametrize("shape", ["dose_rows", "person_rows"])
def test_plain_lines_read_as_every_row_tested(tmp_path: Path, shape: str) -> None:
    """A row read from one line that is valid UTF-8, NFC (or ASCII) and no longer than MAX_FIELD_CHARS takes its
    values stripped, without _cells' tests of the row (the line was tested as it was read): on hostile rows (NFD,
    a combining mark after a comma or quote, lone bad bytes, quoted commas, quotes and line ends, values and lines
    around MAX_FIELD_CHARS, blanks around values, CR LF, a BOM) every range gives what the reader gives when
    every row is tested, and the flag is _plain of each line."""
    import io
    import random

    from signer.records import MAX_FIELD_CHARS, _plain, _range_lines, _read_csv, load_column_map

    def every_row_tested(path: Path, start: int, end: int | None, first_line: int) -> list[Any]:
        """read_records_range of that range with every row's text tested (no plain flag, no undecoded lines)."""
        with path.open("rb") as fh:
            if start == 0:
                return list(_read_csv(_range_lines(fh, 0, end), load_column_map(None), str(path), warn=False))
            header = next(_range_lines(fh, 0, 1), "")
            lines = itertools.chain([header], _range_lines(fh, start, end))
            return list(_read_csv(lines, load_column_map(None), str(path), first_line - 2, warn=False))

    if shape == "dose_rows":
        head = "record_id,citizen_id,full_name,dob,sex,nationality,dose_date,vaccine_product,lot,dose_number,series_total"
    else:
        head = "record_id,citizen_id,full_name,dob,sex,nationality,dose1_date,dose1_vaccine,dose1_lot"
    width = head.count(",") + 1
    odd = ["Nguyễn Văn An", "Nguye\u0302\u0303n Va\u0306n An", "\u0301An", " Lê  Thị ", '"Trần, Bình"', '"Hà ""Nội"""',
           '"a\nb"', '"x\r\ny\u0301"', "\u212b", "Nguy\udcffn", "é" * (MAX_FIELD_CHARS - 40), "x" * (MAX_FIELD_CHARS + 5),
           "\ufeffR", "1", "", " ", "Pfizer", "\u1100\u1161", "가\u11a8",
           '"' + "m" * 600 + "\n" + "m" * 600 + '"']  # fmt: skip  (the last: two short lines, one long value)
    rnd = random.Random(11)
    for k in range(12):
        lines = ["\ufeff" + head if k % 2 else head]
        for i in range(300):
            rid = f"R{i // 2:04d}"
            cells = [rid, f"0010850{i:05d}", "Nguyễn Văn An", "1985-01-01", "M", "VN", "2021-08-01", "Pfizer", "L1",
                     "1", "2"][:width]  # fmt: skip
            if rnd.random() < 0.4:
                for _ in range(rnd.randint(1, 3)):
                    cells[rnd.randrange(1, width)] = rnd.choice(odd)
            lines.append(",".join(cells))
        if k % 3 == 0:  # a line exactly as long as a field may be, and one char longer
            base = ",".join(["R9998", "001085000001", "", "1985-01-01", "M", "VN", "2021-08-01", "Pfizer", "L",
                             "1", "2"][:width])  # fmt: skip
            for extra in (-1, 0, 1):
                fill = "n" * (MAX_FIELD_CHARS - len(base) + extra)
                lines.append(base.replace(",,", f",{fill},", 1))
        data = ("\r\n" if k % 4 == 1 else "\n").join(lines) + "\n"
        path = tmp_path / f"r{k}.csv"
        path.write_bytes(data.encode("utf-8", "surrogateescape"))
        whole = every_row_tested(path, 0, None, 1)
        assert len(whole) > 50
        assert list(read_records_range(path, 0, None, 1, warn=False)) == whole
        for parts in (2, 3, 5):
            ranges = split_for_parallel(path, parts)
            for r in ranges:
                assert list(read_records_range(path, *r, warn=False)) == every_row_tested(path, *r), (parts, r)
            # the ranges together read as the whole file (a cut never falls inside a row spanning lines); by line:
            # a row problem passes a person's group still open, which a range's end closes first
            joined = itertools.chain.from_iterable(every_row_tested(path, *r) for r in ranges)
            assert sorted(joined, key=_by_line) == sorted(whole, key=_by_line), parts
        flag = [False]
        seen = 0
        for line in _range_lines(io.BytesIO(path.read_bytes()), 0, None, None, flag):
            assert line is not None and flag[0] == _plain(line), line
            seen += 1
        assert seen >= 300


def _by_line(item: Any) -> tuple[int, str]:
    return item.line, type(item).__name__


def test_a_cut_moves_past_a_persons_row_that_spans_lines(tmp_path: Path) -> None:
    """The middle cut falls right before a person's second dose row, whose quoted lot holds a line end: the cut
    moves past that whole row (both its lines), not into it, so the two ranges read what the whole file reads
    and the person stays one record with both doses."""
    from signer.records import RowProblem

    head = "record_id,citizen_id,full_name,dob,sex,nationality,dose_date,vaccine_product,lot,dose_number,series_total\n"

    def row(k: int, lot: str = "L1", dose: int = 1) -> str:
        return f"R{k:05d},{1085000000 + k:012d},Nguyễn Văn An,1985-01-01,M,VN,2021-0{dose}-01,Pfizer,{lot},{dose},2\n"

    person = [row(5000), row(5000, '"x\r\ny"', 2)]  # the second row: two lines
    for after in range(60, 140):
        text = head + "".join(row(k) for k in range(100)) + "".join(person) + "".join(row(k) for k in range(6000, 6000 + after))
        path = tmp_path / "r.csv"
        path.write_bytes(text.encode())
        raw = split_for_parallel(path, 2, group_rows=False)
        if raw[1][0] == len((head + "".join(row(k) for k in range(100)) + person[0]).encode()):
            break  # the raw cut: the start of the person's two-line row
    else:
        raise AssertionError("no file with the cut before the two-line row")
    ranges = split_for_parallel(path, 2)
    assert ranges[1][0] == len((head + "".join(row(k) for k in range(100)) + "".join(person)).encode())
    assert ranges[1][2] == 2 + 100 + 3  # header, 100 rows, the person's three lines
    whole = list(read_records(path))
    got = list(itertools.chain.from_iterable(read_records_range(path, *r) for r in ranges))
    assert got == whole and not any(isinstance(x, RowProblem) for x in got)
    [one] = [x for x in got if x.record_id == "R05000"]
    assert len(one.doses) == 2 and one.doses[1].lot == "x\r\ny"
