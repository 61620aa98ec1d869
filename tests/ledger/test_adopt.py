"""Files a killed `signer batch --jobs 2` had finished are adopted by the next
run, not signed again, only when they prove complete and exactly the
reservation's (signer.batch_adopt); anything unproven is signed again with
the reserved UVCI. The run dies (os._exit, as with kill -9) once the workers
have staged the batch's files and journal, before its process placed them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.cli import main
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

from .helpers import AT, CENTRE, check_consistent, many_records, write_records

RECORDS = 10
EXPECTED_ALL = f"{RECORDS} issued ({RECORDS} resumed from an interrupted run, {RECORDS} of them with the files"


def die(*_: Any, **__: Any) -> None:
    os._exit(9)


def _after(original: Callable[..., Any], calls: int) -> Callable[..., Any]:
    count = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        result = original(*args, **kwargs)
        count += 1
        if count >= calls:
            os._exit(9)
        return result

    return wrapper


class Killed:
    """A batch killed with its workers' files staged; what the ledger and the staging folder hold."""

    def __init__(self, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch, point: str = "before_write") -> None:
        monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
        monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
        key, cert = write_key_files(pki.dsc_ec, tmp_path)
        self.records = many_records(RECORDS)
        source = write_records(tmp_path / "in.jsonl", self.records)
        self.out, self.ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
        self.args = ["batch", str(source), "--out", str(self.out), "--ledger", self.ledger, "--centre", CENTRE,
                     "--at", AT, "--progress", "none", "--key", str(key), "--cert", str(cert), "--jobs", "2"]  # fmt: skip
        pid = os.fork()
        if pid == 0:
            try:
                import signer.batch as batch
                from signer.ledger.store import Ledger as L

                if point == "before_write":  # reserved; the workers' results back, nothing placed
                    monkeypatch.setattr(batch.LedgerRun, "_write", die)
                elif point == "mid_batch":  # a worker kills the run after staging 4 records of the batch
                    import signal

                    import signer.run as run

                    real_add = run.Stager.add

                    def add_then_kill(stager: Any, *args: Any) -> Any:
                        result = real_add(stager, *args)
                        if len(list(stager.folder.glob("*.hc1.txt"))) >= 5:
                            os.kill(os.getppid(), signal.SIGKILL)
                            os._exit(9)
                        return result

                    monkeypatch.setattr(run.Stager, "add", add_then_kill)
                    monkeypatch.setattr(run, "JOURNAL_EVERY", 2)  # lines of 4 records written, the 5th's not yet
                else:  # "after_signed": the signed transaction committed, nothing placed
                    monkeypatch.setattr(L, "apply", _after(L.apply, 2))
                    monkeypatch.setattr(batch.BatchOutput, "place_staged", die)
                main(self.args)
            finally:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) in (9, -9), "the kill point was not reached"
        led = Ledger.open(self.ledger, actor="t", create=False)
        try:
            self.pending = {c.record_id: c for c in led.in_states(("reserved", "signed"))}
        finally:
            led.close()
        assert len(self.pending) == RECORDS
        folders = [p for p in (self.out / ".partial").iterdir() if (p / ".journal").is_file()]
        assert len(folders) == 1, folders
        self.folder = folders[0]
        self.journal = self.folder / ".journal"
        self.lines = [json.loads(line) for line in self.journal.read_text().splitlines()]
        if point != "mid_batch":
            assert sorted(line["record_id"] for line in self.lines) == sorted(self.pending)

    def line(self, record_id: str) -> dict[str, Any]:
        return next(line for line in self.lines if line["record_id"] == record_id)

    def rewrite_journal(self, lines: list[dict[str, Any]]) -> None:
        self.journal.write_text("".join(json.dumps(line) + "\n" for line in lines))

    def resume(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, dict[str, Any]]:
        capsys.readouterr()
        assert main([*self.args, *extra]) == 0
        summary = capsys.readouterr().out
        current = check_consistent(self.ledger, self.out, [r.record_id for r in self.records])
        for cert in current.values():  # the reserved UVCI, whatever happened
            assert cert.uvci == self.pending[cert.record_id].uvci
        assert not (self.out / ".partial-old").exists()
        return summary, current


