"""A run killed (or failed) after it stored verdicts never hides records from the next run's verified-new.jsonl.

A run stores its verdicts in the results store while it runs (one worker: each chunk's, :meth:`ResultStore.flush`;
several: :func:`merge_staged`, one part at a time, before the outputs are written). Were they taken for an earlier
*delivered* run's, the records they verified would be "unchanged" to the next run and never reach
verified-new.jsonl, which the killed run did not write either: never signed (review9-clean F5). Each test kills a
real ``signer check`` with SIGKILL at such a point (a launcher wraps the store's functions, as tests/ledger's kill
tests do), then runs the same check again: its outputs must be the un-killed run's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from signer.cleaning.run import CheckOptions, run_checks
from signer.cleaning.synth import SynthConfig, generate
from tests.cleaning.conftest import NOW

#: ``signer check`` that SIGKILLs itself: "flush" = after the first ResultStore.flush that stored verdicts (chunks
#: of 100 people, so that the run is killed in the middle), "merge" = after merge_staged applied the first part,
#: "concat" = after the second part was appended to verified.jsonl's temp name (the reconciliation lists written).
LAUNCH = """
import os, signal, sys
import signer.cleaning.run as run
import signer.cleaning.store as store
mode = sys.argv[1]
if mode == "flush":
    run.CHUNK = 100
    flush = store.ResultStore.flush
    def killing_flush(self):
        had = bool(self._pending)
        flush(self)
        if had:
            os.kill(os.getpid(), signal.SIGKILL)
    store.ResultStore.flush = killing_flush
elif mode == "concat":  # in the middle of joining the parts: verified.jsonl's temp name half written
    copy = run.copy_dropping
    def killing_copy(src, dst, *args):
        copy(src, dst, *args)
        os.kill(os.getpid(), signal.SIGKILL)
    run.copy_dropping = killing_copy
else:
    merge = run.merge_staged
    def killing_merge(path, staged, *args):
        merge(path, staged[:1], *args)
        os.kill(os.getpid(), signal.SIGKILL)
    run.merge_staged = killing_merge
from signer.cli import main
sys.exit(main(["check", *sys.argv[2:]]))
"""
AT = NOW.isoformat()
OUTPUTS = ("verified.jsonl", "verified-new.jsonl")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """600 people, one row per dose, and a later export of them: some lots corrected (a new fingerprint), some
    people dropped, some rows' dates changed (verdicts that change)."""
    base = tmp_path_factory.mktemp("killed")
    paths = generate(base / "data", SynthConfig(records=600, seed=31, shape="dose_rows", headers="en"))
    head, *rows = paths["records"].read_text("utf-8").splitlines()
    lot = head.split(",").index("lot")
    out, people = [head], 0
    last = None
    for row in rows:
        cells = row.split(",")
        if cells[0] != last:
            last, people = cells[0], people + 1
        if people % 11 == 0:
            continue  # dropped
        if people % 5 == 0 and len(cells) > lot:
            cells[lot] += "X"  # a corrected lot: a new fingerprint
        elif people % 13 == 0:
            cells = [c.replace("2021-", "2020-") for c in cells]
        out.append(",".join(cells))
    later = base / "later.csv"
    later.write_text("\n".join(out) + "\n", "utf-8")
    return {"records": paths["records"], "later": later, "registry": paths["registry"]}


def _check(records: Path, registry: Path, out: Path, workers: int) -> dict[str, Any]:
    return run_checks(CheckOptions(records=records, registry=str(registry), out_dir=out, now=NOW, workers=workers,
                                   formats=("csv",)))  # fmt: skip


