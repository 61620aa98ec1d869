"""Revocation and re-issuance through the ledger: `signer revoke` (UVCI, record,
DSC), `signer ledger export-revoked` -> `keys export-trust-list
--revoked-uvcis` -> the verifier says revoked; `signer reissue`."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pytest

from keys import pki as pki_module
from keys.cli import main as keys_main
from keys.secrets import CSCA_PASSPHRASE_ENV, KEY_PASSPHRASE_ENV
from signer.cli import main
from signer.ledger import Ledger
from signer.ledger.audit import verify_ledger
from verifier.hc1 import verify_qr_text
from verifier.trust import load_trust

from .helpers import CENTRE, check_consistent, many_records, write_records

T0 = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)


def at(days: float) -> str:
    return (T0 + dt.timedelta(days=days)).isoformat()


@pytest.fixture()
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A national PKI made with `python -m keys` (CSCA, one DSC, trust-list signer, CRL)
    and the signer's key options for its DSC."""
    monkeypatch.setenv(CSCA_PASSPHRASE_ENV, "csca-" + secrets.token_hex(10))
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "dsc-" + secrets.token_hex(10))
    d = tmp_path / "pki"
    for args in (("init-csca",), ("issue-dsc", "--name", "Centre DSC"), ("init-tl-signer",), ("issue-crl",)):
        assert keys_main([args[0], "--pki", str(d), *args[1:], "--now", at(0)]) == 0
    (dsc,) = pki_module.load_index(d).dscs
    return d, ["--key", str(d / (dsc.key_file or "")), "--cert", str(d / dsc.cert)]


def run(command: str, source: Path, out: Path, ledger: str, key_args: list[str], when: str, *extra: str) -> int:
    args = [command, str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", when]
    return main([*args, "--progress", "none", *key_args, *extra])


def test_revoked_uvci_reaches_the_verifier(
    pki: tuple[Path, list[str]], ledger_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki_dir, key_args = pki
    records = many_records(4)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", ledger_target
    assert run("batch", source, out, ledger, key_args, at(1)) == 0
    current = check_consistent(ledger, out, [r.record_id for r in records])
    victim = current["R00001"]
    capsys.readouterr()
    assert main(["revoke", "--ledger", ledger, "--uvci", victim.uvci, "--reason", "issued to the wrong person"]) == 0
    assert f"revoked {victim.uvci} (record R00001" in capsys.readouterr().out
    assert main(["ledger", "manifest", "--ledger", ledger, "--out", str(out)]) == 0
    assert "3 certificate(s)" in capsys.readouterr().out
    assert victim.uvci not in (out / "manifest.jsonl").read_text()
    listing = tmp_path / "revoked.txt"
    assert main(["ledger", "export-revoked", "--ledger", ledger, "--out", str(listing)]) == 0
    assert listing.read_text() == victim.uvci + "\n"
    trust_list = tmp_path / "trustlist.cbor"
    assert keys_main(["export-trust-list", "--pki", str(pki_dir), "--out", str(trust_list),
                      "--revoked-uvcis", str(listing), "--now", at(1)]) == 0  # fmt: skip
    now = T0 + dt.timedelta(days=2)
    trust = load_trust([trust_list, pki_dir / "csca.pem"], now=now, state_dir=tmp_path / "state")
    revoked = verify_qr_text((out / "R00001.hc1.txt").read_text(), trust, now=now)
    assert not revoked.valid and "uvci_revoked" in {e.reason for e in revoked.errors}
    fine = verify_qr_text((out / "R00002.hc1.txt").read_text(), trust, now=now)
    assert fine.valid, fine.errors

    # the same input again: the revoked record is refused, not silently re-issued
    assert run("batch", source, out, ledger, key_args, at(1)) == 1
    assert "its certificate was revoked" in capsys.readouterr().out
    # ... until reissue --revoked gives it a new certificate
    assert run("reissue", source, out, ledger, key_args, at(1), "--revoked") == 0
    assert "1 issued (1 re-issued), 3 skipped" in capsys.readouterr().out
    again = check_consistent(ledger, out, [r.record_id for r in records])
    assert again["R00001"].uvci != victim.uvci and again["R00001"].generation == 1
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        assert [(c.state, c.revoked_reason) for c in led.by_record("R00001")] == [
            ("revoked", "issued to the wrong person"),
            ("written", None),
        ]
        assert verify_ledger(led) == []
    finally:
        led.close()


def test_reissue_expiring_and_revoke_a_dsc(
    pki: tuple[Path, list[str]], ledger_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, key_args = pki
    records = many_records(5)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", ledger_target
    assert run("batch", source, out, ledger, key_args, at(1), "--validity-days", "60") == 0
    first = check_consistent(ledger, out, [r.record_id for r in records])
    capsys.readouterr()
    # 20 days later, nothing expires within 30 days; 40 days later, all do
    assert run("reissue", source, out, ledger, key_args, at(21), "--expiring-within", "30d") == 0
    assert "0 issued, 5 skipped" in capsys.readouterr().out
    assert run("reissue", source, out, ledger, key_args, at(41), "--expiring-within", "30d") == 0
    assert "5 issued (5 superseding an earlier certificate, 5 re-issued)" in capsys.readouterr().out
    second = check_consistent(ledger, out, [r.record_id for r in records])
    assert all(second[k].uvci != first[k].uvci and second[k].exp > first[k].exp for k in first)
    assert run("reissue", source, out, ledger, key_args, at(41), "--expiring-within", "30d") == 0
    assert "0 issued, 5 skipped" in capsys.readouterr().out
    assert main(["reissue", str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, *key_args]) == 2

    # the DSC is compromised: every certificate it signed, current or superseded, is revoked
    kid = second["R00000"].kid
    assert main(["revoke", "--ledger", ledger, "--kid", kid or "", "--reason", "key compromise"]) == 0
    printed = capsys.readouterr().out
    assert "10 certificate(s) revoked" in printed and printed.count("revoked URN:UVCI:") == 10
    led = Ledger.open(ledger, actor="t", create=False)
    try:
        assert led.counts() == {"revoked": 10}
        assert verify_ledger(led) == []
    finally:
        led.close()
    assert main(["revoke", "--ledger", ledger, "--record-id", "R00000", "--reason", "x"]) == 2
