"""Offline validation of the passport's PAdES signature with pyHanko.

    >>> from verifier.pdf.signature import check_pdf_signature
    >>> # report = check_pdf_signature(pdf_bytes, trust, now=now)
    >>> # report.checks["pdf_chain"], report.errors, report.signer

Checklist (each its own check; untrusted input never raises):

1. ``pdf_signature``: the PDF is within a passport's bounds (objects,
   revisions: :func:`verifier.pdf.budget.file_structure_problem`, reason
   ``pdf_too_complex``), parses and holds a signature field with a CMS
   signature whose value verifies with the signer certificate's key.
2. ``pdf_integrity``: the digest over the signed byte range matches, the
   byte range covers the whole file or the whole signed revision, and no
   bytes but white space follow the last revision (``trailing_data``).
3. ``pdf_chain``: the signer certificate chains to a CSCA of the trust
   material (or is itself a trusted DSC), with digitalSignature key usage
   and, when it has an EKU extension, a DCC EKU (hcert 5.1.1), valid now
   (the validation time): /M is only the signer's claim, which whoever
   holds an expired DSC's key can backdate (issue 13); the claim must not
   be after the validation time. A valid signature timestamp (6.) proves
   the time instead.
4. ``pdf_revocation``: not revoked according to the CRLs embedded in the
   document's DSS at the signing time (hard fail: no CRL for a CA-issued
   signer is a failure), nor in the trust list (revoked DSCs).
5. ``pdf_modifications``: the document is certified (DocMDP), and nothing
   was appended after the signed revision other than validation data
   (pyHanko's difference analysis, ISO 32000-2 section 12.8.2.2, then the
   stricter whitelist of :mod:`verifier.pdf.revisions`: pyHanko lets
   metadata updates through).
6. ``pdf_timestamp`` (only when the signature carries a signature
   timestamp, PAdES B-T/B-LT, ETSI EN 319 142-1 section 5.3): the token's
   imprint is the hash of this signature value, its CMS signature verifies,
   the TSA certificate has id-kp-timeStamping (alone, critical: RFC 3161
   section 2.3), chains to a CSCA of the trust material and is not revoked
   per the embedded CRLs (a CRL required) at the timestamp's genTime. It is
   checked first: when it is valid, its genTime, not the signer's /M claim,
   is the time at which the signer certificate must be valid (3.); an
   invalid one proves nothing (and fails the verdict). The signer JSON gets
   ``pades_level``: ``B-LT`` (valid timestamp and embedded revocation data
   that suffice) or ``B-B`` (no timestamp), None when any PDF check fails;
   ``signing_time_proven`` and ``certificate_checked_at`` say what is proven.
7. ``pdf_archive_timestamp`` (only when the document carries document
   timestamps, PAdES B-LTA, ETSI EN 319 142-1 section 5.5): each comes after
   the signature, is intact, covers the document up to it, and its TSA has
   id-kp-timeStamping, chains to a CSCA and is not revoked per the embedded
   CRLs at its genTime. ``pades_level`` is then ``B-LTA`` (with a valid B-LT
   signature); the signer JSON gets ``archive_timestamp`` (the last genTime).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.fields import SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko.sign.validation.generic_cms import collect_timing_info
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)

from verifier.pdf.budget import file_structure_problem
from verifier.pdf.report import (  # noqa: F401  (CheckError, MAX_PDF_BYTES: public here too)
    CLOCK_SKEW,
    MAX_PDF_BYTES,
    PDF_CHECKS,
    CheckError,
    SignatureReport,
)
from verifier.pdf.report import Report as _Report
from verifier.pdf.report import aware as _aware
from verifier.pdf.report import safe_signer as _safe_signer
from verifier.pdf.report import trailing_data as _trailing_data
from verifier.pdf.revisions import update_problem
from verifier.pdf.timestamp import (
    SignatureTimestamp,
    TimestampFormatError,
    read_signature_timestamp,
    tsa_usage_problem,
)
from verifier.trust import DCC_EKU_TYPES, TrustStore

_CRL_REQUIRED = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CRL_REQUIRED,
    )
)
_NO_REVOCATION = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.NO_CHECK,
        intermediate_ca_cert_rule=RevocationCheckingRule.NO_CHECK,
    )
)
_REVOCATION_INDICATIONS = {"REVOKED", "REVOKED_NO_POE", "REVOKED_CA_NO_POE"}
#: The signer must be a document signer: digitalSignature, and when the
#: certificate has an EKU extension, a DCC EKU (hcert 5.1.1), so that other
#: CSCA-issued keys (trust-list signer, TSA) cannot sign passports.
_SIGNER_USAGE = KeyUsageConstraints(
    key_usage={"digital_signature"},
    extd_key_usage=frozenset(DCC_EKU_TYPES),
    explicit_extd_key_usage_required=False,
)


def _trust_roots(trust: TrustStore) -> list[asn1_x509.Certificate]:
    """The CSCAs; only without any CSCA, DSC files given directly (as EU apps trust them)."""
    if trust.anchors:
        return [asn1_x509.Certificate.load(a.der) for a in trust.anchors]
    return [asn1_x509.Certificate.load(e.info.der) for e in trust.dscs if not e.listed]


def _embedded_crls(reader: PdfFileReader) -> list[asn1_crl.CertificateList]:
    """CRLs of the Document Security Store (PAdES B-LT validation data)."""
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except Exception:  # no DSS, or a broken one: no embedded revocation data
        return []
    out = []
    for ref in list(dss.crls)[:32]:
        try:
            out.append(asn1_crl.CertificateList.load(ref.get_object().data))
        except Exception:
            continue
    return out


def _embedded_certs(reader: PdfFileReader) -> list[asn1_x509.Certificate]:
    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except Exception:
        return []
    out = []
    for value in list(dss.certs.values())[:32]:
        try:
            if isinstance(value, asn1_x509.Certificate):
                out.append(value)
            else:
                out.append(asn1_x509.Certificate.load(value.get_object().data))
        except Exception:
            continue
    return out


def check_pdf_signature(data: bytes, trust: TrustStore, *, now: dt.datetime) -> SignatureReport:
    """Validate the (first) signature of a PDF offline; never raises."""
    report = _Report()
    try:
        return _check(data, trust, _aware(now), report)
    except Exception as err:  # untrusted input: pyHanko raises many types
        report.fail("pdf_signature", "pdf_malformed", f"cannot validate the PDF ({type(err).__name__})")
        return report.done()


def _check(data: bytes, trust: TrustStore, now: dt.datetime, report: _Report) -> SignatureReport:
    if len(data) > MAX_PDF_BYTES:
        report.fail("pdf_signature", "pdf_too_large", "PDF is larger than 20 MB")
        return report.done()
    if not data.startswith(b"%PDF-"):
        report.fail("pdf_signature", "pdf_malformed", "not a PDF file")
        return report.done()
    problem = file_structure_problem(data)  # before pyHanko spends minutes on it
    if problem is not None:
        report.fail("pdf_signature", *problem)
        return report.done()
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        sigs, broken_archives = _collect_signatures(reader)
    except Exception as err:
        report.fail("pdf_signature", "pdf_malformed", f"cannot parse the PDF ({type(err).__name__})")
        return report.done()
    regular = [s for s in sigs if s.sig_object_type != "/DocTimeStamp"]
    if not regular:
        report.fail("pdf_signature", "no_signature", "the PDF carries no signature")
        return report.done()
    sig = min(regular, key=lambda s: s.signed_revision)
    archives = [s for s in sigs if s.sig_object_type == "/DocTimeStamp"]
    # 1. signing time: the signer's claim, bounded by the validation time
    claimed = sig.self_reported_timestamp
    signing_time = _aware(claimed) if claimed is not None else None
    # Nothing proves /M (the signer's claim): without a valid signature
    # timestamp the DSC must be valid now (docs/pdf.md, "What a checkpoint
    # accepts"); revocation is read from the embedded CRLs at the claim
    # (pass 2) and from the trust list as it is now.
    moment = now
    revocation_moment = now
    if signing_time is not None:
        if signing_time > now + CLOCK_SKEW:
            report.fail("pdf_chain", "signed_after_validation_time",
                        f"signing time {signing_time.isoformat()} is after the validation time")
        revocation_moment = min(signing_time, now)
        try:
            not_before = _aware(sig.signer_cert.not_valid_before)
        except Exception:
            not_before = None
        if not_before is not None and signing_time < not_before - CLOCK_SKEW:
            report.fail("pdf_chain", "dsc_not_yet_valid",
                        f"signing time {signing_time.isoformat()} is before the signer "
                        "certificate's validity")  # fmt: skip
    # 6. a signature timestamp: a valid one proves the signing time
    ts: SignatureTimestamp | None = None
    try:
        ts = read_signature_timestamp(sig.signer_info)
    except TimestampFormatError as err:
        report.fail("pdf_timestamp", "timestamp_malformed", str(err))
    if ts is not None:
        report.checks["pdf_timestamp"] = None
        if ts.gen_time > now + CLOCK_SKEW:
            report.fail("pdf_timestamp", "timestamp_after_validation_time",
                        f"the timestamp {ts.gen_time.isoformat()} is after the validation time")
    crls = _embedded_crls(reader)
    certs = _embedded_certs(reader)
    roots = _trust_roots(trust)

    def context(policy: CertRevTrustPolicy, at: dt.datetime) -> ValidationContext:
        return ValidationContext(
            trust_roots=roots, other_certs=certs, crls=crls, allow_fetching=False,
            revinfo_policy=policy, moment=at,
        )

    # 6. the timestamp first (TSA chain, EKU, a CRL required, at its genTime):
    # only a valid one replaces the signer's claim as the time to check the DSC at
    ts_context: ValidationContext | None = None
    if ts is not None:
        ts_context = context(_CRL_REQUIRED, min(ts.gen_time, now))
        if report.checks.get("pdf_timestamp") is None:
            try:
                timing = asyncio.run(collect_timing_info(
                    sig.signer_info, ts_context, raw_digest=sig.compute_digest
                ))
            except Exception as err:  # hostile token: pyHanko raises many types
                report.fail("pdf_timestamp", "timestamp_malformed",
                            f"the timestamp token cannot be validated ({type(err).__name__})")
            else:
                _map_timestamp(timing.get("timestamp_validity"), ts, report)
        if report.checks.get("pdf_timestamp") is True:
            moment = revocation_moment = min(ts.gen_time, now)
    usage = _SIGNER_USAGE
    try:
        # pass 1: integrity, signature, chain and validity, modifications
        status = validate_pdf_signature(
            sig, context(_NO_REVOCATION, moment), ts_validation_context=ts_context,
            key_usage_settings=usage,
        )  # fmt: skip
    except Exception as err:
        report.fail("pdf_signature", "signature_unverifiable",
                    f"the signature could not be validated ({type(err).__name__})")
        return report.done(_safe_signer(sig, signing_time, ts, report, moment), signing_time)
    _map_status(status, sig, trust, report)
    _strict_updates(reader, sig, report)
    _trailing_data(data, report)
    if report.checks["pdf_chain"] is True and report.checks["pdf_revocation"] is None:
        # pass 2: revocation, a CRL required for every CA-issued certificate
        # whether or not it names a distribution point (DSCs issued before issue 13 name none)
        try:
            revocation = validate_pdf_signature(
                sig, context(_CRL_REQUIRED, revocation_moment), ts_validation_context=ts_context,
                key_usage_settings=usage, skip_diff=True,
            )  # fmt: skip
        except Exception as err:
            report.fail("pdf_revocation", "revocation_unknown",
                        f"revocation could not be checked ({type(err).__name__})")
        else:
            _map_revocation(revocation, report)
    _trust_list_revocation(sig, trust, report)
    archive_time = _check_archives(archives, sig, now, context, report)
    if broken_archives:
        report.fail("pdf_archive_timestamp", "archive_timestamp_invalid",
                    "a document timestamp cannot be read")
    info = _safe_signer(sig, signing_time, ts, report, moment)
    if info is not None:
        info["archive_timestamp"] = archive_time.isoformat() if archive_time else None
    return report.done(info, signing_time)


def _collect_signatures(reader: PdfFileReader) -> tuple[list[Any], int]:
    """The signatures in signing order (as pyHanko's ``embedded_signatures``), and how many
    document timestamps could not be read (a broken token must not hide the signature)."""
    out = []
    broken = 0
    known = {str(v.value) for v in SigSeedSubFilter}
    for fq_name, sig_obj, sig_field in enumerate_sig_fields(reader, filled_status=True):
        obj = sig_obj.get_object()
        if str(obj.get("/SubFilter", "")) not in known:
            continue  # as pyHanko: an unsupported SubFilter is ignored
        try:
            out.append(EmbeddedPdfSignature(reader, sig_field, fq_name))
        except Exception:
            if obj.get("/Type") != "/DocTimeStamp":
                raise
            broken += 1
    return sorted(out, key=lambda s: s.signed_revision), broken


def _check_archives(
    archives: list[Any], sig: Any, now: dt.datetime, context: Any, report: _Report
) -> dt.datetime | None:
    """7. document timestamps after the signature (B-LTA; ETSI EN 319 142-1 5.5): each
    intact, by a TSA of the trust material (id-kp-timeStamping, a CRL required at its
    genTime), covering the document up to it; returns the last one's genTime."""
    last: dt.datetime | None = None
    for archive in sorted(archives, key=lambda s: s.signed_revision)[:8]:
        report.checks.setdefault("pdf_archive_timestamp", None)
        if archive.signed_revision <= sig.signed_revision:
            report.fail("pdf_archive_timestamp", "archive_timestamp_invalid",
                        "a document timestamp comes before the signature")
            continue
        try:
            info = archive.signed_data["encap_content_info"]["content"].parsed
            gen_time = _aware(info["gen_time"].native)
            tsa_cert = archive.signer_cert
            status = validate_pdf_timestamp(
                archive, validation_context=context(_CRL_REQUIRED, min(gen_time, now)), skip_diff=True
            )
        except Exception as err:  # hostile token: pyHanko raises many types
            report.fail("pdf_archive_timestamp", "archive_timestamp_invalid",
                        f"the document timestamp cannot be validated ({type(err).__name__})")
            continue
        whole = status.coverage in (SignatureCoverageLevel.ENTIRE_FILE,
                                    SignatureCoverageLevel.ENTIRE_REVISION)  # fmt: skip
        if gen_time > now + CLOCK_SKEW:
            report.fail("pdf_archive_timestamp", "timestamp_after_validation_time",
                        f"the document timestamp {gen_time.isoformat()} is after the validation time")
        elif not status.intact or not status.valid or not whole:
            report.fail("pdf_archive_timestamp", "archive_timestamp_invalid",
                        "the document timestamp does not match the document or its TSA's key")
        elif (problem := tsa_usage_problem(tsa_cert)) is not None:
            report.fail("pdf_archive_timestamp", "tsa_not_timestamping",
                        f"the document timestamp's TSA may not sign timestamps: {problem}")
        elif not status.trusted:
            indic = str(getattr(status.trust_problem_indic, "name", None))
            reason = "tsa_revoked" if indic in _REVOCATION_INDICATIONS else "archive_timestamp_untrusted"
            report.fail("pdf_archive_timestamp", reason,
                        f"the document timestamp's TSA is not trusted at its time ({indic})")
        else:
            last = gen_time
    if "pdf_archive_timestamp" in report.checks and not any(
        e.check == "pdf_archive_timestamp" for e in report.errors
    ):
        report.checks["pdf_archive_timestamp"] = True
    return last


def _strict_updates(reader: PdfFileReader, sig: Any, report: _Report) -> None:
    """5. DocMDP P=1: after the signed revision, validation data only (stricter than pyHanko)."""
    if report.checks["pdf_modifications"] is not True:
        return
    try:
        problem = update_problem(reader, sig.signed_revision)
    except Exception as err:  # hostile revisions: pyHanko raises many types
        problem = f"the appended revisions cannot be read ({type(err).__name__})"
    if problem is not None:
        report.fail("pdf_modifications", "modified_after_signing",
                    f"the certified document was changed after it was signed: {problem}")


def _map_timestamp(tv: Any, ts: SignatureTimestamp, report: _Report) -> None:
    """6. the signature timestamp (pyHanko's TimestampSignatureStatus + RFC 3161 2.3 EKU)."""
    if not ts.imprint_matches:
        report.fail("pdf_timestamp", "timestamp_imprint_mismatch",
                    "the timestamp is not over this signature's value")
    elif tv is None:
        report.fail("pdf_timestamp", "timestamp_malformed", "the timestamp token cannot be validated")
    elif not tv.intact or not tv.valid:
        report.fail("pdf_timestamp", "timestamp_bad_signature",
                    "the timestamp token was altered: its signature does not verify with the "
                    "TSA's key")
    elif ts.tsa_cert is None:
        report.fail("pdf_timestamp", "tsa_untrusted",
                    "the timestamp token does not carry the TSA's certificate")
    elif (problem := tsa_usage_problem(ts.tsa_cert)) is not None:
        report.fail("pdf_timestamp", "tsa_not_timestamping",
                    f"the TSA certificate may not sign timestamps: {problem}")
    elif not tv.trusted:
        indic = str(getattr(tv.trust_problem_indic, "name", None))
        if indic in _REVOCATION_INDICATIONS:
            report.fail("pdf_timestamp", "tsa_revoked", "the TSA certificate is revoked (CRL)")
        elif indic in ("EXPIRED", "NOT_YET_VALID", "OUT_OF_BOUNDS_NO_POE"):
            report.fail("pdf_timestamp", "tsa_expired",
                        f"the TSA certificate is not valid at the timestamp's time ({indic})")
        elif indic == "NO_CERTIFICATE_CHAIN_FOUND":
            report.fail("pdf_timestamp", "tsa_untrusted",
                        "the TSA certificate does not chain to a CSCA of the trust material")
        else:
            report.fail("pdf_timestamp", "tsa_revocation_unknown",
                        f"the TSA certificate is not trusted at the timestamp's time ({indic}); "
                        "no CRL valid then for it is embedded?")
    else:
        report.checks["pdf_timestamp"] = True


def _map_status(status: Any, sig: Any, trust: TrustStore, report: _Report) -> None:
    # 2. integrity and coverage
    coverage = status.coverage
    whole = coverage in (SignatureCoverageLevel.ENTIRE_FILE, SignatureCoverageLevel.ENTIRE_REVISION)
    if not status.intact:
        report.fail("pdf_integrity", "digest_mismatch",
                    "the document bytes do not match the signed digest")
    elif not whole:
        report.fail("pdf_integrity", "partial_coverage",
                    "the signature does not cover the whole signed revision")
    else:
        report.checks["pdf_integrity"] = True
    # 1. cryptographic validity
    if status.valid:
        report.checks["pdf_signature"] = True
    elif status.intact:
        report.fail("pdf_signature", "bad_signature",
                    "the CMS signature does not verify with the signer's key")
    # 3. chain and validity (revocation: pass 2)
    indic = getattr(status.trust_problem_indic, "name", None)
    if status.trusted:
        if report.checks["pdf_chain"] is None:
            report.checks["pdf_chain"] = True
    elif indic is None and not status.valid:
        pass  # crypto failure reported above; chain not evaluated
    else:
        reason = {
            "EXPIRED": "dsc_expired",
            "NOT_YET_VALID": "dsc_not_yet_valid",
            "OUT_OF_BOUNDS_NO_POE": "dsc_expired",
            "NO_CERTIFICATE_CHAIN_FOUND": "dsc_untrusted",
        }.get(str(indic), "dsc_untrusted")
        report.fail("pdf_chain", reason,
                    f"the signer certificate is not trusted at the time it is checked at ({indic}): "
                    "the validation time, or a signature timestamp's time")
    # 5. modifications after signing
    if sig.docmdp_level is None:
        report.fail("pdf_modifications", "not_certified",
                    "the passport is not a certified (DocMDP) document")
    elif coverage == SignatureCoverageLevel.ENTIRE_FILE:
        report.checks["pdf_modifications"] = True
    elif coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        level = status.modification_level
        if status.docmdp_ok and level in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES):
            report.checks["pdf_modifications"] = True
        else:
            name = getattr(level, "name", "unknown")
            report.fail("pdf_modifications", "modified_after_signing",
                        f"the document was changed after it was signed ({name})")
    else:
        report.fail("pdf_modifications", "modified_after_signing",
                    "the signature does not cover the document as it is")


def _map_revocation(status: Any, report: _Report) -> None:
    """4. the embedded CRLs: the signer certificate is not revoked."""
    indic = getattr(status.trust_problem_indic, "name", None)
    if status.trusted:
        report.checks["pdf_revocation"] = True
    elif indic in _REVOCATION_INDICATIONS:
        report.fail("pdf_revocation", "dsc_revoked", "the signer certificate is revoked (CRL)")
    else:
        report.fail("pdf_revocation", "revocation_unknown",
                    "no CRL valid at the signing time for the signer certificate is embedded")


def _trust_list_revocation(sig: Any, trust: TrustStore, report: _Report) -> None:
    """4. the trust list's revoked DSCs (newer than the CRL the signer embedded)."""
    if report.checks["pdf_revocation"] is False:
        return
    try:
        der = sig.signer_cert.dump()
    except Exception:
        return
    for entry in trust.dscs:
        if entry.info.der == der and entry.revoked_at is not None:
            report.fail("pdf_revocation", "dsc_revoked",
                        "the signer certificate is revoked in the trust list")
            return
