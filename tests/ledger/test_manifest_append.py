"""The manifest appended to (signer.batch_manifest): a run that only adds
certificates appends their lines instead of writing the manifest whole, and
the result is byte for byte the manifest made whole from the ledger; a
SIGKILL at any write of the append or at the rename never leaves a
truncated, duplicated or inconsistent ``manifest.jsonl``, and the same
command repairs it; a supersede or a revocation makes it whole again.

The kills are real: ``strace`` stops the real ``signer batch`` process at the
N-th write() to the work file (or at the rename) and sends it SIGKILL there,
so the earlier writes are on the file and the later ones never happen (a
write of an append is at most 64 KiB, so a kill between two leaves half a
line in the work file)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

import signer.batch_manifest as batch_manifest
from keys.secrets import KEY_PASSPHRASE_ENV
from signer.batch_manifest import WORK_NAME, manifest_entry_of
from signer.cli import main
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from signer.records import Record
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, stamp, write_key_files

from .helpers import AT, CENTRE, check_consistent, many_records, write_records

ROOT = Path(__file__).resolve().parents[2]
STRACE = shutil.which("strace") or "/usr/bin/strace"  # a test without its tool fails, never skips


class Batch:
    """``signer batch`` into one folder and ledger, in this process or as a real one."""

    def __init__(self, tmp: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
        monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
        self.tmp = tmp
        self.key, self.cert = write_key_files(pki.dsc_ec, tmp)
        self.out, self.ledger = tmp / "out", str(tmp / "ledger.sqlite")

    def args(self, source: Path) -> list[str]:
        return ["batch", str(source), "--out", str(self.out), "--ledger", self.ledger, "--centre", CENTRE,
                "--at", AT, "--progress", "none", "--key", str(self.key), "--cert", str(self.cert)]  # fmt: skip

    def run(self, records: list[Record], name: str = "in.jsonl") -> int:
        return main(self.args(write_records(self.tmp / name, records)))

    def killed_at(
        self, records: list[Record], syscalls: str, path: Path, when: int, name: str = "in.jsonl"
    ) -> None:
        """The real command, SIGKILLed by strace at the ``when``-th of ``syscalls`` on ``path``."""
        source = write_records(self.tmp / name, records)
        env = {k: v for k, v in os.environ.items() if k != LEDGER_KEY_ENV}
        command = [STRACE, "-f", "-qq", "-o", "/dev/null", "-P", str(path), "-e", f"trace={syscalls}",
                   "-e", f"inject={syscalls}:signal=SIGKILL:when={when}",
                   sys.executable, "-m", "signer", *self.args(source)]  # fmt: skip
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300)
        assert proc.returncode == -9 or proc.returncode == 137, (
            proc.returncode,
            proc.stderr[-2000:],
        )

    def whole(self) -> bytes:
        """The manifest made whole from the ledger: one line per written certificate, in id order."""
        ledger = Ledger.open(self.ledger, actor="check", create=False)
        try:
            certs = ledger.in_states(("written",), out_dir=str(self.out.resolve()))
            return "".join(
                json.dumps(manifest_entry_of(c), ensure_ascii=False) + "\n" for c in certs
            ).encode()
        finally:
            ledger.close()

    def manifest(self) -> bytes:
        return (self.out / "manifest.jsonl").read_bytes()


def assert_whole_lines(data: bytes) -> list[dict[str, object]]:
    """A manifest a reader may see: every line whole JSON, no UVCI twice."""
    assert data == b"" or data.endswith(b"\n")
    entries = [json.loads(line) for line in data.decode().splitlines()]
    assert len({e["uvci"] for e in entries}) == len(entries)
    return entries


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many manifest lines this process makes (the real function, counted)."""
    calls = [0]
    original = batch_manifest.manifest_entry_of

    def counting(cert: object) -> object:
        calls[0] += 1
        return original(cert)  # type: ignore[arg-type]

    monkeypatch.setattr(batch_manifest, "manifest_entry_of", counting)
    yield calls


