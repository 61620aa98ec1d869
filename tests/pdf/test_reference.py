"""KeySigner inside pyHanko's own PdfSigner (signer.pdf.reference): the textbook
pipeline with our key adapter (software ES256, RSA-PSS, SoftHSM2 token) gives
passports that verifier pdf and pdfsig accept, like the fast path's.

pyHanko's PdfSigner takes the signing time from the system clock (no parameter),
so these tests sign and verify at the real current time, with a CRL made for it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from signer.pdf import passport_data
from signer.pdf.reference import PyHankoPassportSigner
from tests.fixtures.pki import NOW
from tests.pdf.conftest import CENTRE, PERSON_B, SIGN_TIME, PdfPki, PdfSig
from verifier.pdf import verify_pdf


def _clock_and_crl(csca: object, csca_key: object) -> tuple[dt.datetime, object]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    real = dt.datetime.now(dt.UTC)
    crl = (
        x509.CertificateRevocationListBuilder().issuer_name(csca.subject)  # type: ignore[attr-defined]
        .last_update(real - dt.timedelta(days=1)).next_update(real + dt.timedelta(days=30))
        .sign(csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    return real, crl


def _data(key: object) -> object:
    from signer.issue import Hc1Issuer

    issued = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam").issue(  # type: ignore[arg-type]
        PERSON_B, now=SIGN_TIME, allow_unverified=True
    )
    return passport_data(dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=PERSON_B,
                         issued_at=SIGN_TIME, expires_at=NOW)


@pytest.mark.parametrize("which", ["good", "rsa"])
def test_pyhanko_pdfsigner_with_key_adapter(
    which: str, pdf_pki: PdfPki, pdfsig: PdfSig, tmp_path: Path
) -> None:
    key = getattr(pdf_pki, which)
    real, crl = _clock_and_crl(pdf_pki.csca, pdf_pki.csca_key)
    ref = PyHankoPassportSigner(key, centre=CENTRE, crls=[crl], now=real)  # type: ignore[list-item]
    pdf = ref.sign(_data(key), now=real)  # type: ignore[arg-type]
    v = verify_pdf(pdf, pdf_pki.trust(real), now=real + dt.timedelta(minutes=1))
    assert v.valid, v.errors
    out = pdfsig.run(pdf, tmp_path)
    assert "Signature is Valid." in out and "Certificate is Trusted." in out, out
    assert "Total document signed" in out  # DSS in the signature's revision (FIELD-NOTES)


def test_pyhanko_pdfsigner_with_token(softhsm_es256_key: object, test_pki: object, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding

    from verifier.trust import load_trust

    csca = test_pki.csca  # type: ignore[attr-defined]
    real, crl = _clock_and_crl(csca, test_pki.csca_key)  # type: ignore[attr-defined]
    ref = PyHankoPassportSigner(softhsm_es256_key, centre=CENTRE, crls=[crl], now=real)  # type: ignore[arg-type,list-item]
    pdf = ref.sign(_data(softhsm_es256_key), now=real)  # type: ignore[arg-type]
    (tmp_path / "csca.pem").write_bytes(csca.public_bytes(Encoding.PEM))
    (tmp_path / "dsc.pem").write_bytes(softhsm_es256_key.certificate.public_bytes(Encoding.PEM))  # type: ignore[attr-defined]
    trust = load_trust([tmp_path / "csca.pem", tmp_path / "dsc.pem"], now=real, state_dir=tmp_path / "s")
    v = verify_pdf(pdf, trust, now=real + dt.timedelta(minutes=1))
    assert v.valid, v.errors
