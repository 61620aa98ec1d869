"""verifier.pdf against issued and tampered passports: each tampering is invalid with
the right failing check (issue 3, "Tamper tests"); never an exception."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer.pdf import PassportPdfSigner, passport_data
from tests.fixtures.pki import NOW
from tests.pdf import tamper
from tests.pdf.conftest import CENTRE, PERSON_A, PERSON_B, SIGN_TIME, Issued, PdfPki, make_passport
from verifier.hc1 import verify_qr_text
from verifier.pdf import verify_pdf
from verifier.pdf.signature import PDF_CHECKS, check_pdf_signature
from verifier.trust import TrustStore, load_trust


@pytest.fixture(scope="module")
def trust(pdf_pki: PdfPki) -> TrustStore:
    return pdf_pki.trust()


def _all_true(verdict: object, names: tuple[str, ...]) -> None:
    checks = verdict.checks  # type: ignore[attr-defined]
    assert {k: checks[k] for k in names} == dict.fromkeys(names, True)


def test_issued_passports_are_valid(
    passport_a: Issued, passport_b: Issued, trust: TrustStore, pdf_pki: PdfPki
) -> None:
    from keys.base import kid_of

    for issued in (passport_a, passport_b):
        v = verify_pdf(issued.pdf, trust, now=NOW)
        assert v.valid, v.errors
        assert v.errors == ()
        assert v.qr_text == issued.hc1
        assert all(value is True for value in v.checks.values()), v.checks
        assert v.signer is not None and CENTRE in str(v.signer["subject"])
        assert v.signer["location"] == CENTRE and v.signer["signing_time"].startswith("2026-05-30")
        d = v.to_dict()
        assert set(d) == {"valid", "errors", "checks", "signer", "payload", "qr_text"}
        assert d["payload"]["hcert"]["nam"]["fn"] == issued.record.full_name.split()[0]
        assert d["signer"]["kid"] == base64.b64encode(kid_of(pdf_pki.good)).decode()


def test_rsa_pss_signer_is_valid(pdf_pki: PdfPki, trust: TrustStore) -> None:
    issued = make_passport(pdf_pki.rsa, PERSON_B, crl=pdf_pki.crl, centre="Trung tâm Y tế Quận Hoàn Kiếm")
    v = verify_pdf(issued.pdf, trust, now=NOW)
    assert v.valid, v.errors


def test_one_byte_changed_in_signed_range(passport_a: Issued, trust: TrustStore) -> None:
    v = verify_pdf(tamper.flip_signed_byte(passport_a.pdf), trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_integrity"] is False
    assert "digest_mismatch" in v.reasons


def test_incremental_update_drawing_new_name(
    passport_a: Issued, trust: TrustStore, good_signer: PassportPdfSigner
) -> None:
    layout = good_signer.layout
    forged = tamper.overwrite_name(passport_a.pdf, x=layout.value_x, y=layout.field_y[0])
    v = verify_pdf(forged, trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_modifications"] is False
    assert "modified_after_signing" in v.reasons
    # the signed revision itself is intact and trusted: only the update is the problem
    _all_true(v, ("pdf_signature", "pdf_integrity", "pdf_chain", "pdf_revocation"))
    # (text extraction still finds the painted-over name, so only the
    # modification analysis can catch this one: pdfsig cannot, see test_pdfsig)


def test_incremental_update_adding_a_page(passport_a: Issued, trust: TrustStore) -> None:
    v = verify_pdf(tamper.add_page(passport_a.pdf), trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_modifications"] is False
    _all_true(v, ("pdf_signature", "pdf_integrity", "pdf_chain", "qr", "qr_matches_document"))


def test_signature_removed(passport_a: Issued, trust: TrustStore) -> None:
    v = verify_pdf(tamper.remove_signature(passport_a.pdf), trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_signature"] is False and "no_signature" in v.reasons
    # the QR itself is still a valid certificate: the PDF is what is refused
    assert v.checks["qr"] is True and v.checks["signature"] is True


def test_signed_with_key_outside_trust_list(pdf_pki: PdfPki, trust: TrustStore) -> None:
    issued = make_passport(pdf_pki.outsider, PERSON_A, crl=pdf_pki.crl, centre="Outsider centre",
                           check_pdf=False)  # its CA is unknown: no CRL of its own
    v = verify_pdf(issued.pdf, trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_chain"] is False and "dsc_untrusted" in v.reasons
    assert v.checks["pdf_integrity"] is True and v.checks["pdf_signature"] is True
    assert v.checks["signature"] is False  # the QR's kid is unknown too


def test_signed_with_revoked_dsc(pdf_pki: PdfPki, trust: TrustStore) -> None:
    issued = make_passport(pdf_pki.revoked, PERSON_A, crl=pdf_pki.crl, check=False)
    v = verify_pdf(issued.pdf, trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_revocation"] is False and "dsc_revoked" in v.reasons
    assert v.checks["pdf_chain"] is True and v.checks["pdf_integrity"] is True
    # the embedded CRL alone says so: trust = the CSCA and the DSC file, no trust list
    dsc = pdf_pki.state_dir.parent / "revoked-dsc.pem"
    dsc.write_bytes(pdf_pki.revoked.certificate.public_bytes(Encoding.PEM))
    crl_only = load_trust([pdf_pki.csca_pem, dsc], now=NOW, state_dir=pdf_pki.state_dir)
    assert crl_only.dscs[0].revoked_at is None
    report = check_pdf_signature(issued.pdf, crl_only, now=NOW)
    assert report.checks["pdf_revocation"] is False
    assert [e.reason for e in report.errors] == ["dsc_revoked"]


def test_signer_refuses_revoked_or_expired_dsc(pdf_pki: PdfPki) -> None:
    from verifier.errors import KeyBackendError

    with pytest.raises(KeyBackendError, match="revoked"):
        PassportPdfSigner(pdf_pki.revoked, centre="x", crls=[pdf_pki.crl], now=SIGN_TIME)
    with pytest.raises(KeyBackendError, match="not valid"):
        PassportPdfSigner(pdf_pki.expired, centre="x", crls=[pdf_pki.crl], now=SIGN_TIME)
    with pytest.raises(KeyBackendError, match="no CRL"):
        PassportPdfSigner(pdf_pki.good, centre="x", crls=[], now=SIGN_TIME)
    with pytest.raises(KeyBackendError, match="not current"):  # CRL's nextUpdate passed
        PassportPdfSigner(pdf_pki.good, centre="x", crls=[pdf_pki.crl], now=NOW + dt.timedelta(days=40))


def test_many_doses_show_the_latest(
    pdf_pki: PdfPki, good_signer: PassportPdfSigner, trust: TrustStore
) -> None:
    from signer.records import Dose
    from verifier.pdf.extract import page_text

    doses = tuple(
        Dose(f"2021-{m:02d}-10", "Pfizer", f"LOT{m}", m, 8, "Trạm Y tế") for m in range(1, 9)
    )
    record = dataclasses.replace(PERSON_A, doses=doses)
    issued = make_passport(pdf_pki.good, record, crl=pdf_pki.crl, signer=good_signer)
    text = page_text(issued.pdf) or ""
    assert "2021-08-10" in text and "LOT4" in text and "LOT3 " not in text + " "
    assert "+3 mũi trước đó / earlier doses" in text  # none dropped silently
    assert verify_pdf(issued.pdf, trust, now=NOW).valid


def test_signed_with_expired_dsc(pdf_pki: PdfPki, trust: TrustStore) -> None:
    issued = make_passport(pdf_pki.expired, PERSON_A, crl=pdf_pki.crl, check=False)
    v = verify_pdf(issued.pdf, trust, now=NOW)
    assert not v.valid
    assert v.checks["pdf_chain"] is False and "dsc_expired" in v.reasons
    assert v.checks["pdf_integrity"] is True


def test_valid_signature_but_another_persons_qr(
    pdf_pki: PdfPki, passport_a: Issued, passport_b: Issued, good_signer: PassportPdfSigner,
    trust: TrustStore,
) -> None:
    from signer.issue import Hc1Issuer

    issued_a = Hc1Issuer(pdf_pki.good, issuer_name="Ministry of Health of Viet Nam").issue(
        PERSON_A, now=SIGN_TIME, allow_unverified=True
    )
    data = passport_data(
        dcc=issued_a.dcc, hc1=issued_a.hc1, centre=CENTRE, record=PERSON_A,
        issued_at=SIGN_TIME, expires_at=SIGN_TIME + dt.timedelta(days=365),
    )
    swapped = dataclasses.replace(data, hc1=passport_b.hc1)  # B's genuine QR on A's page
    v = verify_pdf(good_signer.sign(swapped, now=SIGN_TIME), trust, now=NOW)
    assert not v.valid
    assert v.checks["qr_matches_document"] is False
    assert {"full_name_mismatch", "uvci_mismatch"} <= set(v.reasons)
    _all_true(v, (*PDF_CHECKS, "qr", "signature", "expiry", "schema"))


def test_not_a_pdf_or_truncated_never_raises(passport_a: Issued, trust: TrustStore) -> None:
    for junk in (b"", b"%PDF-1.7\n", b"hello", passport_a.pdf[: len(passport_a.pdf) // 2]):
        v = verify_pdf(junk, trust, now=NOW)
        assert not v.valid
        assert v.checks["pdf_signature"] is False or v.checks["pdf_integrity"] is False


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_bit_flip_in_signed_range_is_caught(
    data: st.DataObject, passport_a: Issued, trust: TrustStore
) -> None:
    pdf = passport_a.pdf
    start = pdf.index(b"/Contents <")
    at = data.draw(st.integers(min_value=0, max_value=start - 1), label="offset")
    bit = data.draw(st.integers(min_value=0, max_value=7), label="bit")
    flipped = pdf[:at] + bytes([pdf[at] ^ (1 << bit)]) + pdf[at + 1 :]
    report = check_pdf_signature(flipped, trust, now=NOW)  # never raises
    assert report.checks["pdf_integrity"] is not True or report.checks["pdf_signature"] is not True


def test_validation_time_before_signing_is_refused(passport_a: Issued, trust: TrustStore) -> None:
    report = check_pdf_signature(passport_a.pdf, trust, now=SIGN_TIME - dt.timedelta(days=1))
    assert report.checks["pdf_chain"] is False
    assert any(e.reason == "signed_after_validation_time" for e in report.errors)


def test_revoked_in_trust_list_only(pdf_pki: PdfPki, passport_a: Issued) -> None:
    # a trust list that revokes the good DSC: the embedded CRL (older) does not know yet
    from keys.certs import make_trust_list_signer, new_private_key
    from keys.software import SoftwareKey
    from keys.trustlist import build_trust_list
    from verifier.trust import load_trust

    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(pdf_pki.csca, pdf_pki.csca_key, tl_key.public_key(), now=NOW - dt.timedelta(days=5))  # type: ignore[arg-type]
    tl = build_trust_list(
        signer=SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(pdf_pki.csca,)),
        cscas=[pdf_pki.csca], dscs=[pdf_pki.good.certificate],
        revoked_dscs=[(pdf_pki.good.certificate, NOW - dt.timedelta(hours=1))],
        revoked_uvcis=[], crls=[], seq=2, now=NOW - dt.timedelta(minutes=30), country="VN",
    )
    path = pdf_pki.state_dir.parent / "trustlist-revoking.cbor"
    path.write_bytes(tl)
    trust = load_trust([pdf_pki.csca_pem, path], now=NOW, state_dir=pdf_pki.state_dir.parent / "state2")
    report = check_pdf_signature(passport_a.pdf, trust, now=NOW)
    assert report.checks["pdf_revocation"] is False


def test_no_usable_crl_embedded_is_revocation_unknown(pdf_pki: PdfPki, trust: TrustStore) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    stale = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pdf_pki.csca.subject)
        .last_update(SIGN_TIME - dt.timedelta(days=60))
        .next_update(SIGN_TIME - dt.timedelta(days=30))  # expired before the signing time
        .sign(pdf_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    for crls in ([], [stale]):
        signer = PassportPdfSigner(pdf_pki.good, centre=CENTRE, crls=crls, now=SIGN_TIME,
                                   check_certificate_status=False)
        issued = make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=signer)
        report = check_pdf_signature(issued.pdf, trust, now=NOW)
        assert report.checks["pdf_revocation"] is False, report.errors
        assert report.checks["pdf_chain"] is True
        assert any(e.reason == "revocation_unknown" for e in report.errors)


def test_huge_page_is_rendered_at_bounded_size(trust: TrustStore) -> None:
    import time

    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Contents 4 0 R >>",
        b"<< /Length 18 >>\nstream\n0 0 14400 14400 re\nendstream",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    t0 = time.perf_counter()
    v = verify_pdf(bytes(out), trust, now=NOW)
    assert time.perf_counter() - t0 < 20
    assert not v.valid and "no_signature" in v.reasons and "no_qr_code" in v.reasons


def test_pdf_and_qr_must_have_the_same_signer(
    pdf_pki: PdfPki, good_signer: PassportPdfSigner, trust: TrustStore
) -> None:
    """A genuine QR of the same person, but issued by another (trusted) centre's DSC,
    on a page the first centre signed: the document no longer matches its QR."""
    from signer.issue import Hc1Issuer

    other = Hc1Issuer(pdf_pki.rsa, issuer_name="Ministry of Health of Viet Nam").issue(
        PERSON_A, now=SIGN_TIME, allow_unverified=True
    )
    data = passport_data(
        dcc=other.dcc, hc1=other.hc1, centre=CENTRE, record=PERSON_A,
        issued_at=SIGN_TIME, expires_at=SIGN_TIME + dt.timedelta(days=365),
    )
    v = verify_pdf(good_signer.sign(data, now=SIGN_TIME), trust, now=NOW)
    assert verify_qr_text(other.hc1, trust, now=NOW).valid  # the QR alone is fine
    assert not v.valid
    assert v.checks["qr_matches_document"] is False
    assert "signer_mismatch" in v.reasons
    _all_true(v, (*PDF_CHECKS, "qr", "signature", "expiry", "schema"))
