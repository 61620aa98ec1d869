"""The same PDF signing with a PKCS#11 token (SoftHSM2): ES256 and PS256 keys generated
inside the token; the key object is the one that signs the HC1 too (one session)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from keys.pkcs11_key import Pkcs11Key
from signer.pdf import PassportPdfSigner
from tests.fixtures import pki as pki_fixtures
from tests.fixtures.pki import NOW
from tests.pdf.conftest import PERSON_A, SIGN_TIME, PdfSig, make_passport
from verifier.pdf import verify_pdf
from verifier.trust import load_trust


def _crl(pki: pki_fixtures.TestPki) -> x509.CertificateRevocationList:
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.csca.subject)
        .last_update(NOW - dt.timedelta(days=5))
        .next_update(NOW + dt.timedelta(days=25))
        .sign(pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("which", ["softhsm_es256_key", "softhsm_ps256_key"])
def test_token_signed_passport_verifies(
    which: str, request: pytest.FixtureRequest, test_pki: pki_fixtures.TestPki, tmp_path: Path
) -> None:
    key: Pkcs11Key = request.getfixturevalue(which)
    crl = _crl(test_pki)
    signer = PassportPdfSigner(key, centre="Trạm Y tế Xã Tân Phú", crls=[crl], now=SIGN_TIME)
    issued = make_passport(key, PERSON_A, crl=crl, signer=signer, centre="Trạm Y tế Xã Tân Phú")
    csca = tmp_path / "csca.pem"
    csca.write_bytes(test_pki.csca.public_bytes(Encoding.PEM))
    dsc = tmp_path / "dsc.pem"
    dsc.write_bytes(key.certificate.public_bytes(Encoding.PEM))
    trust = load_trust([csca, dsc], now=NOW, state_dir=tmp_path / "state")
    v = verify_pdf(issued.pdf, trust, now=NOW)
    assert v.valid, v.errors
    assert v.qr_text == issued.hc1
    # a second passport from the same signer and token session
    again = make_passport(key, PERSON_A, crl=crl, signer=signer, centre="Trạm Y tế Xã Tân Phú")
    assert verify_pdf(again.pdf, trust, now=NOW).valid


def test_token_signed_passport_pdfsig(
    softhsm_es256_key: Pkcs11Key, test_pki: pki_fixtures.TestPki, tmp_path: Path
) -> None:
    import subprocess

    crl = _crl(test_pki)
    issued = make_passport(softhsm_es256_key, PERSON_A, crl=crl, centre="Trạm Y tế Xã Tân Phú")
    nss = tmp_path / "nss"
    nss.mkdir()
    csca = tmp_path / "csca.pem"
    csca.write_bytes(test_pki.csca.public_bytes(Encoding.PEM))
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nss}", "-n", "CSCA", "-t", "C,C,C", "-a", "-i", str(csca)],
                   check=True, capture_output=True)
    out = PdfSig(nssdir=nss).run(issued.pdf, tmp_path)
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out
