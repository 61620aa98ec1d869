"""Verify a signed PDF passport offline: PAdES signature, QR code, and that they agree.

    >>> import datetime as dt
    >>> from verifier.trust import load_trust
    >>> from verifier.pdf.verify import verify_pdf
    >>> # trust = load_trust(["trustlist.cbor", "csca.pem"], now=now)
    >>> # verdict = verify_pdf(open("passport.pdf", "rb").read(), trust, now=now)
    >>> # verdict.valid, verdict.checks["pdf_modifications"], verdict.to_json()

Checklist (issue 3, "Verification"):

1. the PAdES signature (:mod:`verifier.pdf.signature`): ``pdf_signature``,
   ``pdf_integrity``, ``pdf_chain``, ``pdf_revocation``, ``pdf_modifications``,
   and ``pdf_timestamp`` when the signature carries a timestamp (B-LT);
   a passport as signed (one signature over the whole file) is accepted
   without pyHanko's validation when :mod:`verifier.pdf.fast` proves it
   valid, anything else goes to pyHanko;
2. ``qr``: exactly one HC1 QR code is visible on page 1: read from the
   page's vector drawing when it is one this reader fully understands
   (:mod:`verifier.pdf.vector_qr`, a passport's), else rendered and decoded;
   page 1 is read only when its drawing work is bounded
   (:mod:`verifier.pdf.budget`, reason ``page_too_complex``), and poppler's
   work on one file is limited to :data:`~verifier.pdf.extract.TIME_BUDGET`
   seconds;
3. the QR text verified as ``verifier qr`` does (prefix .. schema checks);
4. ``qr_matches_document``: the printed fields agree with the QR payload
   (the page's text from the same pass as the vector QR when its fonts are
   Identity-H with ToUnicode maps, else ``pdftotext``).

Every check is evaluated (none hides another), so a report names all that
is wrong. Untrusted input never raises; a missing poppler-utils is a
configuration error (:class:`~verifier.errors.ConfigError`).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier import codec
from verifier.errors import CodecError, ConfigError
from verifier.hc1 import verify_qr_text
from verifier.pdf.budget import TOO_COMPLEX, file_structure_problem, one_reader, page_work_problem
from verifier.pdf.extract import TIME_BUDGET, QrFound, RenderTimeout, page_text, render_qr_texts
from verifier.pdf.fast import fast_signature_report
from verifier.pdf.match import compare_document
from verifier.pdf.report import PDF_CHECKS, CheckError, SignatureReport
from verifier.pdf.vector_qr import page_qr
from verifier.result import STAGES, Verdict, jsonable
from verifier.trust import TrustStore

QR_STAGES = tuple(str(s) for s in STAGES if str(s) != "qr")
#: reported (and required true) only when the signature carries a timestamp
TIMESTAMP_CHECK = "pdf_timestamp"
#: reported (and required true) only when the document carries document timestamps (B-LTA)
ARCHIVE_CHECK = "pdf_archive_timestamp"
CHECKS = (*PDF_CHECKS, "qr", "qr_matches_document", *QR_STAGES)


@dataclass(frozen=True)
class PdfVerdict:
    """Outcome of one PDF verification (JSON shape: :meth:`to_dict`)."""

    valid: bool
    checks: Mapping[str, bool | None]
    errors: tuple[CheckError, ...]
    signer: Mapping[str, Any] | None
    payload: Mapping[str, Any] | None
    qr_text: str | None
    qr: Verdict | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        return tuple(e.reason for e in self.errors)

    @property
    def failed_checks(self) -> tuple[str, ...]:
        return tuple(k for k, v in self.checks.items() if v is False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [
                {"check": e.check, "stage": e.check, "reason": e.reason, "message": e.message}
                for e in self.errors
            ],
            "checks": {
                **{k: self.checks.get(k) for k in CHECKS},
                # only for a signature that carries a timestamp (B-T/B-LT)
                **{k: self.checks[k] for k in (TIMESTAMP_CHECK, ARCHIVE_CHECK) if k in self.checks},
            },
            "signer": None if self.signer is None else jsonable(dict(self.signer)),
            "payload": None if self.payload is None else jsonable(self.payload),
            "qr_text": self.qr_text,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent, allow_nan=False)


def verify_pdf(
    data: bytes, trust: TrustStore, *, now: dt.datetime, fast_path: bool = True
) -> PdfVerdict:
    """Verify a PDF passport (bytes); never raises on untrusted input.

    ``fast_path=False`` always runs pyHanko's validation (the fast path only
    accepts what that would accept: :mod:`verifier.pdf.fast`; the tests
    compare the two).
    """
    with one_reader(data):  # the checks below parse the file's objects once, not three times
        return _verify_pdf(data, trust, now=now, fast_path=fast_path)


def _verify_pdf(data: bytes, trust: TrustStore, *, now: dt.datetime, fast_path: bool) -> PdfVerdict:
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    checks: dict[str, bool | None] = dict.fromkeys(CHECKS)
    errors: list[CheckError] = []

    # 1. PAdES signature
    sig = _signature_report(data, trust, now, fast_path=fast_path)
    checks.update(sig.checks)
    errors.extend(sig.errors)

    # 2. the QR code on the page: drawing work bounded, then rendered within the time budget
    qr_text: str | None = None
    qr_verdict: Verdict | None = None
    deadline = time.monotonic() + TIME_BUDGET
    found = None
    drawn = None
    structure = file_structure_problem(data)
    if structure is not None:
        problem: tuple[str, str] | None = (TOO_COMPLEX, f"page 1 is not rendered: {structure[1]}")
    else:
        problem = page_work_problem(data)
    if problem is not None:
        errors.append(CheckError("qr", *problem))
    elif (drawn := page_qr(data)) is not None:
        # the QR read from the page's vector drawing (exact, no rendering)
        found = QrFound(texts=drawn.texts, ec_levels=drawn.ec_levels)
    else:
        try:
            found = render_qr_texts(data, timeout=max(deadline - time.monotonic(), 1.0))
        except ConfigError:
            raise
        except RenderTimeout as err:
            errors.append(CheckError("qr", TOO_COMPLEX, f"page 1 cannot be rendered in time ({err})"))
        except Exception as err:  # decoder or image library on hostile input
            errors.append(
                CheckError("qr", "qr_unreadable", f"cannot decode page 1 ({type(err).__name__})")
            )
    hc1 = [] if found is None else sorted({t for t in found.texts if t.startswith("HC1:")})
    if found is None:
        if not any(e.check == "qr" for e in errors):
            errors.append(CheckError("qr", "page_unrenderable", "page 1 cannot be rendered"))
        checks["qr"] = False
    elif not hc1:
        checks["qr"] = False
        errors.append(CheckError("qr", "no_qr_code", "no HC1 QR code on page 1"))
    elif len(hc1) > 1:
        checks["qr"] = False
        errors.append(CheckError("qr", "several_qr_codes", "page 1 shows more than one HC1 QR code"))
    else:
        checks["qr"] = True
        qr_text = hc1[0]

    # 3. the QR as `verifier qr` checks it
    payload: Mapping[str, Any] | None = None
    if qr_text is not None:
        qr_verdict = verify_qr_text(qr_text, trust, now=now)
        qr_checks = qr_verdict.to_dict()["checks"]
        for stage in QR_STAGES:
            checks[stage] = qr_checks.get(stage)
        for e in qr_verdict.errors:
            errors.append(CheckError(str(e.stage), str(e.reason), e.message))
        payload = qr_verdict.payload

    # 4. printed fields vs QR payload
    dcc = _dcc(payload)
    if dcc is not None:
        try:  # from the same pass as the vector QR, else pdftotext within the budget
            if drawn is not None and drawn.page_text is not None:
                text: str | None = drawn.page_text
            else:
                text = page_text(data, timeout=max(deadline - time.monotonic(), 1.0))
        except RenderTimeout as err:
            checks["qr_matches_document"] = False
            errors.append(CheckError("qr_matches_document", TOO_COMPLEX,
                                     f"the text of page 1 cannot be read in time ({err})"))  # fmt: skip
        else:
            if text is None:
                checks["qr_matches_document"] = False
                errors.append(CheckError("qr_matches_document", "no_text", "no text on page 1"))
            else:
                problems = compare_document(dcc, text)
                problems.extend(_signer_problem(qr_text, sig.signer))
                checks["qr_matches_document"] = not problems
                for field, message in problems:
                    errors.append(CheckError("qr_matches_document", f"{field}_mismatch", message))

    valid = (
        all(checks[k] is True for k in (*PDF_CHECKS, "qr", "qr_matches_document"))
        and checks.get(TIMESTAMP_CHECK, True) is True
        and checks.get(ARCHIVE_CHECK, True) is True
        and bool(qr_verdict is not None and qr_verdict.valid)
    )
    return PdfVerdict(
        valid=valid,
        checks=checks,
        errors=tuple(errors),
        signer=sig.signer,
        payload=payload,
        qr_text=qr_text,
        qr=qr_verdict,
    )


def _signature_report(
    data: bytes, trust: TrustStore, now: dt.datetime, *, fast_path: bool
) -> SignatureReport:
    """The PDF checks: a provably simple valid signature without pyHanko's validation
    (not imported then: about 0.1 s of a process's start), else pyHanko's."""
    if fast_path:
        report = fast_signature_report(data, trust, now=now)
        if report is not None:
            return report
    from verifier.pdf.signature import check_pdf_signature

    return check_pdf_signature(data, trust, now=now)


def _signer_problem(qr_text: str | None, signer: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The health centre that signed the PDF must be the one that signed its QR (same DSC)."""
    if qr_text is None or not signer or not signer.get("kid"):
        return []
    try:
        kid = codec.decode_sign1(codec.from_qr_text(qr_text)).kid
    except CodecError:
        return []  # the QR checks already report it
    if kid is None or base64.b64encode(kid).decode("ascii") == signer["kid"]:
        return []
    return [("signer", "the PDF is signed with another certificate than its QR code")]


def _dcc(payload: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The EU DCC of a verdict payload (``hcert``, claim -260 key 1)."""
    if not isinstance(payload, Mapping):
        return None
    hcert = payload.get("hcert")
    if not isinstance(hcert, Mapping):
        return None
    if "nam" in hcert:
        return hcert
    dcc = hcert.get(1, hcert.get("1"))
    return dcc if isinstance(dcc, Mapping) else None
