"""Do the document's printed fields and the QR payload agree?

    >>> from verifier.pdf.match import compare_document
    >>> dcc = {"nam": {"fn": "Nguyễn", "gn": "Văn An"}, "dob": "1990-01-02",
    ...        "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528",
    ...               "ma": "ORG-100030215", "dn": 2, "sd": 2, "dt": "2021-09-15",
    ...               "ci": "URN:UVCI:01:VN:X#1"}]}
    >>> text = ("Nguyễn Văn An 1990-01-02 840539006 1119349007 EU/1/20/1528 "
    ...         "ORG-100030215 2/2 2021-09-15 URN:UVCI:01:VN:X#1")
    >>> compare_document(dcc, text)
    []

The passport prints, for each of the fields of Decision 5772/QĐ-BYT, the
same value the QR holds (codes next to their display names), so the check
needs no value sets: every value of the signed payload must appear in the
page text, and every UVCI printed on the page must be the QR's.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

_UVCI = re.compile(r"URN:UVCI:[0-9A-Z:/#]+")


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _as_text(value: str | int) -> str:
    """A payload value as printed; huge ints (CBOR bignums) in hex, as str() refuses them."""
    if isinstance(value, int) and value.bit_length() > 64:
        return hex(value)
    return str(value)


def _expected(dcc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, printed value) pairs the page must show."""
    out: list[tuple[str, str]] = []
    nam = dcc.get("nam")
    if isinstance(nam, Mapping):
        for key in ("fn", "gn"):
            value = nam.get(key)
            if isinstance(value, str) and value.strip():
                out.append(("full_name", value))
    dob = dcc.get("dob")
    if isinstance(dob, str) and dob:
        out.append(("date_of_birth", dob))
    for group in ("v", "t", "r"):
        entries = dcc.get(group)
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], Mapping):
            continue
        e = entries[0]
        if group == "v":
            for key, name in (
                ("tg", "disease"),
                ("vp", "vaccine"),
                ("mp", "product"),
                ("ma", "manufacturer"),
                ("dt", "vaccination_date"),
            ):
                if isinstance(e.get(key), str | int):
                    out.append((name, _as_text(e[key])))
            if isinstance(e.get("dn"), int) and isinstance(e.get("sd"), int):
                out.append(("dose_number", f"{_as_text(e['dn'])}/{_as_text(e['sd'])}"))
        if isinstance(e.get("ci"), str):
            out.append(("uvci", e["ci"]))
    return out


def compare_document(dcc: Mapping[str, Any], text: str) -> list[tuple[str, str]]:
    """Mismatches as (field, message); empty when page and payload agree."""
    page = _norm(text)
    problems: list[tuple[str, str]] = []
    expected = _expected(dcc)
    if not expected:
        return [("payload", "the QR payload holds no field to compare")]
    for field, value in expected:
        if _norm(value) not in page:
            problems.append((field, f"{field} of the QR is not printed on the page"))
    qr_uvcis = {v for f, v in expected if f == "uvci"}
    printed = set(_UVCI.findall(page))
    for uvci in sorted(printed - qr_uvcis):
        problems.append(("uvci", f"the page shows another certificate identifier ({uvci})"))
    return problems
