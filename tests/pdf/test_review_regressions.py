"""Regressions from the security review of verifier/pdf: a QR payload is untrusted
CBOR, so the human verdict and the field comparison must cope with any shape.

Before the fix, ``python -m verifier pdf`` (without ``--json``) ended in
"internal error: AttributeError" (exit 2) for a PDF whose QR held a ``nam``
or ``v`` that is not a map/list of maps, and ``compare_document`` raised
ValueError for an integer of more than 4300 digits (Python's int-to-text limit).
"""

from __future__ import annotations

from typing import Any

import pytest

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
