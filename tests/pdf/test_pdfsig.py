"""Independent validation with poppler's pdfsig (NSS database trusting the test CSCA,
the CSCA's CRL imported): issued passports valid and trusted, tampered ones not."""

from __future__ import annotations

from pathlib import Path

from tests.pdf import tamper
from tests.pdf.conftest import PERSON_A, Issued, PdfPki, PdfSig, make_passport

VALID = "Signature Validation: Signature is Valid."
TRUSTED = "Certificate Validation: Certificate is Trusted."


def test_issued_passports_valid_and_trusted(
    pdfsig: PdfSig, passport_a: Issued, passport_b: Issued, pdf_pki: PdfPki, tmp_path: Path
) -> None:
    rsa = make_passport(pdf_pki.rsa, PERSON_A, crl=pdf_pki.crl, centre="Trung tâm Y tế Quận Hoàn Kiếm")
    for issued in (passport_a, passport_b, rsa):
        out = pdfsig.run(issued.pdf, tmp_path)
        assert VALID in out and TRUSTED in out, out
        assert "Total document signed" in out
        assert "Signature Type: ETSI.CAdES.detached" in out


def test_byte_flip_is_invalid(pdfsig: PdfSig, passport_a: Issued, tmp_path: Path) -> None:
    out = pdfsig.run(tamper.flip_signed_byte(passport_a.pdf), tmp_path)
    assert "Signature #1" in out and VALID not in out, out


def test_outsider_key_untrusted(pdfsig: PdfSig, pdf_pki: PdfPki, tmp_path: Path) -> None:
    issued = make_passport(pdf_pki.outsider, PERSON_A, crl=pdf_pki.crl, centre="Outsider centre",
                           check_pdf=False)  # its CA is unknown: no CRL of its own
    out = pdfsig.run(issued.pdf, tmp_path)
    assert VALID in out and TRUSTED not in out, out


def test_revoked_dsc_reported_revoked(pdfsig: PdfSig, pdf_pki: PdfPki, tmp_path: Path) -> None:
    issued = make_passport(pdf_pki.revoked, PERSON_A, crl=pdf_pki.crl, check=False)
    out = pdfsig.run(issued.pdf, tmp_path)
    assert TRUSTED not in out and "Revoked" in out, out


def test_signature_removed(pdfsig: PdfSig, passport_a: Issued, tmp_path: Path) -> None:
    out = pdfsig.run(tamper.remove_signature(passport_a.pdf), tmp_path)
    assert "does not contain any signatures" in out, out


def test_incremental_updates_not_total_document(
    pdfsig: PdfSig, passport_a: Issued, tmp_path: Path
) -> None:
    # pdfsig's blind spot (FIELD-NOTES): it still calls the signature valid and
    # only says the document is not totally signed; verifier pdf refuses these
    # (test_verify.py: pdf_modifications).
    for forged in (tamper.overwrite_name(passport_a.pdf, x=212, y=600), tamper.add_page(passport_a.pdf)):
        out = pdfsig.run(forged, tmp_path)
        assert "Not total document signed" in out, out


def test_expired_dsc_not_trusted(pdfsig: PdfSig, pdf_pki: PdfPki, tmp_path: Path) -> None:
    issued = make_passport(pdf_pki.expired, PERSON_A, crl=pdf_pki.crl, check=False)
    out = pdfsig.run(issued.pdf, tmp_path)
    assert TRUSTED not in out and "Expired" in out, out
