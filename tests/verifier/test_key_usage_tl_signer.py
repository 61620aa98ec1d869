"""A trust-list signing certificate never signs a DCC (docs/trust-list.md), even when
a checkpoint is given it as a plain signing certificate: key_usage, dsc_wrong_usage."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding

from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from tests.verifier.factory import make_hc1
from verifier.hc1 import verify_qr_text
from verifier.result import Reason
from verifier.trust import load_trust

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)


def _verdict(key: SoftwareKey, tmp_path: Path) -> tuple[bool, str | None, tuple[str, ...]]:
    pem = tmp_path / "signer.pem"
    pem.write_bytes(key.certificate.public_bytes(Encoding.PEM))
    trust = load_trust([pem], now=NOW, state_dir=tmp_path / "state")
    v = verify_qr_text(make_hc1(key, now=NOW), trust, now=NOW)
    return v.valid, v.stage_failed, tuple(v.reasons)


def test_trust_list_signer_cannot_sign_a_dcc(tmp_path: Path) -> None:
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="CSCA", now=NOW - dt.timedelta(days=10))
    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(csca, ca_key, tl_key.public_key(), now=NOW - dt.timedelta(days=1))
    tl = SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(csca,))
    assert _verdict(tl, tmp_path) == (False, "key_usage", (Reason.DSC_WRONG_USAGE,))
    # the control: a DSC from the same CSCA, trusted the same way, is valid
    dsc_key = new_private_key("ec-p256")
    dsc = make_dsc(csca, ca_key, dsc_key.public_key(), name="Centre", now=NOW - dt.timedelta(days=1))
    good = SoftwareKey(private_key=dsc_key, certificate=dsc, chain=(csca,))
    assert _verdict(good, tmp_path) == (True, None, ())
