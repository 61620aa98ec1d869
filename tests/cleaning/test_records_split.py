"""Review 9 findings on reading one export in ranges (signer.records): the plain-line path and the cuts of
split_for_parallel, each from a small generated file that reproduced it."""

from __future__ import annotations

import csv
import io
import itertools
import random
from collections.abc import Callable
from pathlib import Path

from signer.records import (
    _cells,
    _range_lines,
    read_records,
    read_records_range,
    split_for_parallel,
)

DOSE_HEAD = ("record_id,citizen_id,full_name,dob,sex,nationality,dose_date,vaccine_product,lot,dose_number,"
             "series_total\n")  # fmt: skip


def test_text_after_a_closing_quote_is_normalised(tmp_path: Path) -> None:
    """F2: csv drops a closing quote and keeps what follows it in the value, so ``"Pha"\\u0323m`` is an NFC line
    whose value ``Pha\\u0323m`` is not NFC: the value is normalised as _cells does (Phạm), not only stripped."""
    path = tmp_path / "r.csv"
    path.write_text(DOSE_HEAD + 'R1,001301879023,"Pha"\u0323m Minh Giang,2001-09-11,F,VN,2021-07-05,Pfizer,L1,1,2\n'
                    + 'R2,001301879024,"\u1100"\u1161 Kim,2001-09-11,F,VN,2021-07-05,Pfizer,L1,1,1\n', "utf-8")
    names = [x.full_name for x in read_records_range(path, 0, None, 1, warn=False)]  # type: ignore[union-attr]
    assert names == ["Ph\u1ea1m Minh Giang", "\uac00 Kim"]
    assert names == [x.full_name for x in read_records(path)]  # type: ignore[union-attr]


def test_plain_lines_give_what_cells_gives() -> None:
    """F2, every way round: lines of random values with quotes (opening, closing, doubled, mid-value) next to
    combining marks and Hangul jamo; wherever _range_lines calls a line plain, its row stripped is _cells' row."""
    parts = ['"', '""', "\u0323", "\u0301", "\u0302\u0300", "\u1161", "\u11a8", "a", "e", "\u1100", "Phạm", " ", ",",
             "\u212b", "x"]  # fmt: skip
    rnd = random.Random(9)
    lines = []
    for _ in range(4000):
        values = ["".join(rnd.choice(parts) for _ in range(rnd.randint(0, 5))) for _ in range(rnd.randint(1, 4))]
        if rnd.random() < 0.5:  # a quoted start, then text after its closing quote
            values[0] = '"' + "".join(rnd.choice(parts[5:]) for _ in range(2)) + '"' + rnd.choice(parts[2:7]) + "n"
        line = ",".join(values).replace("\n", "")
        lines.append(line + rnd.choice(["\n", "\r\n"]))
    flag = [False]
    plain = 0
    for line in _range_lines(io.BytesIO("".join(lines).encode()), 0, None, None, flag):
        assert line is not None
        try:
            rows = list(csv.reader([line]))
        except csv.Error:
            continue
        if flag[0] and len(rows) == 1:
            plain += 1
            assert [*map(str.strip, rows[0]), ""] == _cells(rows[0]), ascii(line)
    assert plain > 200


def _read_parts(path: Path, ranges: list[tuple[int, int, int]]) -> list[object]:
    return list(itertools.chain.from_iterable(read_records_range(path, *r, warn=False) for r in ranges))