def adopted_ids(killed: Killed, current: dict[str, Any]) -> set[str]:
    """Records whose certificate is the one the killed run's worker made (the
    same files: signing again at the same --at time gives the same payload, but
    ECDSA signatures differ)."""
    return {
        rid for rid, cert in current.items()
        if sorted([f.name, f.sha256, f.size] for f in cert.files) == sorted(killed.line(rid)["files"])
    }  # fmt: skip


@pytest.mark.parametrize("point", ["before_write", "after_signed"])
def test_finished_files_are_adopted(
    point: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    killed = Killed(tmp_path, test_pki, monkeypatch, point)
    staged = {p.name: p.read_bytes() for p in killed.folder.iterdir() if p.name != ".journal"}
    summary, current = killed.resume(capsys)
    assert EXPECTED_ALL in summary
    assert adopted_ids(killed, current) == set(killed.pending)
    for name, data in staged.items():  # the very bytes the killed run's worker wrote
        assert (killed.out / name).read_bytes() == data
    for cert in current.values():
        line = killed.line(cert.record_id)
        assert (cert.iat, cert.exp, cert.payload_hash) == (line["iat"], line["exp"], line["payload_hash"])
    assert main(killed.args) == 0
    assert f"0 issued, {RECORDS} skipped as already issued" in capsys.readouterr().out


def _truncate_png(k: Killed) -> str:
    path = k.folder / "R00003.png"
    path.write_bytes(path.read_bytes()[:-7])
    return "R00003"


def _edit_png_same_size(k: Killed) -> str:
    path = k.folder / "R00004.png"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return "R00004"


def _missing_file(k: Killed) -> str:
    (k.folder / "R00005.hc1.txt").unlink()
    return "R00005"


def _no_journal_line(k: Killed) -> str:
    k.rewrite_journal([line for line in k.lines if line["record_id"] != "R00006"])
    return "R00006"


def _torn_journal(k: Killed) -> str:
    """The last line cut in the middle (a kill during the journal's write)."""
    data = k.journal.read_bytes()
    last = k.lines[-1]["record_id"]
    k.journal.write_bytes(data[: len(data) - 40])
    return str(last)


def _hc1_edited_hashes_updated(k: Killed) -> str:
    """The HC1 text changed and the journal's hashes made to match: the signature does not verify."""
    path = k.folder / "R00007.hc1.txt"
    text = path.read_text()
    swapped = "A" if text[40] != "A" else "B"
    data = (text[:40] + swapped + text[41:]).encode()
    path.write_bytes(data)
    line = k.line("R00007")
    line["files"] = [[n, hashlib.sha256(data).hexdigest() if n.endswith(".hc1.txt") else s, z]
                     for n, s, z in line["files"]]  # fmt: skip
    k.rewrite_journal(k.lines)
    return "R00007"


def _payload_hash_edited(k: Killed) -> str:
    k.line("R00008")["payload_hash"] = "0" * 64
    k.rewrite_journal(k.lines)
    return "R00008"


def _iat_edited(k: Killed) -> str:
    k.line("R00009")["iat"] += 1
    k.rewrite_journal(k.lines)
    return "R00009"


TAMPER: dict[str, Callable[[Killed], str]] = {
    "truncated file": _truncate_png,
    "edited file, same size": _edit_png_same_size,
    "missing file": _missing_file,
    "no journal line": _no_journal_line,
    "torn journal line": _torn_journal,
    "hc1 edited, journal hashes updated": _hc1_edited_hashes_updated,
    "payload hash edited": _payload_hash_edited,
    "iat edited": _iat_edited,
}


@pytest.mark.parametrize("kind", list(TAMPER))
def test_unproven_files_are_signed_again(
    kind: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    killed = Killed(tmp_path, test_pki, monkeypatch)
    record_id = TAMPER[kind](killed)
    summary, current = killed.resume(capsys)
    n = RECORDS - 1
    assert f"{RECORDS} issued ({RECORDS} resumed from an interrupted run, {n} of them with the files" in summary
    assert adopted_ids(killed, current) == set(killed.pending) - {record_id}


def test_a_line_for_another_record_is_refused(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two lines' UVCIs swapped (each now names the other's reservation), and a
    third line's record hash set to a fourth's: none of the three is adopted."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    a, b, c, d = (killed.line(f"R0000{i}") for i in range(4))
    a["uvci"], b["uvci"] = b["uvci"], a["uvci"]
    c["record_hash"] = d["record_hash"]
    killed.rewrite_journal(killed.lines)
    summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set(killed.pending) - {"R00000", "R00001", "R00002"}
    assert f"{RECORDS - 3} of them with the files" in summary


def test_other_settings_sign_again(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A resume with other settings (here the validity) adopts nothing."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    summary, current = killed.resume(capsys, "--validity-days", "300")
    assert f"{RECORDS} issued ({RECORDS} resumed from an interrupted run)" in summary and "of them" not in summary
    assert adopted_ids(killed, current) == set()


def test_another_kid_is_refused(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A line whose kid is not the one in the signed HC1 (this run's key) is refused."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    line = killed.line("R00002")
    line["kid"] = base64.b64encode(b"\x01" * 8).decode()
    killed.rewrite_journal(killed.lines)
    summary, current = killed.resume(capsys)
    assert f"{RECORDS - 1} of them with the files" in summary
    assert adopted_ids(killed, current) == set(killed.pending) - {"R00002"}


def test_records_signed_before_a_kill_mid_batch_are_adopted(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed while a worker was signing the batch, with 5 records staged and
    the journal lines of 4 written (JOURNAL_EVERY = 2 here): those 4 are
    adopted, the other 6 (the 5th: files but no line) signed again with
    their UVCIs."""
    killed = Killed(tmp_path, test_pki, monkeypatch, "mid_batch")
    assert len(killed.lines) == 4
    summary, current = killed.resume(capsys)
    assert f"{RECORDS} issued ({RECORDS} resumed from an interrupted run, 4 of them with the files" in summary
    assert adopted_ids_of_lines(killed, current) == {line["record_id"] for line in killed.lines}


def adopted_ids_of_lines(killed: Killed, current: dict[str, Any]) -> set[str]:
    staged = {line["record_id"]: sorted(line["files"]) for line in killed.lines}
    return {
        rid for rid, cert in current.items()
        if rid in staged and sorted([f.name, f.sha256, f.size] for f in cert.files) == staged[rid]
    }  # fmt: skip


def test_journal_line_is_the_json_of_its_fields() -> None:
    """The hand-formatted line parses (json) to exactly the fields json.dumps would write."""
    from signer.batch_adopt import journal_bytes
    from signer.issue import Issued
    from signer.run import Outputs

    for clamped in (True, False):
        issued = Issued(record_id="R-1.a_b", hc1="", uvci="URN:UVCI:01:VN:ABC/DEF#G", kid=b"\x01\xfe\xff",
                        iat=1790000000, exp=1821536000, exp_clamped=clamped, dcc={})  # fmt: skip
        digests = {"R-1.a_b.hc1.txt": "cd" * 32, "R-1.a_b.png": "ef" * 32}
        staged = {"R-1.a_b.hc1.txt": ("/x/R-1.a_b.hc1.txt", 512), "R-1.a_b.png": ("/x/R-1.a_b.png", 1834)}
        result = Outputs(issued, {}, "ab" * 32, digests, staged)
        expected = {
            "tag": "t" * 64, "uvci": issued.uvci, "record_id": issued.record_id, "record_hash": "h" * 64,
            "kid": base64.b64encode(issued.kid).decode(), "iat": issued.iat, "exp": issued.exp,
            "exp_clamped": clamped, "payload_hash": "ab" * 32,
            "files": [["R-1.a_b.hc1.txt", "cd" * 32, 512], ["R-1.a_b.png", "ef" * 32, 1834]],
        }  # fmt: skip
        data = journal_bytes("t" * 64, issued, result, "h" * 64)
        assert data.endswith(b"\n") and data.count(b"\n") == 1
        assert json.loads(data) == expected
        assert data == (json.dumps(expected, separators=(",", ":")) + "\n").encode()
