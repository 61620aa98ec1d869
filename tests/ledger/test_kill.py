"""Kill -9 a real `signer batch --jobs 2` at 20 random moments, run the same
command again after each kill, and check that every record is issued exactly
once (issue 10, "Crash-safe").

Each kill is a SIGKILL of the whole process group (a pulled plug, as far as
the processes can tell), of the run's main process alone (its workers end by
themselves), or of one signing worker (the run stops with an error); one kill
in four at a random time in the first second (start-up, admission, the
first batches; or once 128 more files appeared, if sooner), the others
once a random number of files (1 to 32) more appeared in the folder or its
.partial/ (the middle of the work). After every kill the ledger must already
be consistent with the folder: each current (written) certificate's files
are in place with the ledger's SHA-256, and every certificate file in the
folder is one the ledger knows (written, or signed and about to be). After
the last, uninterrupted run: each record exactly once, no duplicate UVCI, no
pending reservation, no temporary, orphan or truncated file, the manifest
exactly the ledger's, the audit chain whole.

Batches of 8 records (instead of 256) so that 1,500 records make ~190 batches
and the kills land in every step: start-up, admission, signing, the ledger
transactions, the file writes, the manifest (with 500, the faster QR code made
the whole batch end within a few kills, so that most later "kills" found it done).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

from .helpers import AT, CENTRE, RUN_FILES, check_consistent, many_records, sha256, write_records

RECORDS = 1500
KILLS = 20
BATCH = 8
#: Runs the CLI with a smaller batch size (signer.run.BATCH_SIZE is read at run time).
LAUNCH = (
    "import faulthandler, signal, sys, signer.run; signer.run.BATCH_SIZE = int(sys.argv[1]); "
    "faulthandler.register(signal.SIGUSR1, all_threads=True); "  # the stacks, should a run hang
    "from signer.cli import main; sys.exit(main(sys.argv[2:]))"
)


def session_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # zombies of the group still count for killpg(0); a group of zombies is gone for us
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def files_in(out: Path) -> int:
    """Entries of the folder and of its .partial/ (moves as the run writes)."""
    count = 0
    for folder in (out, out / ".partial"):
        with contextlib.suppress(OSError):
            count += len(os.listdir(folder))
    return count


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found


def check_after_kill(ledger_target: str, out: Path) -> None:
    """The invariant that holds at every moment: the ledger never claims a
    file that is not in place, and no certificate file is unknown to it."""
    if not ledger_target.startswith("postgresql:") and not Path(ledger_target).exists():
        return  # killed before the ledger was created
    ledger = Ledger.open(ledger_target, actor="check", create=False)
    try:
        folder = str(out.resolve())
        written = list(ledger.in_states(("written",), out_dir=folder))
        signed = list(ledger.in_states(("signed",), out_dir=folder))
    finally:
        ledger.close()
    if not out.exists():  # killed before the folder was made
        assert written == signed == []
        return
    known: dict[str, set[str]] = {}
    for cert in written:
        for entry in cert.files:
            path = out / entry.name
            assert path.is_file() and sha256(path) == entry.sha256, f"{entry.name} of a written certificate"
    for cert in [*written, *signed]:
        for entry in cert.files:
            known.setdefault(entry.name, set()).add(entry.sha256)
    manifest = out / "manifest.jsonl"
    if manifest.exists():  # never half made: whole lines of current certificates, none twice
        data = manifest.read_bytes()
        assert data == b"" or data.endswith(b"\n"), "manifest.jsonl ends with half a line"
        uvcis = [json.loads(line)["uvci"] for line in data.decode().splitlines()]
        assert len(uvcis) == len(set(uvcis)) and set(uvcis) <= {c.uvci for c in written}
    for path in out.iterdir():
        if path.name.startswith(".") or path.name in RUN_FILES:
            continue  # .partial/ is emptied by the next run
        assert sha256(path) in known.get(path.name, set()), f"{path.name}: a file no certificate of the ledger has"


@pytest.mark.slow
@pytest.mark.parametrize(("dialect", "kills"), [("sqlite", KILLS), ("postgresql", 8)])
def test_kills_then_exactly_once(
    test_pki: Pki, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, dialect: str, kills: int
) -> None:
    """20 kills with a SQLite ledger; 8 with PostgreSQL (same code above the
    database: what differs is the database's own atomicity)."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    records = many_records(RECORDS)
    source = write_records(tmp_path / "in.jsonl", records)
    folder = tmp_path / "keys"
    folder.mkdir()
    key, cert = write_key_files(test_pki.dsc_ec, folder)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger" / "ledger.sqlite")
    env = {k: v for k, v in os.environ.items() if k != LEDGER_KEY_ENV}
    env[KEY_PASSPHRASE_ENV] = TEST_PASSPHRASE
    if dialect == "postgresql":
        ledger = request.getfixturevalue("new_pg_database")
        env[LEDGER_KEY_ENV] = secrets.token_hex(32)
        monkeypatch.setenv(LEDGER_KEY_ENV, env[LEDGER_KEY_ENV])  # for the checks in this process
    command = [
        sys.executable, "-c", LAUNCH, str(BATCH), "batch", str(source), "--out", str(out),
        "--ledger", ledger, "--centre", CENTRE, "--at", AT, "--jobs", "2", "--progress", "none",
        "--key", str(key), "--cert", str(cert),
    ]  # fmt: skip
    how_killed = []
    groups = []
    try:
        for i in range(kills):
            proc = subprocess.Popen(
                command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
            )
            groups.append(proc.pid)
            target = ("group", "main", "worker")[i % 3]
            if i % 4 == 0:  # a moment in start-up, admission or the first batches
                # (or sooner, once 128 more files appeared, 64 records: on a machine
                # that signs the rest within that second, the later kills must still
                # find work to stop)
                end, grow = time.monotonic() + rng.uniform(0.05, 1.0), files_in(out) + 16 * BATCH
            else:  # a moment in the middle of the work: once k more files appeared
                end, grow = time.monotonic() + 30, files_in(out) + rng.randint(1, 4 * BATCH)
            while time.monotonic() < end and proc.poll() is None:
                if files_in(out) >= grow:
                    break
                time.sleep(0.005)
            if proc.poll() is not None:
                how_killed.append(f"finished first (exit {proc.returncode})")
            elif target == "group":
                os.killpg(proc.pid, signal.SIGKILL)
                how_killed.append("group")
            elif target == "main":
                proc.kill()
                how_killed.append("main")
            else:
                workers = children(proc.pid)
                victim = rng.choice(workers) if workers else proc.pid
                try:
                    os.kill(victim, signal.SIGKILL)
                    how_killed.append("worker" if workers else "main")
                except ProcessLookupError:  # that worker had just ended
                    proc.kill()
                    how_killed.append("main")
            try:
                _, err = proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:  # a hang: show where it waits
                os.kill(proc.pid, signal.SIGUSR1)
                time.sleep(2)
                os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
                pytest.fail(f"run {i} ({how_killed[-1]}) did not end:\n{err.decode(errors='replace')[-6000:]}")
            assert b"Traceback" not in err, err.decode(errors="replace")
            if how_killed[-1].startswith("finished first") and proc.returncode:
                how_killed[-1] += ": " + err.decode(errors="replace").strip()[-200:]
            deadline = time.monotonic() + 15  # orphaned workers notice and end
            while session_alive(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not session_alive(proc.pid), "workers left running"
            check_after_kill(ledger, out)
        # the same command, to the end
        final = subprocess.run(command, env=env, capture_output=True, timeout=300)
        assert final.returncode == 0, final.stderr.decode(errors="replace")
    finally:
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
    interrupted = sum(not h.startswith("finished first") for h in how_killed)
    print(f"seed {seed}: {how_killed}")
    assert interrupted >= kills // 2, (seed, how_killed)
    check_consistent(ledger, out, [r.record_id for r in records])
    # and nothing more to do
    again = subprocess.run(command, env=env, capture_output=True, timeout=300)
    assert again.returncode == 0
    assert f"{RECORDS} record(s): 0 issued, {RECORDS} skipped as already issued".encode() in again.stdout
