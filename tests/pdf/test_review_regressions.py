"""Regressions from the security review of verifier/pdf: a QR payload is untrusted
CBOR, so the human verdict and the field comparison must cope with any shape.

Before the fix, ``python -m verifier pdf`` (without ``--json``) ended in
"internal error: AttributeError" (exit 2) for a PDF whose QR held a ``nam``
or ``v`` that is not a map/list of maps, and ``compare_document`` raised
ValueError for an integer of more than 4300 digits (Python's int-to-text limit).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keys.certs import make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from signer.issue import Hc1Issuer
from signer.pdf import PassportPdfSigner, passport_data
from tests.fixtures.pki import NOW
from tests.pdf.conftest import CENTRE, PERSON_A, SIGN_TIME, PdfPki, make_passport
from verifier.pdf import verify_pdf
from verifier.pdf.cli import render_human
from verifier.pdf.match import compare_document
from verifier.pdf.verify import PdfVerdict

ODD_PAYLOADS: list[dict[str, Any]] = [
    {"nam": [1], "v": "x"},
    {"nam": {"fn": "Nguyễn"}, "v": [1]},
    {"nam": {"fn": "Nguyễn"}, "v": "abc", "dob": 1990},
    {"nam": {"fn": 10**5000}, "v": []},
    {"nam": None, "v": [{"ci": ["URN:UVCI:01:VN:X#1"]}]},
]


@pytest.mark.parametrize("hcert", ODD_PAYLOADS, ids=range(len(ODD_PAYLOADS)))
def test_human_pdf_verdict_with_odd_payload(hcert: dict[str, Any]) -> None:
    verdict = PdfVerdict(
        valid=False, checks={}, errors=(), signer=None, payload={"hcert": hcert}, qr_text=None
    )
    lines = render_human(verdict, path="passport.pdf").splitlines()
    assert lines[0] == "passport.pdf: INVALID"
    expected_name = (
        "Nguyễn"
        if isinstance(hcert.get("nam"), dict) and hcert["nam"].get("fn") == "Nguyễn"
        else ""
    )
    assert lines[1] == f"  {expected_name}, , "


def test_human_pdf_verdict_shows_text_fields() -> None:
    hcert = {"nam": {"fn": "Nguyễn", "gn": "Văn An"}, "dob": "1990-01-02",
             "v": [{"ci": "URN:UVCI:01:VN:X#1"}]}  # fmt: skip
    verdict = PdfVerdict(
        valid=True, checks={}, errors=(), signer=None, payload={"hcert": hcert}, qr_text=None
    )
    assert render_human(verdict, path="p.pdf").splitlines()[1] == (
        "  Nguyễn Văn An, 1990-01-02, URN:UVCI:01:VN:X#1"
    )


def test_compare_document_with_huge_integers() -> None:
    dcc = {"nam": {"fn": "An"}, "v": [{"tg": 10**5000, "dn": 10**5000, "sd": 2}]}
    problems = compare_document(dcc, "An 840539006 1/2")
    assert [f for f, _ in problems] == ["disease", "dose_number"]


# --------------------------------------------------------------------------
# The PDF signer must be a document signer: a PDF signed by another key the
# CSCA certified (here the trust-list signer) used to be reported VALID.
# And `verifier pdf` printed pyHanko's logged tracebacks on stderr for every
# untrusted signer (exit 1 was right, stderr was not).


def _passport_signed_by(pdf_pki: PdfPki, pdf_key: SoftwareKey) -> bytes:
    issued = Hc1Issuer(pdf_pki.good, issuer_name="Ministry of Health of Viet Nam").issue(
        PERSON_A, now=SIGN_TIME, allow_unverified=True
    )
    data = passport_data(
        dcc=issued.dcc,
        hc1=issued.hc1,
        centre=CENTRE,
        record=PERSON_A,
        issued_at=dt.datetime.fromtimestamp(issued.iat, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC),
    )
    signer = PassportPdfSigner(
        pdf_key, centre=CENTRE, crls=[pdf_pki.crl], now=SIGN_TIME, check_certificate_status=False
    )
    return signer.sign(data, now=SIGN_TIME)


def test_pdf_signed_by_the_trust_list_signer_is_invalid(pdf_pki: PdfPki) -> None:
    key = new_private_key("ec-p256")
    cert = make_trust_list_signer(
        pdf_pki.csca, pdf_pki.csca_key, key.public_key(), now=NOW - dt.timedelta(days=100)
    )  # type: ignore[arg-type]
    tl_key = SoftwareKey(private_key=key, certificate=cert, chain=(pdf_pki.csca,))
    v = verify_pdf(_passport_signed_by(pdf_pki, tl_key), pdf_pki.trust(), now=NOW)
    assert v.valid is False
    assert v.failed_checks == ("pdf_chain", "qr_matches_document")
    assert v.reasons == ("dsc_untrusted", "signer_mismatch")  # and its QR came from a DSC
    # the same passport signed by a DSC (DCC EKU) is valid
    good = verify_pdf(_passport_signed_by(pdf_pki, pdf_pki.good), pdf_pki.trust(), now=NOW)
    assert good.valid is True, good.errors


def test_invalid_pdf_cli_stderr_is_clean(pdf_pki: PdfPki, tmp_path: Path) -> None:
    pdf = tmp_path / "outsider.pdf"
    pdf.write_bytes(make_passport(pdf_pki.outsider, PERSON_A, crl=pdf_pki.crl, check_pdf=False).pdf)
    trust = [a for f in pdf_pki.trust_files for a in ("--trust", str(f))]
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "pdf", *trust, "--at", NOW.isoformat(), str(pdf)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "VNDCC_VERIFIER_STATE": str(tmp_path / "state")},
    )
    assert done.returncode == 1 and "pdf_chain: dsc_untrusted" in done.stdout
    assert done.stderr == ""
