"""Files a killed `signer batch --jobs 2` had finished are adopted by the next
run, not signed again, only when they prove complete and exactly the
reservation's (signer.batch_adopt); anything unproven is signed again with
the reserved UVCI. The run dies (os._exit, as with kill -9) once the workers
have staged the batch's files and journal, before its process placed them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.batch_adopt import journal_key, seal
from signer.cli import DEFAULT_ISSUER, main
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV, LedgerKey, load_secret
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

from .helpers import AT, CENTRE, after, check_consistent, die, many_records, write_records

RECORDS = 10
EXPECTED_ALL = f"{RECORDS} issued ({RECORDS} resumed from an interrupted run, {RECORDS} of them with the files"


class Killed:
    """A batch killed with its workers' files staged; what the ledger and the staging folder hold."""

    def __init__(
        self, tmp_path: Path, pki: Pki, monkeypatch: pytest.MonkeyPatch, point: str = "before_write", *extra: str
    ) -> None:
        monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
        monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
        key, cert = write_key_files(pki.dsc_ec, tmp_path)
        self.tmp_path, self.key_path, self.cert_path = tmp_path, key, cert
        self.records = many_records(RECORDS)
        source = write_records(tmp_path / "in.jsonl", self.records)
        self.out, self.ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
        self.args = ["batch", str(source), "--out", str(self.out), "--ledger", self.ledger, "--centre", CENTRE,
                     "--at", AT, "--progress", "none", "--key", str(key), "--cert", str(cert), "--jobs", "2", *extra]  # fmt: skip
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
                        folder, queued = stager.folder, len(stager._group)
                        # 4 records written, the 5th signed but its group not written yet
                        if folder is not None and len(list(folder.glob("*.hc1.txt"))) >= 4 and queued == 1:
                            os.kill(os.getppid(), signal.SIGKILL)
                            os._exit(9)
                        return result

                    monkeypatch.setattr(run.Stager, "add", add_then_kill)
                    monkeypatch.setattr(run, "JOURNAL_EVERY", 2)  # files and lines of 4 records written, the 5th's not yet
                else:  # "after_signed": the signed transaction committed, nothing placed
                    monkeypatch.setattr(L, "apply", after(L.apply, 2))
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

    def journal_key(self, tag: str) -> bytes:
        """The run's journal HMAC key, from the ledger's key file (as the workers had it)."""
        secret = load_secret(sqlite_path=Path(self.ledger), creating=False)
        return journal_key(LedgerKey(secret).adopt, tag)

    def put_file(self, record_id: str, suffix: str, data: bytes) -> None:
        """Write ``data`` as the record's staged ``suffix`` file, and its SHA-256 and size
        into the record's journal line (call :meth:`rewrite_journal` to write it)."""
        (self.folder / f"{record_id}{suffix}").write_bytes(data)
        line = self.line(record_id)
        line["files"] = [[n, hashlib.sha256(data).hexdigest(), len(data)] if n.endswith(suffix) else [n, s, z]
                         for n, s, z in line["files"]]  # fmt: skip

    def rewrite_journal(self, lines: list[dict[str, Any]], *, unsealed: Iterable[str] = ()) -> None:
        """The lines written again, sealed with the run's key (an edit made by one who holds it):
        what is tested is then the check behind the HMAC; the lines of the records ``unsealed``
        keep the MAC they had (an edit made without the key)."""
        out = b""
        for line in lines:
            fields = {k: v for k, v in line.items() if k != "mac"}
            body = json.dumps(fields, separators=(",", ":"))[:-1].encode()
            if line["record_id"] in unsealed:
                out += body + f',"mac":"{line["mac"]}"}}\n'.encode()
            else:
                out += seal(self.journal_key(line["tag"]), body)
        self.journal.write_bytes(out)

    def resume(self, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[str, dict[str, Any]]:
        capsys.readouterr()
        assert main([*self.args, *extra]) == 0
        summary = capsys.readouterr().out
        current = check_consistent(self.ledger, self.out, [r.record_id for r in self.records])
        for cert in current.values():  # the reserved UVCI, whatever happened
            assert cert.uvci == self.pending[cert.record_id].uvci
        assert not (self.out / ".partial-old").exists()
        return summary, current

    def resume_adopting(self, capsys: pytest.CaptureFixture[str]) -> set[str]:
        """:attr:`lines` written again (sealed), the run resumed: the records whose files it adopted."""
        self.rewrite_journal(self.lines)
        _summary, current = self.resume(capsys)
        return adopted_ids(self, current)


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
    """Killed while a worker was signing the batch, with the files and
    journal lines of 4 records written and a 5th signed (JOURNAL_EVERY = 2
    here: its group not written yet): those 4 are adopted, the other 6
    signed again with their UVCIs."""
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
        key = b"k" * 32
        data = journal_bytes("t" * 64, issued, result, "h" * 64, key)
        assert data.endswith(b"\n") and data.count(b"\n") == 1
        body = json.dumps(expected, separators=(",", ":"))[:-1].encode()
        mac = hmac.digest(key, body, "sha256").hex()
        assert json.loads(data) == {**expected, "mac": mac}
        assert data == body + f',"mac":"{mac}"}}\n'.encode()


# -- review of the adoption: the checks behind the tag and the HMAC ------------------------


def _summary_adopted(summary: str) -> int:
    if "of them with the files" not in summary:
        return 0
    return int(summary.split("interrupted run, ")[1].split(" of them")[0])


def test_forged_file_with_an_unsealed_line_is_refused(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PNG replaced and its line's hash and size updated, without the run's key
    (the HMAC no longer verifies): signed again; the other lines are adopted."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    forged = b"\x89PNG\r\n\x1a\nforged"
    (killed.folder / "R00003.png").write_bytes(forged)
    line = killed.line("R00003")
    line["files"] = [[n, hashlib.sha256(forged).hexdigest(), len(forged)] if n.endswith(".png") else [n, s, z]
                     for n, s, z in line["files"]]  # fmt: skip
    killed.rewrite_journal(killed.lines, unsealed={"R00003"})
    _summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set(killed.pending) - {"R00003"}
    assert (killed.out / "R00003.png").read_bytes() != forged


def test_exp_clamped_comes_from_the_issuer(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sealed line that says exp_clamped (the DSC outlives the 365 days: it is not):
    adopted with exp_clamped false, no 'expire with the DSC' warning."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    killed.line("R00001")["exp_clamped"] = True
    killed.rewrite_journal(killed.lines)
    _summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set(killed.pending)
    assert not any(c.exp_clamped for c in current.values())
    assert "expire with the DSC" not in capsys.readouterr().err


def test_hostile_journal_lines_do_not_stop_the_run(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deeply nested JSON (sealed and unsealed), an over-long line, binary junk: skipped;
    the good lines are adopted. A journal above the size cap is not read at all."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    key = killed.journal_key(killed.lines[0]["tag"])
    junk = (b"[" * 200_000 + b"\n" + seal(key, b"[" * 3000) + seal(key, b"{" + b'"a":[' * 600)
            + b"\xff\xfe\x00" * 3000 + b"\n" + b'{"tag":"' + b"x" * 10_000 + b'"}\n')  # fmt: skip
    killed.journal.write_bytes(junk + killed.journal.read_bytes())
    _summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set(killed.pending)


def test_a_journal_above_the_size_cap_is_not_read(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from signer.batch_adopt import MAX_JOURNAL

    killed = Killed(tmp_path, test_pki, monkeypatch)
    data = killed.journal.read_bytes()
    killed.journal.write_bytes(b"\n" * (MAX_JOURNAL + 1 - len(data)) + data)
    _summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set()


def _symlinked_file(k: Killed) -> str:
    """The PNG moved out of the folder, a symlink to it in its place (same bytes)."""
    path = k.folder / "R00003.png"
    outside = k.tmp_path / "outside.png"
    os.rename(path, outside)
    path.symlink_to(outside)
    return "R00003"


def _fifo_file(k: Killed) -> str:
    """A FIFO in place of a file: opening it must not block the run."""
    path = k.folder / "R00004.png"
    path.unlink()
    os.mkfifo(path)
    return "R00004"


@pytest.mark.parametrize("make", [_symlinked_file, _fifo_file], ids=["symlink", "fifo"])
def test_special_files_are_not_adopted(
    make: Callable[[Killed], str],
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    killed = Killed(tmp_path, test_pki, monkeypatch)
    record_id = make(killed)
    _summary, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set(killed.pending) - {record_id}
    assert not (killed.out / f"{record_id}.png").is_symlink()


def test_a_symlinked_staging_folder_or_journal_is_not_read(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    killed = Killed(tmp_path, test_pki, monkeypatch)
    moved = tmp_path / "elsewhere"
    os.rename(killed.folder, moved)
    killed.folder.symlink_to(moved)
    _, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set()
    (tmp_path / "b").mkdir()
    killed2 = Killed(tmp_path / "b", test_pki, monkeypatch)
    outside = tmp_path / "journal-elsewhere"
    os.rename(killed2.journal, outside)
    killed2.journal.symlink_to(outside)
    _summary, current = killed2.resume(capsys)
    assert adopted_ids(killed2, current) == set()


def test_another_records_hc1_under_this_records_names_is_refused(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """R00001's valid HC1 (signed by this key, same kid, iat, exp) copied over R00000's,
    the line's hash, size and payload hash made to match and sealed: the payload's UVCI
    is not the reservation's."""
    killed = Killed(tmp_path, test_pki, monkeypatch)
    data = (killed.folder / "R00001.hc1.txt").read_bytes()
    line = killed.line("R00000")
    line["payload_hash"] = killed.line("R00001")["payload_hash"]
    killed.put_file("R00000", ".hc1.txt", data)
    assert killed.resume_adopting(capsys) == set(killed.pending) - {"R00000"}


def test_an_hc1_signed_by_another_key_with_this_kid_is_refused(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same payload and protected header (this run's kid), signed by another EC key:
    it decodes, kid, payload hash, iat, exp and UVCI all match; only the signature check refuses it."""
    import datetime as dt

    from keys.certs import new_private_key
    from keys.software import SoftwareKey
    from signer.issue import Hc1Issuer

    killed = Killed(tmp_path, test_pki, monkeypatch)
    impostor = SoftwareKey(private_key=new_private_key("ec-p256"), certificate=test_pki.dsc_ec.certificate)
    other = Hc1Issuer(impostor, issuer_name=DEFAULT_ISSUER)  # this run's DSC, so its kid: another key
    record = next(r for r in killed.records if r.record_id == "R00005")
    line = killed.line("R00005")
    now = dt.datetime.fromtimestamp(line["iat"], dt.UTC)
    (issued,) = other.issue_many([record], now=now, uvcis=[line["uvci"]])
    assert not isinstance(issued, Exception) and issued.exp == line["exp"]
    data = issued.hc1.encode()
    killed.put_file("R00005", ".hc1.txt", data)
    assert killed.resume_adopting(capsys) == set(killed.pending) - {"R00005"}


def test_a_stale_line_for_a_signed_reservation_is_refused(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed after the ledger marked the certificates signed: a line (sealed) whose PNG is
    not the one the ledger holds (another record's PNG, hash and size updated) is refused."""
    killed = Killed(tmp_path, test_pki, monkeypatch, "after_signed")
    assert {c.state for c in killed.pending.values()} == {"signed"}
    data = (killed.folder / "R00007.png").read_bytes()
    killed.put_file("R00006", ".png", data)
    assert killed.resume_adopting(capsys) == set(killed.pending) - {"R00006"}
    assert (killed.out / "R00006.png").read_bytes() != data


def test_a_renewed_dsc_at_the_same_path_adopts_nothing(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The DSC renewed on the same key and written at the same --cert path between the
    kill and the resume: every certificate signed again, with the new DSC's kid."""
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from keys.certs import make_dsc
    from signer.issue import kid_for_certificate
    from tests.fixtures.pki import NOW

    killed = Killed(tmp_path, test_pki, monkeypatch)
    renewed = make_dsc(test_pki.csca, test_pki.csca_key, test_pki.dsc_ec.private_key.public_key(),
                       name="Test DSC EC", now=NOW - dt.timedelta(days=5))  # fmt: skip
    killed.cert_path.write_bytes(renewed.public_bytes(serialization.Encoding.PEM))
    summary, current = killed.resume(capsys)
    assert _summary_adopted(summary) == 0
    assert adopted_ids(killed, current) == set()
    new_kid = base64.b64encode(kid_for_certificate(renewed.public_bytes(serialization.Encoding.DER))).decode()
    assert {c.kid for c in current.values()} == {new_kid}


def test_the_issuer_checks_behind_the_tag(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """adopt() itself, with lines that carry the right tag and MAC: the kid must be this
    run's issuer's and exp what its validity gives (a renewed DSC, --validity-days 300)."""
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from keys.certs import make_dsc
    from keys.software import SoftwareKey
    from signer.batch_adopt import confirm, prove, scan
    from signer.issue import Hc1Issuer
    from tests.fixtures.pki import NOW

    killed = Killed(tmp_path, test_pki, monkeypatch)
    tag = killed.lines[0]["tag"]
    found = scan([killed.folder.parent], tag, killed.journal_key(tag))
    pending = killed.pending["R00002"]
    candidates = found[pending.record_id]
    names = [f"R00002{suffix}" for suffix in (".hc1.txt", ".png")]
    record_hash = pending.record_hash

    def adopted(issuer: Hc1Issuer) -> bool:
        proven = prove(candidates, record_id=pending.record_id, record_hash=record_hash, names=names, issuer=issuer)
        return confirm(proven, pending) is not None

    assert adopted(Hc1Issuer(test_pki.dsc_ec, issuer_name=DEFAULT_ISSUER))
    assert not adopted(Hc1Issuer(test_pki.dsc_ec, issuer_name=DEFAULT_ISSUER, validity_days=300))
    renewed_cert = make_dsc(test_pki.csca, test_pki.csca_key, test_pki.dsc_ec.private_key.public_key(),
                            name="Test DSC EC", now=NOW - dt.timedelta(days=5))  # fmt: skip
    renewed = SoftwareKey(private_key=test_pki.dsc_ec.private_key, certificate=renewed_cert, chain=(test_pki.csca,))
    assert not adopted(Hc1Issuer(renewed, issuer_name=DEFAULT_ISSUER))
    assert renewed_cert.public_bytes(serialization.Encoding.DER) != test_pki.dsc_ec.certificate.public_bytes(
        serialization.Encoding.DER
    )


def test_changed_columns_file_or_code_under_the_same_arguments_adopts_nothing(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The tag is made from contents, not argument strings: the --columns file
    changed at the same path, or another code stamp: nothing adopted; the same
    again (and --jobs 1: the tag does not need workers): all adopted."""
    from importlib import resources

    import signer.batch_adopt as batch_adopt

    columns = tmp_path / "columns.json"
    original = resources.files("templates").joinpath("columns.json").read_bytes()
    columns.write_bytes(original)
    killed = Killed(tmp_path, test_pki, monkeypatch, "before_write", "--columns", str(columns))
    columns.write_bytes(original + b"\n")
    summary, current = killed.resume(capsys)
    assert _summary_adopted(summary) == 0

    other = tmp_path / "other"
    other.mkdir()
    killed = Killed(other, test_pki, monkeypatch, "before_write", "--columns", str(columns))
    stamp = batch_adopt.code_stamp(False)
    monkeypatch.setitem(batch_adopt._code_stamp, False, "0" * 64)
    summary, current = killed.resume(capsys)
    assert _summary_adopted(summary) == 0

    third = tmp_path / "third"
    third.mkdir()
    monkeypatch.setitem(batch_adopt._code_stamp, False, stamp)
    killed = Killed(third, test_pki, monkeypatch, "before_write", "--columns", str(columns))
    summary, current = killed.resume(capsys, "--jobs", "1")
    assert _summary_adopted(summary) == RECORDS
    assert adopted_ids(killed, current) == set(killed.pending)


def test_the_tag_follows_file_contents_at_the_same_paths(test_pki: Pki, tmp_path: Path) -> None:
    """settings_tag of one command line: a CRL or chain file refreshed at the same path,
    or a renewed DSC, gives another tag; the same contents give the same tag."""
    import datetime as dt

    from cryptography.hazmat.primitives import serialization

    from keys.certs import make_dsc
    from keys.software import SoftwareKey
    from signer.batch_adopt import settings_tag
    from signer.cli import build_parser
    from signer.run import Options, build_signer
    from tests.fixtures.pki import NOW, empty_crl

    pem = serialization.Encoding.PEM
    crl, chain = tmp_path / "csca.crl", tmp_path / "chain.pem"
    crl.write_bytes(empty_crl(test_pki.csca, test_pki.csca_key, at=NOW).public_bytes(pem))
    chain.write_bytes(test_pki.csca.public_bytes(pem))
    ns = build_parser().parse_args(["batch", "in.jsonl", "--out", "o", "--ledger", "l", "--centre", CENTRE,
                                    "--at", AT, "--key", "k", "--cert", "c", "--crl", str(crl), "--chain", str(chain)])  # fmt: skip
    options = Options(now=NOW, allow_unverified=False, png=True, svg=False, hash_outputs=True)

    def tag(key: SoftwareKey = test_pki.dsc_ec) -> str:
        return settings_tag(build_signer(key, ns, options), ns)

    first = tag()
    assert tag() == first
    crl.write_bytes(empty_crl(test_pki.csca, test_pki.csca_key, at=NOW + dt.timedelta(hours=1)).public_bytes(pem))
    refreshed = tag()
    assert refreshed != first
    chain.write_bytes(chain.read_bytes() + b"\n")
    assert tag() != refreshed
    renewed = make_dsc(test_pki.csca, test_pki.csca_key, test_pki.dsc_ec.private_key.public_key(),
                       name="Test DSC EC", now=NOW - dt.timedelta(days=5))  # fmt: skip
    assert tag(SoftwareKey(private_key=test_pki.dsc_ec.private_key, certificate=renewed)) != tag()


def log_proofs(monkeypatch: pytest.MonkeyPatch, log: Path, what: Callable[[], object]) -> None:
    """Append ``what()`` to ``log`` each time a record's files are proven, in
    whichever process proves them (the run's own or a worker)."""
    import signer.batch_adopt as batch_adopt

    real = batch_adopt._proven_files

    def logged(*args: Any) -> Any:
        with log.open("a") as fh:
            fh.write(f"{what()}\n")
        return real(*args)

    monkeypatch.setattr(batch_adopt, "_proven_files", logged)


def test_files_are_proven_outside_the_ledgers_transaction(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The staged files are read and hashed and the HC1 signatures checked in
    step 2 (by whichever signing process gets the batch: the run's or a
    worker), never inside a transaction of the ledger (SQLite's write lock);
    step 1 hands over the ledger's row read in its transaction; all 10 adopted."""
    import contextlib

    from signer.ledger.db import Database

    killed = Killed(tmp_path, test_pki, monkeypatch)
    depth = [0]
    log = tmp_path / "proofs.log"  # appended to by the run's process and its worker
    real_transaction = Database.transaction

    @contextlib.contextmanager
    def counted(db: Database) -> Any:
        depth[0] += 1
        try:
            with real_transaction(db):
                yield
        finally:
            depth[0] -= 1

    monkeypatch.setattr(Database, "transaction", counted)
    log_proofs(monkeypatch, log, lambda: depth[0])
    _, current = killed.resume(capsys)
    assert adopted_ids(killed, current) == set(killed.pending)
    # each record's files twice: their HC1 ahead in the worker (prove_ahead), all of them when adopted
    assert log.read_text().split() == ["0"] * (2 * RECORDS)


def test_hc1s_proven_ahead_are_not_checked_again(test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """prove_ahead (a worker's first task in a run that adopts) checks each
    line's HC1 once; prove() with the same issuer then reads and hashes the
    files again but checks no HC1 again. An HC1 that fails (edited, the
    journal's hash updated) is checked in full when adopted; a file changed
    after the proof is refused by its hash; another issuer object gets the full check."""
    import signer.batch_adopt as batch_adopt
    from signer.batch_adopt import confirm, prove, prove_ahead, scan
    from signer.issue import Hc1Issuer

    killed = Killed(tmp_path, test_pki, monkeypatch)
    _hc1_edited_hashes_updated(killed)  # R00007
    tag = killed.lines[0]["tag"]
    found = scan([killed.folder.parent], tag, killed.journal_key(tag))
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=DEFAULT_ISSUER)
    assert prove_ahead([c for items in found.values() for c in items], issuer) == RECORDS - 1
    checks: list[str] = []
    real = batch_adopt._hc1_matches

    def counted(*args: Any) -> bool:
        checks.append(args[1]["record_id"])
        return real(*args)

    monkeypatch.setattr(batch_adopt, "_hc1_matches", counted)

    def adopted(record_id: str, who: Hc1Issuer = issuer) -> bool:
        pending = killed.pending[record_id]
        names = [f"{record_id}{suffix}" for suffix in (".hc1.txt", ".png")]
        proven = prove(found[record_id], record_id=record_id, record_hash=pending.record_hash, names=names, issuer=who)
        return confirm(proven, pending) is not None

    assert all(adopted(f"R0000{i}") for i in range(7)) and checks == []
    assert not adopted("R00007") and checks == ["R00007"]
    path = killed.folder / "R00001.hc1.txt"
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    assert not adopted("R00001") and checks == ["R00007"]
    assert adopted("R00002", Hc1Issuer(test_pki.dsc_ec, issuer_name=DEFAULT_ISSUER)) and checks[-1] == "R00002"


def test_a_resume_with_workers_proves_the_hc1s_ahead_in_a_worker(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --jobs 2 and a killed run's files to adopt, the worker is started
    before the first batch and checks every HC1 first; it checks none again
    when it adopts (any other check is the run's own process adopting); all adopted."""
    import signer.batch_adopt as batch_adopt

    killed = Killed(tmp_path, test_pki, monkeypatch)
    log = tmp_path / "checks.log"
    real_ahead, real_check = batch_adopt.prove_ahead, batch_adopt._hc1_matches

    def ahead(*args: Any) -> int:
        count = real_ahead(*args)
        with log.open("a") as fh:
            fh.write(f"{os.getpid()} ahead {count}\n")
        return count

    def check(*args: Any) -> bool:
        with log.open("a") as fh:
            fh.write(f"{os.getpid()} check {args[1]['record_id']}\n")
        return real_check(*args)

    monkeypatch.setattr(batch_adopt, "prove_ahead", ahead)
    monkeypatch.setattr(batch_adopt, "_hc1_matches", check)
    summary, current = killed.resume(capsys)
    assert EXPECTED_ALL in summary
    assert adopted_ids(killed, current) == set(killed.pending)
    rows = [line.split() for line in log.read_text().splitlines()]
    aheads = [row for row in rows if row[1] == "ahead"]
    assert len(aheads) == 1 and aheads[0][2] == str(RECORDS) and aheads[0][0] != str(os.getpid())
    assert sorted(row[2] for row in rows if row[1] == "check" and row[0] == aheads[0][0]) == sorted(killed.pending)


def test_adopted_both_in_the_run_and_in_its_worker(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Batches of 2 killed before any was placed: on resume the in-flight
    batches' files are proven in step 2 by whichever signing process gets the
    batch, the run's own (a held batch) and its worker both; every second
    record's HC1 spoiled: those are signed again with their reserved UVCIs,
    the rest adopted; ledger and folder agree (from review 12's scratch test).

    The worker is slow in both runs (test_run_signs.slow_workers): the killed
    run's process signs (and journals) batch 3 itself, and on resume it proves
    batch 3 itself while the worker proves batch 1, whatever the timing (a
    quick worker adopting 2 records a task could take every batch, as in the
    CI failure of test_worker_flush's syncfs test)."""
    import signer.batch as batch
    import signer.run as run

    from .test_run_signs import slow_workers

    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    key, cert = write_key_files(test_pki.dsc_ec, tmp_path)
    records = many_records(20)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "ledger.sqlite")
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", AT,
            "--progress", "none", "--key", str(key), "--cert", str(cert), "--jobs", "2"]  # fmt: skip
    monkeypatch.setattr(run, "BATCH_SIZE", 2)
    pid = os.fork()
    if pid == 0:
        try:
            slow_workers(monkeypatch, 0.3)
            monkeypatch.setattr(batch.LedgerRun, "_write", die)
            main(args)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 9

    def journals() -> dict[str, Any]:
        found = {}
        for folder in (out / ".partial").iterdir():
            if (folder / ".journal").is_file():
                for raw in (folder / ".journal").read_text().splitlines():
                    line = json.loads(raw)
                    found[line["record_id"]] = line
        return found

    # the killed run's worker may still sign its queued tasks until its watchdog
    # sees the run gone (every 0.5 s): wait until its journals stop growing
    lines, previous = journals(), None
    for _ in range(20):
        if lines == previous:
            break
        time.sleep(0.6)
        previous, lines = lines, journals()
    folders = [p for p in (out / ".partial").iterdir() if (p / ".journal").is_file()]
    assert len(lines) >= 4
    spoiled = set(sorted(lines)[::2])
    for folder in folders:
        for rid in spoiled:
            path = folder / f"{rid}.hc1.txt"
            if path.exists():
                path.write_bytes(path.read_bytes() + b"x")
    log = tmp_path / "proofs.log"
    log_proofs(monkeypatch, log, os.getpid)
    signed_here = slow_workers(monkeypatch, 0.3)
    # an adopting task weighs as much as a signing one here: weighed lighter
    # (signer.run.ADOPT_WEIGHT), the worker would be handed batch 3 as well
    monkeypatch.setattr(run, "ADOPT_WEIGHT", 1.0)
    capsys.readouterr()
    assert main(args) == 0
    assert signed_here  # the run's process signed batches itself (and proved one: the provers below)
    assert f"{len(lines) - len(spoiled)} of them with the files" in capsys.readouterr().out
    current = check_consistent(ledger, out, [r.record_id for r in records])
    adopted = {rid for rid, cert in current.items()
               if rid in lines and sorted([f.name, f.sha256, f.size] for f in cert.files) == sorted(lines[rid]["files"])}  # fmt: skip
    assert adopted == set(lines) - spoiled
    provers = log.read_text().split()
    assert str(os.getpid()) in provers and len(set(provers)) == 2  # the run's process and its worker
