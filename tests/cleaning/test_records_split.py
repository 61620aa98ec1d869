"""Review 9 findings on reading one export in ranges (signer.records): the plain-line path and the cuts of
split_for_parallel, each from a small generated file that reproduced it."""

from __future__ import annotations

import csv
import io
import itertools
import random
from pathlib import Path

from signer.records import _cells, _range_lines, read_records, read_records_range

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
