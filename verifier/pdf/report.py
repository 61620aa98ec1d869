"""The signature report shared by the two signature checks (no pyHanko import).

    >>> from verifier.pdf.report import PDF_CHECKS, Report
    >>> r = Report(); r.fail("pdf_chain", "dsc_expired", "..."); r.done().checks["pdf_chain"]
    False

:mod:`verifier.pdf.signature` (pyHanko's validation) and
:mod:`verifier.pdf.fast` (a whole-file signature checked with asn1crypto and
cryptography, issue 13) build the same :class:`SignatureReport`, with the
same signer JSON (:func:`safe_signer`), PAdES level (:func:`pades_level`)
and trailing-data rule (:func:`trailing_data`).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from verifier.crypto import kid_for_certificate

if TYPE_CHECKING:
    from asn1crypto import x509 as asn1_x509

    from verifier.pdf.timestamp import SignatureTimestamp

PDF_CHECKS = ("pdf_signature", "pdf_integrity", "pdf_chain", "pdf_revocation", "pdf_modifications")
#: Tolerance between the signer's clock and the verifier's.
CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_PDF_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class CheckError:
    check: str
    reason: str
    message: str


@dataclass(frozen=True)
class SignatureReport:
    checks: Mapping[str, bool | None]
    errors: tuple[CheckError, ...]
    signer: Mapping[str, Any] | None = None
    signing_time: dt.datetime | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


class Report:
    def __init__(self) -> None:
        self.checks: dict[str, bool | None] = dict.fromkeys(PDF_CHECKS)
        self.errors: list[CheckError] = []

    def fail(self, check: str, reason: str, message: str) -> None:
        self.checks[check] = False
        self.errors.append(CheckError(check, reason, message))

    def done(
        self, signer: Mapping[str, Any] | None = None, signing_time: dt.datetime | None = None
    ) -> SignatureReport:
        return SignatureReport(
            checks=dict(self.checks),
            errors=tuple(self.errors),
            signer=signer,
            signing_time=signing_time,
        )


def aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)


def cert_name(name: asn1_x509.Name) -> str:
    try:
        return str(name.human_friendly)
    except Exception:
        return "?"


def signer_info(sig: Any, signing_time: dt.datetime | None) -> dict[str, Any]:
    cert: asn1_x509.Certificate = sig.signer_cert
    sig_obj = sig.sig_object

    def text(key: str) -> str | None:
        try:
            value = sig_obj.get(key)
        except Exception:
            return None
        return None if value is None else str(value)[:500]

    return {
        "subject": cert_name(cert.subject),
        "issuer": cert_name(cert.issuer),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before.isoformat(),
        "not_after": cert.not_valid_after.isoformat(),
        "sha256": hashlib.sha256(cert.dump()).hexdigest(),
        # the hcert kid of this certificate, to compare with the QR's
        "kid": base64.b64encode(kid_for_certificate(cert.dump())).decode("ascii"),
        "signing_time": signing_time.isoformat() if signing_time else None,
        "name": text("/Name"),
        "reason": text("/Reason"),
        "location": text("/Location"),
        "field": str(sig.field_name),
    }


def trailing_data(data: bytes, report: Report) -> None:
    """2. nothing but white space after the last revision's %%EOF (ISO 32000-1 7.5.5):
    bytes there are outside every revision, so no signature covers them and no
    modification analysis sees them (a polyglot payload, a hidden second document)."""
    end = data.rfind(b"%%EOF")
    if end >= 0 and data[end + 5 :].strip(b"\r\n\t\f\x00 "):
        report.fail("pdf_integrity", "trailing_data",
                    "the file has bytes after its last revision that no signature covers")


def pades_level(report: Report, ts: SignatureTimestamp | None) -> str | None:
    """B-B without a timestamp, B-LT with a valid one; None when any PDF check failed.

    A level describes a signature that holds: a digest mismatch, a bad or
    untrusted signature, a revoked DSC or a change after signing gives None.
    """
    if any(report.checks.get(k) is not True for k in PDF_CHECKS):
        return None
    if report.checks.get("pdf_archive_timestamp") is False:
        return None
    if ts is None:
        return None if report.checks.get("pdf_timestamp") is False else "B-B"
    if report.checks.get("pdf_timestamp") is not True:
        return None
    return "B-LTA" if report.checks.get("pdf_archive_timestamp") is True else "B-LT"


def safe_signer(
    sig: Any, signing_time: dt.datetime | None, ts: SignatureTimestamp | None = None,
    report: Report | None = None, moment: dt.datetime | None = None,
) -> dict[str, Any] | None:
    try:
        info = signer_info(sig, signing_time)
    except Exception:
        return None
    proven = ts is not None and report is not None and report.checks.get("pdf_timestamp") is True
    info["timestamp"] = ts.gen_time.isoformat() if ts is not None else None
    info["tsa"] = cert_name(ts.tsa_cert.subject) if ts is not None and ts.tsa_cert else None
    info["pades_level"] = pades_level(report, ts) if report is not None else None
    # what is proven: /M is a claim; a valid signature timestamp proves the time
    info["signing_time_proven"] = proven
    info["certificate_checked_at"] = moment.isoformat() if moment is not None else None
    info["archive_timestamp"] = None  # set by the caller once document timestamps are checked
    return info
