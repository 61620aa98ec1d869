"""Other validators' default policies accept clean passports (issue 13, interop).

pyHanko's default validation (no key-usage or revocation settings of ours: its
default KeyUsageConstraints ask for nonRepudiation; its default revocation policy),
offline: the CSCA as the only trust root, the CSCA's CRL supplied, fetching off.
pdfsig: see test_pdfsig.py. The DSCs carry what those policies look for
(keys/certs.py: keyUsage digitalSignature + nonRepudiation, a CRL distribution
point), and that stays within the EU DCC DSC profile (the verifier's own QR
checks, key_usage stage included, still pass).
"""

from __future__ import annotations

import io

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from keys.certs import DEFAULT_CRL_URL
from signer.pdf.cms import to_asn1
from tests.fixtures.pki import NOW
from tests.pdf.conftest import PERSON_A, Issued, PdfPki, make_passport
from verifier.pdf import verify_pdf


def _pyhanko_default(pdf: bytes, pki: PdfPki) -> object:
    vc = ValidationContext(
        trust_roots=[to_asn1(pki.csca)], crls=[pki.crl.public_bytes(Encoding.DER)],
        allow_fetching=False, moment=NOW,
    )
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    return validate_pdf_signature(sig, vc)


def test_dsc_profile(pdf_pki: PdfPki) -> None:
    cert = pdf_pki.good.certificate
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_cert_sign and not ku.value.key_encipherment
    dp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in dp[0].full_name or ()] == [DEFAULT_CRL_URL]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical
    assert "1.3.6.1.4.1.1847.2021.1.2" in {o.dotted_string for o in eku.value}


def test_pyhanko_default_policy_accepts(passport_a: Issued, pdf_pki: PdfPki) -> None:
    rsa = make_passport(pdf_pki.rsa, PERSON_A, crl=pdf_pki.crl, centre="Trung tâm Y tế Quận Hoàn Kiếm")
    for pdf in (passport_a.pdf, rsa.pdf):
        status = _pyhanko_default(pdf, pdf_pki)
        assert status.bottom_line, status.pretty_print_details()  # type: ignore[attr-defined]
        assert status.docmdp_ok  # type: ignore[attr-defined]


def test_pyhanko_default_policy_refuses_revoked(pdf_pki: PdfPki) -> None:
    issued = make_passport(pdf_pki.revoked, PERSON_A, crl=pdf_pki.crl, check=False)
    assert not _pyhanko_default(issued.pdf, pdf_pki).bottom_line  # type: ignore[attr-defined]


def test_our_verifier_still_accepts(passport_a: Issued, pdf_pki: PdfPki) -> None:
    # the QR's key_usage stage and the PDF chain with the new key usage and CRL DP
    v = verify_pdf(passport_a.pdf, pdf_pki.trust(), now=NOW)
    assert v.valid, v.errors
    assert v.checks["key_usage"] is True and v.checks["pdf_revocation"] is True
