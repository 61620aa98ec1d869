"""The issuance ledger's revoked UVCIs reach the trust list (keys export-trust-list
--revoked-uvcis) and the verifier reports them revoked."""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import pytest

from keys.cli import main as keys_main
from keys.secrets import CSCA_PASSPHRASE_ENV, KEY_PASSPHRASE_ENV
from signer.uvci import new_uvci
from verifier.trust import load_trust

T0 = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)


def at(days: float) -> str:
    return (T0 + dt.timedelta(days=days)).isoformat()


@pytest.fixture()
def pki_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CSCA_PASSPHRASE_ENV, "csca-" + secrets.token_hex(10))
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "dsc-" + secrets.token_hex(10))


def keys(pki: Path, *args: str) -> int:
    return keys_main([args[0], "--pki", str(pki), *args[1:]])


def test_revoked_uvcis_file_reaches_the_trust_list(pki_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki = tmp_path / "pki"
    assert keys(pki, "init-csca", "--now", at(0)) == 0
    assert keys(pki, "issue-dsc", "--name", "Centre DSC", "--now", at(1)) == 0
    assert keys(pki, "init-tl-signer", "--now", at(1)) == 0
    revoked = [new_uvci(made_at=1780315200) for _ in range(3)]
    listing = tmp_path / "revoked.txt"
    listing.write_text("# from the ledger\n" + "\n".join(revoked) + "\n\n")
    out = tmp_path / "trustlist.cbor"
    assert keys(pki, "export-trust-list", "--out", str(out), "--revoked-uvcis", str(listing), "--now", at(2)) == 0
    assert "3 revoked UVCIs" in capsys.readouterr().out
    trust = load_trust([out, pki / "csca.pem"], now=T0 + dt.timedelta(days=3), state_dir=tmp_path / "state")
    assert all(trust.uvci_revoked(u) for u in revoked)
    assert not trust.uvci_revoked(new_uvci(made_at=1780315200))
    listing.write_text("URN:UVCI:01:VN:NOT-A-UVCI\n")
    assert keys(pki, "export-trust-list", "--revoked-uvcis", str(listing), "--now", at(2)) == 2
    assert "not a UVCI" in capsys.readouterr().err
