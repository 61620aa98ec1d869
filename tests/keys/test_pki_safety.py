"""PKI operations that used to fail silently.

* revoke-uvci refuses spellings of an own UVCI that would hash differently
  from the certificate's ``ci`` (the trust list holds SHA-256 of ``ci`` as
  written; the signer writes ``URN:UVCI:01:VN:<opaque>#<check>`` in upper
  case): a lower-case or prefix-less spelling was "revoked" and revoked nothing;
* the PIN of a token target never shows in its repr;
* a trust-list sequence number is never reused, even when ``--out`` fails,
  and a nextUpdate in the past is refused;
* a CRL is never dated before the previous one.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from keys import pki
from verifier.errors import ConfigError

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
UVCI = "URN:UVCI:01:VN:F99NA87XEQ4QBSYPNWVTSGT4#6"


@pytest.fixture()
def pki_dir(tmp_path: Path) -> Path:
    d = tmp_path / "pki"
    pki.init_csca(d, country="VN", name="CSCA", passphrase=b"p", now=NOW)
    return d


@pytest.mark.parametrize(
    "spelling",
    [
        UVCI.lower(),
        UVCI.removeprefix("URN:UVCI:"),
        "URN:UVCI:01/VN/F99NA87XEQ4QBSYPNWVTSGT4#6",
        UVCI.removesuffix("#6"),
        UVCI.removesuffix("#6") + "#7",  # wrong check character: no certificate carries it
    ],
)
def test_other_spellings_of_an_own_uvci_are_refused(pki_dir: Path, spelling: str) -> None:
    with pytest.raises(ConfigError, match="UVCI"):
        pki.revoke_uvci(pki_dir, spelling, now=NOW)
    assert pki.load_index(pki_dir).revoked_uvcis == ()


def test_the_issued_form_and_foreign_uvcis_are_accepted(pki_dir: Path) -> None:
    assert pki.revoke_uvci(pki_dir, UVCI, now=NOW) == UVCI
    assert pki.revoke_uvci(pki_dir, "URN:UVCI:01:NL:187/37512422923#Z", now=NOW)
    assert [u for u, _ in pki.load_index(pki_dir).revoked_uvcis] == [
        UVCI,
        "URN:UVCI:01:NL:187/37512422923#Z",
    ]


def test_token_target_repr_hides_the_pin() -> None:
    target = pki.TokenTarget(module="/x.so", token_label="HC-01", pin="4711-secret", key_label="dsc")
    assert "4711-secret" not in repr(target) and "HC-01" in repr(target)


def test_a_failed_out_never_reuses_the_sequence_number(pki_dir: Path, tmp_path: Path) -> None:
    pki.init_trust_list_signer(pki_dir, csca_passphrase=b"p", now=NOW)
    blocked = tmp_path / "out-is-a-directory"
    blocked.mkdir()
    with pytest.raises(ConfigError, match=r"seq 1 saved as .*trustlist-1\.cbor but not written to"):
        pki.export_trust_list(pki_dir, blocked, csca_passphrase=b"p", now=NOW)
    first = (pki_dir / "trustlist" / "trustlist-1.cbor").read_bytes()
    res = pki.export_trust_list(pki_dir, tmp_path / "tl.cbor", csca_passphrase=b"p", now=NOW)
    assert res.seq == 2 and pki.load_index(pki_dir).trust_list_seq == 2
    assert (pki_dir / "trustlist" / "trustlist-1.cbor").read_bytes() == first


def test_next_update_in_the_past_is_refused(pki_dir: Path) -> None:
    pki.init_trust_list_signer(pki_dir, csca_passphrase=b"p", now=NOW)
    with pytest.raises(ConfigError, match="next update days must be positive"):
        pki.export_trust_list(pki_dir, None, csca_passphrase=b"p", now=NOW, next_update_days=-5)
    assert pki.load_index(pki_dir).trust_list_seq == 0


def test_a_crl_is_never_dated_before_the_previous_one(pki_dir: Path) -> None:
    later = NOW + dt.timedelta(days=10)
    _, first = pki.issue_crl(pki_dir, csca_passphrase=b"p", now=later)
    with pytest.raises(ConfigError, match="cannot be dated earlier"):
        pki.issue_crl(pki_dir, csca_passphrase=b"p", now=later - dt.timedelta(seconds=1))
    assert pki.load_index(pki_dir).crl_number == first.number == 1
    _, second = pki.issue_crl(pki_dir, csca_passphrase=b"p", now=later)  # same time: fine
    assert second.number == 2
