"""SQLite WAL checkpoints in a background thread (signer.ledger.db,
Database.checkpoint_in_background): the committing connection no longer
checkpoints, the thread copies the WAL back after every N commits (fewer
when the commits are large), nothing is lost, and close() stops it (also in
a forked child, where the thread is not there)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

from signer.ledger.db import WAL_SAFETY_PAGES, Database, _Checkpoints, connect


def table_with_thread(path: Path, commits: int) -> tuple[Database, _Checkpoints]:
    """A ledger-like database with one table and the checkpoint thread started."""
    db = connect(str(path))
    with db.transaction():
        db.execute("CREATE TABLE t (x INTEGER PRIMARY KEY, y TEXT)")
    db.checkpoint_in_background(commits=commits)
    assert db._checkpoints is not None
    return db, db._checkpoints


def wait_done(checkpoints: _Checkpoints, count: int) -> None:
    """Until the thread has run ``count`` checkpoints (10 s at most)."""
    deadline = time.monotonic() + 10
    while checkpoints.done < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_thread_checkpoints_and_nothing_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    db, _ = table_with_thread(path, 3)
    size_before = path.stat().st_size
    # the committing connection checkpoints only as a safety net, far above what this test writes
    assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WAL_SAFETY_PAGES
    assert any(t.name == "ledger-checkpoint" for t in threading.enumerate())
    for n in range(12):
        with db.transaction():
            db.executemany("INSERT INTO t (y) VALUES (?)", [(f"{n}-{i}-" + "x" * 200,) for i in range(200)])
    deadline = time.monotonic() + 10
    while path.stat().st_size <= size_before + 100 * 4096 and time.monotonic() < deadline:
        time.sleep(0.05)
    # the pages reached the database file while the connection is open: only the thread copies them
    assert path.stat().st_size > size_before + 100 * 4096
    db.close()
    assert not any(t.name == "ledger-checkpoint" for t in threading.enumerate())
    check = sqlite3.connect(path)
    try:
        assert check.execute("SELECT COUNT(*), COUNT(DISTINCT y) FROM t").fetchone() == (2400, 2400)
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        check.close()


def test_without_the_thread_the_connection_checkpoints_as_before(tmp_path: Path) -> None:
    db = connect(str(tmp_path / "l.sqlite"))
    try:
        assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    finally:
        db.close()


def test_close_in_a_forked_child_returns(tmp_path: Path) -> None:
    db = connect(str(tmp_path / "l.sqlite"))
    db.checkpoint_in_background(commits=1)
    pid = os.fork()
    if pid == 0:  # the thread is not in the child: close must not wait for it
        try:
            db._checkpoints.stop()  # type: ignore[union-attr]
        finally:
            os._exit(0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise AssertionError("close() in the forked child waited for a thread it does not have")
    assert os.waitstatus_to_exitcode(status) == 0
    db.close()


def test_the_wal_stays_bounded_when_the_thread_is_gone(tmp_path: Path) -> None:
    """The thread ended (an error, or stopped): the committing connection's safety net still checkpoints,
    so the WAL does not grow with every commit (with wal_autocheckpoint 0 it held all ~40 MB here)."""
    path = tmp_path / "l.sqlite"
    db, checkpoints = table_with_thread(path, 1_000_000)
    checkpoints.stop()  # before any commit, as if it had ended on an error
    wal = Path(str(path) + "-wal")
    largest = 0
    for n in range(40):  # about 1 MB a commit
        with db.transaction():
            db.executemany("INSERT INTO t (y) VALUES (?)", [(f"{n}-{i}-" + "x" * 1000,) for i in range(1000)])
        largest = max(largest, wal.stat().st_size)
    try:
        page = db.conn.execute("PRAGMA page_size").fetchone()[0]
        assert largest < (WAL_SAFETY_PAGES + 1000) * (page + 24)  # a checkpoint every WAL_SAFETY_PAGES pages
        assert db.conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 40_000
    finally:
        db.close()


def test_the_interval_can_shrink_near_the_end(tmp_path: Path) -> None:
    """A batch run whose input is read checkpoints after each commit (its
    close then has little left to copy, in the closing thread)."""
    path = tmp_path / "l.sqlite"
    db, checkpoints = table_with_thread(path, 1000)
    for n in range(2):  # the first commit is checkpointed (it measures a commit's pages), the second is not
        with db.transaction():
            db.executemany("INSERT INTO t (y) VALUES (?)", [(f"{n}" + "x" * 200,) for _ in range(2000)])
        wait_done(checkpoints, 1)
    time.sleep(0.3)
    assert checkpoints.done == 1 and checkpoints._every > 2
    size_before = path.stat().st_size  # the second commit: not copied yet
    db.checkpoint_every(1)
    with db.transaction():
        db.executemany("INSERT INTO t (y) VALUES (?)", [("y" * 200,) for _ in range(10)])
    deadline = time.monotonic() + 10
    while path.stat().st_size <= size_before + 50 * 4096 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.stat().st_size > size_before + 50 * 4096
    db.close()


def test_large_commits_shorten_the_interval(tmp_path: Path) -> None:
    """Commits of ~600 pages each (a signing run's late batches): every 8
    commits the WAL would hold ~4,800 pages, past the safety net, and the
    committing connection would copy them back itself. The thread shortens its
    interval from what its checkpoints find, and the WAL stays well below the net."""
    path = tmp_path / "l.sqlite"
    db, checkpoints = table_with_thread(path, 8)
    wal = Path(str(path) + "-wal")
    page = db.conn.execute("PRAGMA page_size").fetchone()[0]
    largest = 0
    try:
        for n in range(40):
            done = checkpoints.done
            with db.transaction():
                db.executemany("INSERT INTO t (y) VALUES (?)", [(f"{n}-{i}-" + "x" * 3000,) for i in range(600)])
            largest = max(largest, wal.stat().st_size)
            if checkpoints._commits == 0:  # woken: let it finish, as a run's next batch would
                wait_done(checkpoints, done + 1)
        assert checkpoints._every <= 3
        assert largest < 3000 * (page + 24)  # the net (WAL_SAFETY_PAGES) is never reached
        assert db.conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 24_000
    finally:
        db.close()


def test_small_commits_keep_the_interval(tmp_path: Path) -> None:
    db, checkpoints = table_with_thread(tmp_path / "l.sqlite", 4)
    try:
        for n in range(12):
            done = checkpoints.done
            with db.transaction():
                db.executemany("INSERT INTO t (y) VALUES (?)", [(f"{n}-{i}",) for i in range(50)])
            if checkpoints._commits == 0:  # woken (a second wake meanwhile would be one checkpoint)
                wait_done(checkpoints, done + 1)
        assert checkpoints.done == 3  # after commits 1, 5 and 9
        assert checkpoints._every == 4  # a few pages a commit: never more often than asked
    finally:
        db.close()
