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