def test_a_run_that_adds_appends_and_equals_the_whole_manifest(
    test_pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counted: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = Batch(tmp_path, test_pki, monkeypatch)
    records = many_records(40)
    assert batch.run(records[:25]) == 0
    first = batch.manifest()
    assert first == batch.whole() and counted[0] == 25
    assert batch.run(records) == 0
    assert counted[0] == 25 + 15  # only the new certificates' lines were made
    assert batch.manifest().startswith(first) and batch.manifest() == batch.whole()
    assert not (batch.out / WORK_NAME).exists()
    capsys.readouterr()
    assert batch.run(records) == 0  # nothing new: the manifest is up to date, not written
    assert "manifest:" not in capsys.readouterr().out and counted[0] == 40
    check_consistent(batch.ledger, batch.out, [r.record_id for r in records])


def test_a_changed_published_manifest_is_made_whole(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, counted: list[int]
) -> None:
    """Someone edited manifest.jsonl (same size): its SHA-256 no longer matches
    the ledger's entry, so the next run does not append to it."""
    batch = Batch(tmp_path, test_pki, monkeypatch)
    records = many_records(12)
    assert batch.run(records[:10]) == 0
    data = bytearray(batch.manifest())
    data[5:6] = b"X" if data[5:6] != b"X" else b"Y"
    (batch.out / "manifest.jsonl").write_bytes(bytes(data))
    assert batch.run(records) == 0
    assert batch.manifest() == batch.whole() and counted[0] == 10 + 12


def test_supersede_and_revoke_make_it_whole_then_appends_go_on(
    test_pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    counted: list[int],
    capsys: pytest.CaptureFixture[str],
) -> None:
    batch = Batch(tmp_path, test_pki, monkeypatch)
    records = many_records(30)
    assert batch.run(records[:20]) == 0
    changed = records[:20]
    changed[3] = stamp(replace(changed[3], full_name="Lê Văn Tám"))  # a correction: supersedes
    assert batch.run([*changed, *records[20:25]]) == 0
    entries = assert_whole_lines(batch.manifest())
    assert batch.manifest() == batch.whole() and len(entries) == 25
    counted[0] = 0
    ledger = Ledger.open(batch.ledger, actor="t", create=False)
    try:
        victim = ledger.by_record("R00007")[0].uvci
    finally:
        ledger.close()
    capsys.readouterr()
    assert (
        main(
            [
                "revoke",
                "--ledger",
                batch.ledger,
                "--uvci",
                victim,
                "--reason",
                "issued to the wrong person",
            ]
        )
        == 0
    )
    assert batch.manifest() == batch.whole()  # revoke made it whole at once
    assert (
        victim not in batch.manifest().decode() and len(assert_whole_lines(batch.manifest())) == 24
    )
    counted[0] = 0
    assert batch.run([*changed, *records[20:30]]) == 1  # R00007 refused: revoked
    assert counted[0] == 5  # appended again after the whole one
    assert batch.manifest() == batch.whole() and len(assert_whole_lines(batch.manifest())) == 29


def test_kill_at_each_write_of_the_append_then_the_same_command(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 records: the first batch's 256 lines are three writes (64 KiB, 64 KiB,
    the rest), the second batch's one. Killed before write 2 (half a line in the
    work file, no manifest yet), 3 and 4 (the first batch's lines whole, its
    ledger entry committed with the second batch), then the same command."""
    records = many_records(300)
    torn = 0
    for when in (2, 3, 4):
        (tmp_path / f"w{when}").mkdir()
        batch = Batch(tmp_path / f"w{when}", test_pki, monkeypatch)
        work = batch.out / WORK_NAME
        batch.killed_at(records, "write", work, when)
        assert not (batch.out / "manifest.jsonl").exists()  # never published half made
        left = work.read_bytes()
        assert len(left) >= 65536 * (when - 1) - 65536  # the earlier writes are in it
        torn += not left.endswith(b"\n")
        assert batch.run(records) == 0
        assert (
            batch.manifest() == batch.whole() and len(assert_whole_lines(batch.manifest())) == 300
        )
        assert not work.exists()
        check_consistent(batch.ledger, batch.out, [r.record_id for r in records])
    assert torn >= 1  # a half line was left and cut off


def test_kill_during_the_append_onto_a_published_manifest(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second run copies the published manifest to the work file and
    appends: killed in its append, and killed at its rename, the old
    manifest.jsonl stays whole and as it was; the same command completes it."""
    batch = Batch(tmp_path, test_pki, monkeypatch)
    records = many_records(330)
    assert batch.run(records[:40]) == 0
    old = batch.manifest()
    work = batch.out / WORK_NAME
    # the copy of the published manifest is write 1; the new batch's 256 lines writes 2-4
    batch.killed_at(records, "write", work, 3)
    assert batch.manifest() == old and work.exists()
    # (strace -P matches a rename by its source)
    batch.killed_at(records, "rename,renameat,renameat2", work, 1)
    assert batch.manifest() == old  # killed at the publishing rename: still the old one, whole
    left = assert_whole_lines(work.read_bytes())
    assert len(left) == 330
    assert batch.run(records) == 0
    assert batch.manifest() == batch.whole() and len(assert_whole_lines(batch.manifest())) == 330
    check_consistent(batch.ledger, batch.out, [r.record_id for r in records])


def test_a_damaged_work_file_is_not_trusted(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = Batch(tmp_path, test_pki, monkeypatch)
    records = many_records(300)
    work = batch.out / WORK_NAME
    batch.killed_at(records, "write", work, 4)
    data = bytearray(work.read_bytes())
    data[100:101] = b"#"  # inside what the ledger's entry names
    work.write_bytes(bytes(data))
    assert batch.run(records) == 0
    assert batch.manifest() == batch.whole() and len(assert_whole_lines(batch.manifest())) == 300


def test_a_short_write_then_a_full_disk_publishes_no_junk(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From a review: an append that wrote half its bytes and then failed (ENOSPC) left
    them in the work file, and the run's final publish appended the batch again after
    them: 47 lines for 40 certificates, one not JSON. Now the work file is cut back to
    what the tail names (and the publish refuses bytes the tail does not name). The
    disk-full is injected at the write call: a real full disk is not practical here."""
    import errno

    batch = Batch(tmp_path, test_pki, monkeypatch)
    records = many_records(40)
    assert batch.run(records[:25]) == 0
    real = batch_manifest._write_all
    state = {"armed": True, "calls": 0}

    def short_then_full(fd: int, data: bytes) -> None:
        state["calls"] += 1
        if state["armed"] and state["calls"] == 2:
            state["armed"] = False
            real(fd, data[: len(data) // 2])  # a short write ...
            raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full
        real(fd, data)

    monkeypatch.setattr(batch_manifest, "_write_all", short_then_full)
    batch.run(records)  # whatever its exit: the manifest readers see must be whole lines, once each
    assert not state["armed"], "the failure was not injected"
    data = batch.manifest()
    for line in data.decode().splitlines():
        json.loads(line)
    assert data == batch.whole()
    monkeypatch.setattr(batch_manifest, "_write_all", real)
    assert batch.run(records) == 0 and batch.manifest() == batch.whole()
