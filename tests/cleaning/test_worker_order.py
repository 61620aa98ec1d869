"""Two workers give one worker's outputs whichever worker runs first (the results store race).

The check workers are run one after the other here, in a chosen order, which
is one possible interleaving of the parallel run: with the later range first,
a worker used to read the other worker's same-run verdicts from the shared
results store (a later copy of a record ID) as if they came from an earlier
run, so the originals counted as "unchanged" and left ``verified-new.jsonl``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import signer.cleaning.run as run_mod
from signer.cleaning.run import CheckOptions, run_checks
from signer.cleaning.store import ResultStore, mark_delivered, merge_staged
from tests.cleaning.conftest import NOW, Checked
from tests.cleaning.test_pipeline import _rows

COMPARED = ("totals", "reasons", "by_province", "incremental", "foreigners_verified_without_registry", "files")


def _sequential(order: Callable[[list[Any]], list[int]]) -> Callable[[Any, list[Any]], list[Any]]:
    real = run_mod._map

    def run_in_order(fn: Any, tasks: list[Any]) -> list[Any]:
        if fn is not run_mod._work or len(tasks) < 2:
            return real(fn, tasks)
        out: dict[int, Any] = {}
        for k in order(tasks):
            out[k] = fn(tasks[k])
        return [out[k] for k in range(len(tasks))]

    return run_in_order


def _store(state: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(state / "results.sqlite")
    try:
        return conn.execute(
            "SELECT record_id, fingerprint, context, run, codes, fields, suggestion, line, registry_name FROM result "
            "ORDER BY record_id"
        ).fetchall()
    finally:
        conn.close()


def _export(checked: Checked, path: Path) -> Path:
    """The export with IDs of the first range repeated at the end: copies, and copies with another name."""
    raw = checked.paths["records"].read_bytes().split(b"\n")
    good = [line for line in raw[:400] if line.startswith(b'{"record_id": "R')]
    changed = [c.replace(b'"full_name": "', b'"full_name": "X', 1) for c in good[60:90]]
    path.write_bytes(b"\n".join(raw + good[:60] + changed) + b"\n")
    return path


def _same(a: Path, b: Path, sa: dict[str, Any], sb: dict[str, Any]) -> None:
    for key in COMPARED:
        assert sa[key] == sb[key], key
    for name in ("verified.jsonl", "verified-new.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert _rows(a) == [dict(r, _file=r["_file"].replace(str(b), str(a))) for r in _rows(b)]
    assert _store(a / "state") == _store(b / "state")


@pytest.mark.parametrize("order", ["later_range_first", "earlier_range_first"])
def test_two_workers_in_either_order_match_one(
    checked_jsonl: Checked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, order: str
) -> None:
    export = _export(checked_jsonl, tmp_path / "dups.jsonl")
    reg = str(checked_jsonl.paths["registry"])

    def run(out: Path, workers: int) -> dict[str, Any]:
        return run_checks(CheckOptions(records=export, registry=reg, out_dir=out, now=NOW, workers=workers,
                                       formats=("csv",)))  # fmt: skip

    one = run(tmp_path / "w1", 1)
    pick = (lambda t: list(range(len(t)))[::-1]) if order == "later_range_first" else (lambda t: list(range(len(t))))
    monkeypatch.setattr(run_mod, "_map", _sequential(pick))
    two = run(tmp_path / "w2", 2)
    assert two["workers"] == 2 and one["workers"] == 1
    assert one["incremental"]["unchanged_reused"] == 0  # a first run: nothing from an earlier run
    assert one["foreigners_verified_without_registry"] > 0
    _same(tmp_path / "w1", tmp_path / "w2", one, two)

    # A second run on the same state, after a correction: the earlier run's verdicts are read alike.
    lines = export.read_bytes().split(b"\n")
    lines[5] = lines[5].replace(b'"full_name": "', b'"full_name": "Y', 1)
    export.write_bytes(b"\n".join(lines))
    one2, two2 = run(tmp_path / "w1", 1), run(tmp_path / "w2", 2)
    assert one2["incremental"]["unchanged_reused"] > 2000
    _same(tmp_path / "w1", tmp_path / "w2", one2, two2)


def test_staged_rows_stay_out_of_the_store_until_merged_in_range_order(tmp_path: Path) -> None:
    path = tmp_path / "results.sqlite"
    main = ResultStore(path, context="c")
    main.put("A", "fp-old", (), (), "", 1)
    main.close()
    mark_delivered(path, main.run)  # (an earlier run's verdict: not one of a run killed before its outputs)
    run = ResultStore(path, context="c").run
    later = ResultStore(path, context="c", run=run, staging=tmp_path / "p1.sqlite")
    earlier = ResultStore(path, context="c", run=run, staging=tmp_path / "p0.sqlite")
    later.put("A", "fp-copy", ("registry_not_found",), (), "", 900)
    later.put("B", "fp-b", (), (), "", 901)
    later.close()  # the later range finishes first
    got = earlier.get(["A", "B"])
    assert set(got) == {"A"} and got["A"].fingerprint == "fp-old" and got["A"].run != run
    earlier.put("A", "fp-a", (), (), "", 3)
    earlier.close()
    merge_staged(path, [tmp_path / "p0.sqlite", tmp_path / "p1.sqlite"], "c", run)
    final = ResultStore(path, context="c", run=run).get(["A", "B"])
    assert (final["A"].fingerprint, final["A"].codes, final["A"].run, final["A"].context) == ("fp-a", (), run, "c")
    assert (final["B"].fingerprint, final["B"].codes, final["B"].run, final["B"].context) == \
        ("fp-b", (), run, "c")  # fmt: skip
    staged = sqlite3.connect(tmp_path / "p1.sqlite")  # a staged row holds neither: merge_staged gives them
    assert [r[1] for r in staged.execute("PRAGMA table_info(result)")] == [
        "record_id", "fingerprint", "codes", "fields", "suggestion", "line", "registry_name"]  # fmt: skip
    staged.close()