def _killed(mode: str, records: Path, registry: Path, out: Path, workers: int) -> None:
    """``signer check`` in a process of its own, SIGKILLed at ``mode``'s point."""
    proc = subprocess.run(
        [sys.executable, "-c", LAUNCH, mode, str(records), "--registry", str(registry), "--out", str(out),
         "--workers", str(workers), "--at", AT, "--formats", "csv"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _rows_of_last_run(out: Path) -> int:
    conn = sqlite3.connect(out / "state" / "results.sqlite")
    try:
        return conn.execute("SELECT count(*) FROM result WHERE run = (SELECT max(id) FROM run)").fetchone()[0]
    finally:
        conn.close()


def _same_outputs(a: dict[str, Any], out_a: Path, b: dict[str, Any], out_b: Path) -> None:
    for key in ("totals", "reasons", "incremental", "input", "files"):
        assert a[key] == b[key], key
    for name in OUTPUTS:
        assert (out_a / name).read_bytes() == (out_b / name).read_bytes(), name


@pytest.mark.parametrize(("workers", "mode"), [(1, "flush"), (2, "merge")])
def test_a_run_killed_after_storing_verdicts_hides_no_record_from_the_next(
    data: dict[str, Path], tmp_path: Path, workers: int, mode: str
) -> None:
    first = tmp_path / "first"
    assert _check(data["records"], data["registry"], first, workers)["workers"] == workers
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    shutil.copytree(first, plain)
    shutil.copytree(first, killed)

    expected = _check(data["later"], data["registry"], plain, workers)  # the later run, not killed
    new = (plain / "verified-new.jsonl").read_text("utf-8").splitlines()
    assert expected["workers"] == workers and len(new) == expected["incremental"]["newly_verified"] > 20

    _killed(mode, data["later"], data["registry"], killed, workers)
    assert _rows_of_last_run(killed) > 0  # killed after it stored verdicts
    again = _check(data["later"], data["registry"], killed, workers)
    _same_outputs(expected, plain, again, killed)

    # and the run after that, on the same export, has nothing new: the re-run was delivered
    after = _check(data["later"], data["registry"], killed, workers)
    assert after["incremental"]["newly_verified"] == 0
    assert (killed / "verified-new.jsonl").read_bytes() == b""


def test_a_run_killed_while_joining_the_parts_leaves_no_temp_file_behind(data: dict[str, Path], tmp_path: Path) -> None:
    """Killed while verified.jsonl is joined under its temp name (review10-clean F2): the next run removes what
    the dead process left (the half-joined file and the reconciliation folder, both naming citizens), and gives
    the outputs of a run never killed."""
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    expected = _check(data["records"], data["registry"], plain, 2)
    _killed("concat", data["records"], data["registry"], killed, 2)
    left = sorted(p.name.split(".tmp-")[0] for p in killed.glob("*.tmp-*"))
    assert left == ["reconciliation", "verified.jsonl"]
    other = killed / f"verified.jsonl.tmp-{os.getppid()}"  # a live process's (a run next to this one): kept
    other.write_bytes(b"")
    again = _check(data["records"], data["registry"], killed, 2)
    _same_outputs(expected, plain, again, killed)
    assert [p.name for p in killed.glob("*.tmp-*")] == [other.name]


@pytest.mark.parametrize(("workers", "mode"), [(1, "flush"), (2, "merge")])
def test_a_killed_first_run_leaves_the_next_one_a_first_run(
    data: dict[str, Path], tmp_path: Path, workers: int, mode: str
) -> None:
    """Only a killed run's verdicts in the store: nothing was delivered, so the next run is a first run (every
    verified line new, verified-new.jsonl a link of verified.jsonl), the same as a run on an empty store."""
    plain, killed = tmp_path / "plain", tmp_path / "killed"
    expected = _check(data["records"], data["registry"], plain, workers)
    _killed(mode, data["records"], data["registry"], killed, workers)
    assert _rows_of_last_run(killed) > 0
    again = _check(data["records"], data["registry"], killed, workers)
    _same_outputs(expected, plain, again, killed)
    verified, new = killed / "verified.jsonl", killed / "verified-new.jsonl"
    assert os.stat(verified).st_ino == os.stat(new).st_ino
    assert len(new.read_text("utf-8").splitlines()) == again["incremental"]["newly_verified"] > 300


def test_a_store_of_the_code_before_delivery_marks_counts_its_runs_as_delivered(
    data: dict[str, Path], tmp_path: Path
) -> None:
    """A results store written before runs were marked delivered (its run table: id and at only): its runs
    delivered their outputs (it could not tell otherwise), so their verdicts are earlier runs' as before."""
    first = tmp_path / "first"
    _check(data["records"], data["registry"], first, 1)
    plain, old = tmp_path / "plain", tmp_path / "old"
    shutil.copytree(first, plain)
    shutil.copytree(first, old)
    store = old / "state" / "results.sqlite"
    conn = sqlite3.connect(store, isolation_level=None)
    try:  # the old code's run table
        conn.executescript(
            "BEGIN; CREATE TABLE old_run(id INTEGER PRIMARY KEY, at TEXT); "
            "INSERT INTO old_run SELECT id, at FROM run; DROP TABLE run; ALTER TABLE old_run RENAME TO run; COMMIT;"
        )
        rows = conn.execute("SELECT count(*) FROM result").fetchone()[0]
    finally:
        conn.close()
    assert rows > 300
    expected = _check(data["later"], data["registry"], plain, 1)
    got = _check(data["later"], data["registry"], old, 1)
    _same_outputs(expected, plain, got, old)
    assert got["incremental"]["unchanged_reused"] > 300
    conn = sqlite3.connect(store)
    try:
        runs = conn.execute("SELECT id, delivered FROM run ORDER BY id").fetchall()
    finally:
        conn.close()
    assert len(runs) == 2 and all(delivered for _, delivered in runs)
    assert json.loads((old / "summary.json").read_text("utf-8"))["incremental"] == expected["incremental"]


def test_a_new_run_deletes_the_verdicts_of_runs_never_delivered_only(tmp_path: Path) -> None:
    from signer.cleaning.store import ResultStore, mark_delivered

    path = tmp_path / "results.sqlite"
    delivered = ResultStore(path, context="c")
    delivered.put("A", "fp-a", (), (), "", 1)
    delivered.put("B", "fp-b", (), (), "", 2)
    delivered.close()
    mark_delivered(path, delivered.run)
    killed = ResultStore(path, context="c")
    killed.put("B", "fp-b2", (), (), "", 2)  # replaces a delivered run's verdict
    killed.put("C", "fp-c", (), (), "", 3)
    killed.close()  # never marked: killed before its outputs were in place
    assert set(ResultStore(path, context="c", run=killed.run).get(["A", "B", "C"])) == {"A", "B", "C"}

    later = ResultStore(path, context="c")
    got = later.get(["A", "B", "C"])
    later.close()
    assert set(got) == {"A"} and got["A"].run == delivered.run and not later.empty
    conn = sqlite3.connect(path)
    try:
        assert [r[0] for r in conn.execute("SELECT id FROM run ORDER BY id")] == [delivered.run, later.run]
    finally:
        conn.close()
    assert later.run > killed.run

    # only undelivered runs' verdicts: the store is empty to the next run (a first run)
    path2 = tmp_path / "first.sqlite"
    first = ResultStore(path2, context="c")
    first.put("A", "fp-a", (), (), "", 1)
    first.close()
    assert ResultStore(path2, context="c").empty
