"""Two processes re-signing one reservation at once (with Celery: a chunk of a
killed coordinator still being signed while the next run's chunk resumes the
same records): the process whose 'signed' change is not the row's last may
not mark it written, or the ledger would hold one payload and the folder the
other's files. Its run stops with a conflict; the next run re-signs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import signer.batch as batch_module
from keys.secrets import KEY_PASSPHRASE_ENV
from signer.cli import main
from signer.ledger import Ledger
from signer.ledger.store import Change, FileEntry, LedgerConflict
from tests.fixtures.pki import TestPki as Pki
from tests.signer.conftest import TEST_PASSPHRASE, write_key_files

from .helpers import AT, CENTRE, check_consistent, many_records, write_records


def test_written_needs_the_payload_this_process_signed(
    ledger_target: str, test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    folder = tmp_path / "keys"
    folder.mkdir()
    key, cert = write_key_files(test_pki.dsc_ec, folder)
    records = many_records(6)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger_target, "--centre", CENTRE, "--at", AT,
            "--progress", "none", "--key", str(key), "--cert", str(cert)]  # fmt: skip
    original = batch_module.BatchOutput.write_durably
    victim: list[str] = []

    def other_process_resigns(self: Any, files: Any) -> None:
        """Between this run's 'signed' and its files: another process re-signs R00002."""
        other = Ledger.open(ledger_target, actor="worker 99@elsewhere", create=False)
        try:
            (cert_row,) = [c for c in other.by_record("R00002") if c.state == "signed"]
            victim.append(cert_row.uvci)
            entries = tuple(FileEntry(f.name, "0" * 64, f.size) for f in cert_row.files)
            other.apply(changes=[Change(cert_row.uvci, "signed", {"payload_hash": "f" * 64, "files": entries})])
        finally:
            other.close()
        original(self, files)

    monkeypatch.setattr(batch_module.BatchOutput, "write_durably", other_process_resigns)
    assert main(args) == 2
    assert "could not move to 'written'" in capsys.readouterr().err
    ledger = Ledger.open(ledger_target, actor="t", create=False)
    try:
        row = ledger.by_uvci(victim[0])
        assert row is not None and row.state == "signed" and row.payload_hash == "f" * 64  # never written
        assert {c.state for c in ledger.in_states(("written",))} == set()  # the whole batch rolled back
    finally:
        ledger.close()
    with pytest.raises(LedgerConflict):  # the guard itself
        ledger = Ledger.open(ledger_target, actor="t", create=False)
        try:
            ledger.apply(changes=[Change(victim[0], "written", expect_payload="0" * 64)])
        finally:
            ledger.close()

    monkeypatch.setattr(batch_module.BatchOutput, "write_durably", original)
    assert main(args) == 0  # the files on disk are not the ledger's: signed again with the same UVCIs
    assert "6 issued (6 resumed from an interrupted run)" in capsys.readouterr().out
    current = check_consistent(ledger_target, out, [r.record_id for r in records])
    assert current["R00002"].uvci == victim[0]