def test_row_ends_are_csv_readers() -> None:
    """F6/F3 root: _rows ends rows where csv.reader (default dialect, as the reader reads) ends them, on random
    lines of commas, quotes at and inside values, doubled quotes, line ends inside quotes, lone CRs, long lines."""
    from signer.records import MAX_LINE_BYTES, _rows

    parts = [",", '"', '""', ',"', '",', "\n", "\r\n", "a", "b\u1ea1", "\r", "\n\n", " "]
    rnd = random.Random(5)
    for k in range(300):
        text = "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 60)))
        data = text.encode()
        if k % 50 == 7:  # a line too long, read as an empty line whatever quotes it holds
            data = data + b'x,"' * (MAX_LINE_BYTES // 3 + 2) + b"\n" + data
        lines = [line.decode() for line in io.BytesIO(data)]
        fed = ["\n" if len(x.rstrip("\n").encode()) > MAX_LINE_BYTES else x for x in lines]  # as _read_csv
        reader = csv.reader(fed)
        ends = []
        while True:
            try:
                next(reader)
            except StopIteration:
                break
            except csv.Error:
                pass
            ends.append(reader.line_num)
        got = list(itertools.accumulate(n for _s, _e, n in _rows(io.BytesIO(data), 0)))
        if got and not data.endswith(b"\n"):
            got[-1] += 1  # the last line, without its line end, is a line for csv
        assert got == ends, ascii(text)


def _dose_file(path: Path, rows: list[str], head: str = DOSE_HEAD) -> bytes:
    data = (head + "".join(rows)).encode("utf-8", "surrogateescape")
    path.write_bytes(data)
    return data


def _row(k: int, lot: str = "L1", dose: int = 1, notes: str | None = None) -> str:
    """A dose row (``notes``: a first column before it)."""
    row = f"R{k:05d},{1085000000 + k:012d},Nguyễn Văn An,1985-01-01,M,VN,2021-0{dose}-01,Pfizer,{lot},{dose},3"
    if notes is not None:
        row = f"{notes},{row}"
    return row + "\n"


def _one_vs_two(path: Path, person: str, doses: int) -> list[tuple[int, int, int]]:
    """The whole file read in 2 ranges reads as in one; the person is one record with all doses."""
    from signer.records import RowProblem

    ranges = split_for_parallel(path, 2)
    whole = list(read_records(path))
    assert _read_parts(path, ranges) == whole
    mine = [x for x in whole if not isinstance(x, RowProblem) and x.record_id == person]
    assert len(mine) == 1 and len(mine[0].doses) == doses  # type: ignore[union-attr]
    return ranges


def _place(path: Path, before: list[str], person: list[str], cut_at: int, head: str = DOSE_HEAD,
           row: Callable[..., str] | None = None) -> None:  # fmt: skip
    """Writes before + person + rows after, with as many rows after as puts the raw cut (without moving it
    past a person's rows) right before ``person[cut_at]``."""
    row = row or _row
    size = len((head + "".join(before + person)).encode())
    cut = len((head + "".join(before + person[:cut_at])).encode())
    prev = cut - len(person[cut_at - 1].encode())
    tail: list[str] = []
    while (size + len("".join(tail).encode())) // 2 < prev:
        tail.append(row(60000 + len(tail)))
    assert tail, "no rows after the person"
    _dose_file(path, before + person + tail, head)
    assert split_for_parallel(path, 2, group_rows=False)[1][0] == cut, "no file with the cut there"


def test_a_quote_inside_a_value_does_not_keep_the_cut(tmp_path: Path) -> None:
    """F3: a lot typed with a ditto mark (``L9"``, a literal quote for csv) on a person's first two of three
    rows, the raw cut before the third: the cut moves after the third row (it stayed: the person was split)."""
    path = tmp_path / "r.csv"
    before = [_row(k) for k in range(100)]
    person = [_row(5000, 'L9"', 1), _row(5000, 'L9"', 2), _row(5000, "L9", 3)]
    _place(path, before, person, 2)
    ranges = _one_vs_two(path, "R05000", 3)
    assert ranges[1][0] == len((DOSE_HEAD + "".join(before + person)).encode())
    assert ranges[1][2] == 2 + 100 + 3


def test_one_stray_quote_after_the_cut_costs_no_more_than_a_line(tmp_path: Path) -> None:
    """F1: the only quote of a 20,000-row file, mid-value in the person's row right after the cut: the cut
    moves after that row and the split stays linear (it joined every later line into one text, re-counting
    its quotes at each: 2 CPU-s for this file, hours for a real export)."""
    import time

    path = tmp_path / "r.csv"
    before = [_row(k) for k in range(10000)]
    person = [_row(50000, "L1", 1), _row(50000, 'FK78753"', 2)]
    _place(path, before, person, 1)
    cpu = time.process_time()
    ranges = split_for_parallel(path, 2)
    cpu = time.process_time() - cpu
    assert ranges[1][0] == len((DOSE_HEAD + "".join(before + person)).encode())
    assert cpu < 0.5, cpu
    _one_vs_two(path, "R50000", 2)


def test_quoted_line_ends_after_a_stray_quote(tmp_path: Path) -> None:
    """F6: a literal quote mid-value early in the file (which flipped the count of quotes for the rest of it)
    and, later, rows whose quoted values hold line ends: every cut falls where csv ends a row, so the ranges
    read as the whole file, for any number of parts."""
    path = tmp_path / "r.csv"
    rows = [_row(k) for k in range(400)]
    rows[10] = _row(10, 'L"1')
    for k in range(150, 400, 3):
        rows[k] = _row(k, '"Trạm\nsố 2"')
    _dose_file(path, rows)
    whole = list(read_records(path))
    for parts in range(2, 14):
        for group in (False, True):
            ranges = split_for_parallel(path, parts, group_rows=group)
            assert _read_parts(path, ranges) == whole, (parts, group)


def test_a_row_longer_than_64_kb_before_the_cut(tmp_path: Path) -> None:
    """F4: the person's first row holds a 70,000-character note (first or last column) and the raw cut falls
    right after it: the row before the cut is found further back, the cut moves after the person's rows."""
    for first in (True, False):
        path = tmp_path / f"r{first}.csv"
        if first:
            head = "notes," + DOSE_HEAD

            def row(k: int, lot: str = "L1", dose: int = 1, notes: str = "") -> str:
                return _row(k, lot, dose, notes)
        else:
            head = DOSE_HEAD.rstrip("\n") + ",notes\n"

            def row(k: int, lot: str = "L1", dose: int = 1, notes: str = "") -> str:
                return _row(k, lot, dose).rstrip("\n") + f",{notes}\n"

        before = [row(k, notes="") for k in range(1000)]
        person = [row(5000, "L1", 1, notes="n" * 70000), row(5000, "L1", 2, notes=""), row(5000, "L1", 3, notes="")]
        _place(path, before, person, 1, head, row)
        ranges = _one_vs_two(path, "R05000", 3)
        assert ranges[1][0] == len((head + "".join(before + person)).encode()), first


def test_an_unreadable_row_at_the_cut(tmp_path: Path) -> None:
    """F7: a line longer than MAX_LINE_BYTES (skipped as too long, which leaves the person's rows open) between a
    person's second and third rows, the raw cut right after it: the cut moves after the third row too."""
    from signer.records import MAX_LINE_BYTES

    path = tmp_path / "r.csv"
    before = [_row(k) for k in range(14000)]
    long_line = "x" * (MAX_LINE_BYTES + 10) + "\n"
    person = [_row(90000, "L1", 1), _row(90000, "L1", 2), long_line, _row(90000, "L1", 3)]
    _place(path, before, person, 3)
    ranges = _one_vs_two(path, "R90000", 3)
    assert ranges[1][0] == len((DOSE_HEAD + "".join(before + person)).encode())
    assert ranges[1][2] == 2 + 14000 + 4
