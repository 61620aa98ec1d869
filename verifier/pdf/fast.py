"""A passport's signature checked without pyHanko's validation, when that is provably enough.

    >>> from verifier.pdf.fast import fast_signature_report
    >>> # report = fast_signature_report(pdf_bytes, trust, now=now)
    >>> # None: not provably simple, run verifier.pdf.signature.check_pdf_signature

Importing pyHanko's validation (``pyhanko.sign``, ``pyhanko_certvalidator``)
and running its two validation passes cost a ``verifier pdf`` process about
0.1 s of a 0.36 s start (issue 13). A passport as the signer makes it does
not need them: one signature whose ``/ByteRange`` covers the whole file but
its ``/Contents`` hole (pyHanko's ``ENTIRE_FILE`` coverage: nothing was
appended after signing, so there is nothing for the modification analysis
to judge), a CMS SignedData with one signer, the DSC issued directly by a
CSCA of the trust material, the CSCA's CRL in the document's DSS.

This module **only ever accepts**. It answers a report with every PDF check
true, exactly the one :func:`verifier.pdf.signature.check_pdf_signature`
gives such a file, or None, and None whenever anything is outside the
simple case or fails, so that pyHanko's path decides and words every
rejection. Each condition below is the same as, or stricter than, what
pyHanko 0.38 and pyhanko-certvalidator check for that file
(``tests/pdf/test_fast_path.py`` runs both paths over every vector and
requires identical verdicts):

1. the file is within the bounds (:func:`~verifier.pdf.budget.file_structure_problem`),
   not encrypted, and ends at its last ``%%EOF`` (white space aside);
2. the form holds exactly one filled signature field (no ``/Kids``, no
   seed values, no ``/Lock``), its value a ``/Sig`` dictionary with
   SubFilter ``ETSI.CAdES.detached`` or ``adbe.pkcs7.detached``, and no
   document timestamp (B-LTA goes to pyHanko);
3. ``/ByteRange`` is ``[0 a b c]`` with ``b = a + len(/Contents)``,
   ``b + c`` the file size, the hole ``<`` .. ``>``;
4. DocMDP P=1 (``/Reference`` holds exactly one ``/DocMDP`` transform);
5. the CMS: one SignerInfo (its certificate the only one it names), no
   CRLs inside the CMS, detached ``data``, signed attributes
   content-type (``data``), message-digest (equal to the digest of the two
   ranges) and optionally the ESS signing-certificate (v2) matching the
   signer certificate, nothing else; SHA-2 digest, ECDSA, RSA PKCS#1 v1.5 or
   RSASSA-PSS (MGF1) with the same hash; the signature verifies with the certificate's key;
   unsigned attributes: none, or one signature timestamp;
6. /M (the claim) not after the validation time nor before the DSC's
   notBefore (5 minutes of clock skew, as :mod:`verifier.pdf.signature`);
7. a signature timestamp (B-LT), when present: imprint over this signature
   value, TSTInfo signed (the same attribute rules) by a TSA whose
   certificate has id-kp-timeStamping alone and critical, is issued by a
   CSCA and valid at genTime, a fresh CSCA CRL from the DSS not listing it;
   genTime then is the time the DSC is checked at, else now;
8. the DSC: digitalSignature, a DCC EKU (pyHanko requires an EKU extension
   when one is asked for), not a CA, no critical extension but key usage,
   basic constraints and EKU, no policy or name constraints, a SHA-2
   signature by a CSCA of the trust material (itself a CA with
   keyCertSign and cRLSign, only basic constraints and key usage critical,
   valid then), valid at that time;
9. revocation: every CRL of the DSS issued by that CSCA verifies with its
   key, has no critical or partitioning extension, is fresh at the
   signing time (this update <= time <= next update) and does not list the
   DSC; at least one such CRL; the trust list does not list the DSC as
   revoked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms, core, tsp
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from verifier.pdf.budget import file_structure_problem, reader_for
from verifier.pdf.report import (
    CLOCK_SKEW,
    MAX_PDF_BYTES,
    PDF_CHECKS,
    Report,
    SignatureReport,
    aware,
    safe_signer,
    trailing_data,
)
from verifier.pdf.timestamp import TimestampFormatError, read_signature_timestamp, tsa_usage_problem
from verifier.trust import DCC_EKU_TYPES, TrustStore

_SUBFILTERS = frozenset({"/ETSI.CAdES.detached", "/adbe.pkcs7.detached"})
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()
}  # fmt: skip
_ECDSA = {"sha256_ecdsa": "sha256", "sha384_ecdsa": "sha384", "sha512_ecdsa": "sha512"}
_RSA = {"sha256_rsa": "sha256", "sha384_rsa": "sha384", "sha512_rsa": "sha512"}
_CURVES = frozenset({"secp256r1", "secp384r1", "secp521r1"})
_EE_CRITICAL = frozenset({"key_usage", "basic_constraints", "extended_key_usage"})
_CA_CRITICAL = frozenset({"key_usage", "basic_constraints"})
_CONSTRAINTS = frozenset(
    {"name_constraints", "policy_constraints", "policy_mappings", "inhibit_any_policy"}
)
_CRL_PARTITIONING = frozenset({"issuing_distribution_point", "delta_crl_indicator", "freshest_crl"})
_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_SIGNING_CERT_V1 = "1.2.840.113549.1.9.16.2.12"
_SIGNING_CERT_V2 = "1.2.840.113549.1.9.16.2.47"
_TIMESTAMP_TOKEN = "1.2.840.113549.1.9.16.2.14"
_MAX_CRLS = 32


class _Decline(Exception):
    """Not provably the simple case: pyHanko's path decides."""


@dataclass(frozen=True)
class _Anchor:
    asn1: asn1_x509.Certificate
    cert: x509.Certificate
    der: bytes


@dataclass(frozen=True)
class _SignatureView:
    """What :func:`verifier.pdf.report.safe_signer` reads of pyHanko's EmbeddedPdfSignature."""

    signer_cert: asn1_x509.Certificate
    sig_object: Any
    field_name: str


def fast_signature_report(data: bytes, trust: TrustStore, *, now: Any) -> SignatureReport | None:
    """The report of a provably simple valid signature, else None; never raises."""
    try:
        return _fast(data, trust, aware(now))
    except Exception:  # _Decline, or anything unexpected on untrusted input
        return None


def _require(condition: object) -> None:
    if not condition:
        raise _Decline


def _fast(data: bytes, trust: TrustStore, now: Any) -> SignatureReport:
    from pyhanko.pdf_utils import generic

    # 1. bounds, encryption, nothing after the last %%EOF
    _require(len(data) <= MAX_PDF_BYTES and data.startswith(b"%PDF-"))
    _require(file_structure_problem(data) is None)
    report = Report()
    trailing_data(data, report)
    _require(not report.errors)
    anchors = _anchors(trust)
    reader = reader_for(data)  # verify_pdf's page budget and vector QR read it too
    _require("/Encrypt" not in reader.trailer_view)
    # 2. exactly one filled signature field, a plain /Sig value
    field, sig_ref = _only_signature(reader, generic)
    sig_obj = sig_ref.get_object()
    _require(isinstance(sig_obj, generic.DictionaryObject))
    _require(sig_obj.get("/Type", "/Sig") == "/Sig")
    _require(str(sig_obj.get("/SubFilter", "")) in _SUBFILTERS)
    # 3. the byte range: the whole file but the /Contents hole
    contents = sig_obj.raw_get("/Contents")
    _require(isinstance(contents, generic.ByteStringObject | generic.TextStringObject))
    der = contents.original_bytes
    byte_range = sig_obj.raw_get("/ByteRange")
    _require(isinstance(byte_range, generic.ArrayObject) and len(byte_range) == 4)
    _require(all(type(v) is generic.NumberObject for v in byte_range))
    start, len1, start2, len2 = (int(v) for v in byte_range)
    _require(start == 0 and len1 > 0 and len2 >= 0)
    _require(start2 == len1 + 2 * len(der) + 2 and start2 + len2 == len(data))
    _require(data[len1 : len1 + 1] == b"<" and data[start2 - 1 : start2] == b">")
    # 4. certified, DocMDP P=1
    _require(_docmdp_p1(sig_obj, generic))
    # 5. the CMS signature over the byte ranges
    _, signer_info, cert = _signed_data(der, expect="data")
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    _require(digest_name in _HASHES)
    digest = hashlib.new(digest_name)
    digest.update(memoryview(data)[:len1])
    digest.update(memoryview(data)[start2 : start2 + len2])
    _check_signer_info(signer_info, cert, "data", digest.digest())
    unsigned = signer_info["unsigned_attrs"]
    unsigned_types = [] if isinstance(unsigned, core.Void) else [a["type"].dotted for a in unsigned]
    _require(unsigned_types in ([], [_TIMESTAMP_TOKEN]))
    # 6. the signer's claimed time (/M; a signing-time attribute was refused in 5.)
    signing_time = None
    if "/M" in sig_obj:
        signing_time = aware(generic.parse_pdf_date(sig_obj["/M"], strict=False))
        _require(signing_time <= now + CLOCK_SKEW)
        _require(signing_time >= aware(cert.not_valid_before) - CLOCK_SKEW)
    crls = _dss_crls(reader, generic)
    # 7. the signature timestamp proves the time
    moment = revocation_moment = now
    if signing_time is not None:
        revocation_moment = min(signing_time, now)
    try:
        ts = read_signature_timestamp(signer_info)
    except TimestampFormatError:
        raise _Decline from None
    _require((ts is None) == (not unsigned_types))
    if ts is not None:
        _require(ts.imprint_matches and ts.gen_time <= now + CLOCK_SKEW)
        tsa_cert = ts.tsa_cert
        if tsa_cert is None or tsa_usage_problem(tsa_cert) is not None:
            raise _Decline
        token = signer_info["unsigned_attrs"][0]["values"][0]
        _require(token["content_type"].native == "signed_data")
        tst_data = token["content"]
        _require(len(tst_data["signer_infos"]) == 1 and _no_crls(tst_data))
        # the one certificate the token's SignerInfo names is the TSA certificate read above
        _require(_signer_cert(tst_data, tst_data["signer_infos"][0]).dump() == tsa_cert.dump())
        tst_info = tst_data["encap_content_info"]["content"]
        _require(isinstance(tst_info, core.ParsableOctetString))
        tst_signer = tst_data["signer_infos"][0]
        tst_digest = tst_signer["digest_algorithm"]["algorithm"].native
        _require(tst_digest in _HASHES)
        _check_signer_info(tst_signer, tsa_cert, "tst_info",
                           hashlib.new(tst_digest, bytes(tst_info)).digest())  # fmt: skip
        _require(isinstance(tst_signer["unsigned_attrs"], core.Void))
        at = min(ts.gen_time, now)
        anchor = _issuer(tsa_cert, anchors, at)
        _require_not_revoked(tsa_cert, anchor, crls, at)
        moment = revocation_moment = at
    # 8. the DSC: a document signer of a trusted CSCA, valid at that time
    _require(_signer_usage_ok(cert))
    anchor = _issuer(cert, anchors, moment)
    # 9. revocation: the CSCA's CRL at the signing time, the trust list
    _require_not_revoked(cert, anchor, crls, revocation_moment)
    for entry in trust.dscs:
        _require(not (entry.info.der == cert.dump() and entry.revoked_at is not None))
    for check in PDF_CHECKS:
        report.checks[check] = True
    if ts is not None:
        report.checks["pdf_timestamp"] = True
    view = _SignatureView(signer_cert=cert, sig_object=sig_obj, field_name=str(field["/T"]))
    info = safe_signer(view, signing_time, ts, report, moment)
    _require(info is not None)
    return report.done(info, signing_time)


def _anchors(trust: TrustStore) -> list[_Anchor]:
    """The CSCAs (the slow path trusts DSC files directly only without any CSCA)."""
    _require(trust.anchors)
    seen: dict[bytes, _Anchor] = {}
    for a in trust.anchors:
        if a.der not in seen:
            seen[a.der] = _Anchor(asn1_x509.Certificate.load(a.der), x509.load_der_x509_certificate(a.der),
                                  a.der)  # fmt: skip
    return list(seen.values())


def _only_signature(reader: Any, generic: Any) -> tuple[Any, Any]:
    """The one filled signature field of a flat form, and its value's reference."""
    form = reader.root.get("/AcroForm")
    form = form.get_object() if isinstance(form, generic.IndirectObject) else form
    _require(isinstance(form, generic.DictionaryObject))
    fields = form.get("/Fields")
    fields = fields.get_object() if isinstance(fields, generic.IndirectObject) else fields
    _require(isinstance(fields, generic.ArrayObject) and len(fields) <= 100)
    found = []
    for item in fields:
        field = item.get_object()
        _require(isinstance(field, generic.DictionaryObject) and "/Kids" not in field)
        if field.get("/FT") == "/Sig" and "/V" in field:
            found.append(field)
    _require(len(found) == 1)
    field = found[0]
    _require("/SV" not in field and "/Lock" not in field and "/T" in field)
    value = field.raw_get("/V")
    _require(isinstance(value, generic.IndirectObject))
    return field, value


def _docmdp_p1(sig_obj: Any, generic: Any) -> bool:
    refs = sig_obj.get("/Reference")
    refs = refs.get_object() if isinstance(refs, generic.IndirectObject) else refs
    if not isinstance(refs, generic.ArrayObject) or len(refs) != 1:
        return False
    ref = refs[0].get_object()
    if not isinstance(ref, generic.DictionaryObject) or ref.get("/TransformMethod") != "/DocMDP":
        return False
    params = ref.get("/TransformParams")
    params = params.get_object() if isinstance(params, generic.IndirectObject) else params
    if not isinstance(params, generic.DictionaryObject):
        return False
    if "/P" not in params:
        return False
    perm = params.raw_get("/P")
    return type(perm) is generic.NumberObject and int(perm) == 1


def _signed_data(der: bytes, *, expect: str) -> tuple[Any, Any, asn1_x509.Certificate]:
    info = cms.ContentInfo.load(der)
    _require(info["content_type"].native == "signed_data")
    signed_data = info["content"]
    _require(len(signed_data["signer_infos"]) == 1)
    eci = signed_data["encap_content_info"]
    _require(eci["content_type"].native == expect and isinstance(eci["content"], core.Void))
    _require(_no_crls(signed_data))
    signer_info = signed_data["signer_infos"][0]
    return signed_data, signer_info, _signer_cert(signed_data, signer_info)


def _no_crls(signed_data: Any) -> bool:
    """No revocation data inside the CMS (only the DSS's CRLs are weighed here)."""
    crls = signed_data["crls"]
    return isinstance(crls, core.Void) or len(crls) == 0


def _same_name(a: Any, b: Any) -> bool:
    """The same encoded name (stricter than RFC 5280's comparison, which asn1crypto does
    slowly: a name that matches only after case folding goes to pyHanko)."""
    return bool(a.chosen.dump() == b.chosen.dump())  # the RDNSequence: no context tag


def _signer_cert(signed_data: Any, signer_info: Any) -> asn1_x509.Certificate:
    sid = signer_info["sid"]
    matches = []
    for choice in signed_data["certificates"] or ():
        _require(choice.name == "certificate")
        cert = choice.chosen
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if _same_name(cert.issuer, ias["issuer"]) and cert.serial_number == ias["serial_number"].native:
                matches.append(cert)
        elif sid.name == "subject_key_identifier" and cert.key_identifier == sid.chosen.native:
            matches.append(cert)
    _require(len(matches) == 1)
    return matches[0]


def _check_signer_info(signer_info: Any, cert: asn1_x509.Certificate, content_type: str,
                       digest: bytes) -> None:  # fmt: skip
    """Signed attributes as pyHanko's validate_sig_integrity reads them, then the signature."""
    attrs = signer_info["signed_attrs"]
    _require(not isinstance(attrs, core.Void))
    by_type: dict[str, Any] = {}
    for attr in attrs:
        oid = attr["type"].dotted
        _require(oid not in by_type and len(attr["values"]) == 1)
        by_type[oid] = attr["values"][0]
    _require(set(by_type) - {_SIGNING_CERT_V1, _SIGNING_CERT_V2} == {_CONTENT_TYPE, _MESSAGE_DIGEST})
    _require(len(set(by_type) & {_SIGNING_CERT_V1, _SIGNING_CERT_V2}) <= 1)
    _require(cms.ContentType.load(by_type[_CONTENT_TYPE].dump()).native == content_type)
    _require(core.OctetString.load(by_type[_MESSAGE_DIGEST].dump()).native == digest)
    for oid, spec in ((_SIGNING_CERT_V1, tsp.SigningCertificate),
                      (_SIGNING_CERT_V2, tsp.SigningCertificateV2)):  # fmt: skip
        if oid in by_type:
            _require(_ess_matches(spec.load(by_type[oid].dump()), cert))
    digest_name = signer_info["digest_algorithm"]["algorithm"].native
    signed = attrs.untag().dump()
    _require(_verify(cert, signer_info["signature_algorithm"], digest_name,
                     signer_info["signature"].native, signed))  # fmt: skip


def _ess_matches(value: Any, cert: asn1_x509.Certificate) -> bool:
    """ESS signing certificate (RFC 2634 / 5035): the first ESSCertID names ``cert``."""
    certid = value["certs"][0]
    algo = "sha1" if isinstance(certid, tsp.ESSCertID) else certid["hash_algorithm"]["algorithm"].native
    if algo not in ("sha1", *_HASHES) or hashlib.new(algo, cert.dump()).digest() != certid["cert_hash"].native:
        return False
    issuer_serial = certid["issuer_serial"]
    if not issuer_serial:
        return True
    names = [n.chosen for n in issuer_serial["issuer"] if n.name == "directory_name"]
    return (len(names) == 1 and _same_name(names[0], cert.issuer)
            and issuer_serial["serial_number"].native == cert.serial_number)  # fmt: skip


def _verify(cert: asn1_x509.Certificate, algorithm: Any, digest_name: str, signature: bytes,
            data: bytes) -> bool:  # fmt: skip
    """ECDSA or RSA PKCS#1 v1.5 with the SignerInfo's SHA-2 digest; anything else declines."""
    name = algorithm["algorithm"].native
    key = x509.load_der_x509_certificate(cert.dump()).public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            _require(_ECDSA.get(name) == digest_name and key.curve.name in _CURVES)
            key.verify(signature, data, ec.ECDSA(_HASHES[digest_name]))
        elif isinstance(key, rsa.RSAPublicKey) and name == "rsassa_pss":
            _require(key.key_size >= 2048)
            key.verify(signature, data, _pss(algorithm["parameters"], digest_name),
                       _HASHES[digest_name])  # fmt: skip
        elif isinstance(key, rsa.RSAPublicKey):
            _require(name in ("rsassa_pkcs1v15", "rsa") or _RSA.get(name) == digest_name)
            _require(key.key_size >= 2048)
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[digest_name])
        else:
            return False
    except InvalidSignature:
        return False
    return True


def _pss(params: Any, digest_name: str) -> padding.PSS:
    """RSASSA-PSS parameters (RFC 4055): the digest's hash, MGF1 with it, trailer 1."""
    mgf = params["mask_gen_algorithm"]
    _require(params["hash_algorithm"]["algorithm"].native == digest_name)
    _require(mgf["algorithm"].native == "mgf1")
    _require(mgf["parameters"]["algorithm"].native == digest_name)
    _require(params["trailer_field"].native == "trailer_field_bc")
    salt = params["salt_length"].native
    _require(isinstance(salt, int) and 0 <= salt <= 64)
    return padding.PSS(mgf=padding.MGF1(_HASHES[digest_name]), salt_length=salt)


def _extensions(cert: asn1_x509.Certificate) -> tuple[set[str], set[str]]:
    """(all extension names, critical ones)."""
    names: set[str] = set()
    critical: set[str] = set()
    for ext in cert["tbs_certificate"]["extensions"] or ():
        name = ext["extn_id"].native
        _require(name not in names)
        names.add(name)
        if ext["critical"].native:
            critical.add(name)
    return names, critical


def _signer_usage_ok(cert: asn1_x509.Certificate) -> bool:
    """digitalSignature, a DCC EKU, not a CA (pyHanko: KeyUsageConstraints, EKU required)."""
    names, critical = _extensions(cert)
    ku = cert.key_usage_value
    eku = cert.extended_key_usage_value
    bc = cert.basic_constraints_value
    return bool(
        critical <= _EE_CRITICAL
        and not names & _CONSTRAINTS
        and ku is not None and "digital_signature" in ku.native
        and eku is not None and bool(set(eku.native) & set(DCC_EKU_TYPES))
        and (bc is None or not bc["ca"].native)
    )  # fmt: skip


def _valid_at(cert: asn1_x509.Certificate, at: Any) -> bool:
    return bool(aware(cert.not_valid_before) <= at <= aware(cert.not_valid_after))


def _issuer(cert: asn1_x509.Certificate, anchors: list[_Anchor], at: Any) -> _Anchor:
    """The one CSCA that signed ``cert`` (SHA-2), both valid at ``at``."""
    names, critical = _extensions(cert)
    _require(critical <= _EE_CRITICAL and not names & _CONSTRAINTS)
    _require(cert["signature_algorithm"].hash_algo in _HASHES and _valid_at(cert, at))
    der = cert.dump()
    child = x509.load_der_x509_certificate(der)  # every call: its warnings are a local run's
    found = [anchor for anchor in anchors
             if _same_name(anchor.asn1.subject, cert.issuer) and _signed_by(child, der, anchor)]  # fmt: skip
    _require(len(found) == 1)
    ca = found[0].asn1
    names, critical = _extensions(ca)
    ku = ca.key_usage_value
    bc = ca.basic_constraints_value
    _require(critical <= _CA_CRITICAL and not names & _CONSTRAINTS and _valid_at(ca, at))
    _require(bc is not None and bc["ca"].native)
    _require(ku is None or {"key_cert_sign", "crl_sign"} <= set(ku.native))
    return found[0]


# The two signature checks of the chain, remembered by the DER bytes they are a pure function
# of (in the daemon, every passport of a health centre has the same DSC, CSCA and CRL), never a
# verdict: what depends on the time (validity, freshness, revocation at a moment) is checked at
# each call, and the certificates and CRLs are still loaded at each call (cryptography's
# warnings about them, e.g. a negative serial number, are shown as in a local run).
_SIGNATURES: dict[tuple[bytes, bytes], bool] = {}
_MAX_SIGNATURES = 256


def _remembered(key: tuple[bytes, bytes], check: Callable[[], bool]) -> bool:
    known = _SIGNATURES.get(key)
    if known is None:
        known = check()
        if len(_SIGNATURES) >= _MAX_SIGNATURES:
            _SIGNATURES.clear()
        _SIGNATURES[key] = known
    return known


def _signed_by(child: x509.Certificate, child_der: bytes, anchor: _Anchor) -> bool:
    """``child`` (whose DER is ``child_der``) carries a valid signature of the anchor's key
    (cryptography's verify_directly_issued_by: also the issuer name, the algorithm)."""

    def check() -> bool:
        try:
            child.verify_directly_issued_by(anchor.cert)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    return _remembered((b"cert:" + child_der, anchor.der), check)


def _crl_signed_by(crl: x509.CertificateRevocationList, crl_der: bytes, anchor: _Anchor) -> bool:
    """The CRL (whose DER is ``crl_der``) carries a valid signature of the anchor's key."""
    return _remembered((b"crl:" + crl_der, anchor.der),
                       lambda: bool(crl.is_signature_valid(anchor.cert.public_key())))  # type: ignore[arg-type]  # fmt: skip


def _dss_crls(reader: Any, generic: Any) -> list[bytes]:
    """The DER of the CRLs in the Document Security Store (ETSI EN 319 142-1 5.4.2)."""
    dss = reader.root.get("/DSS")
    dss = dss.get_object() if isinstance(dss, generic.IndirectObject) else dss
    _require(isinstance(dss, generic.DictionaryObject))
    crls = dss.get("/CRLs")
    crls = crls.get_object() if isinstance(crls, generic.IndirectObject) else crls
    _require(isinstance(crls, generic.ArrayObject) and 0 < len(crls) <= _MAX_CRLS)
    out = []
    for ref in crls:
        stream = ref.get_object()
        _require(isinstance(stream, generic.StreamObject))
        out.append(bytes(stream.data))
    return out


def _require_not_revoked(cert: asn1_x509.Certificate, anchor: _Anchor, crls: list[bytes],
                         at: Any) -> None:  # fmt: skip
    """Every CRL of ``anchor`` verifies, is fresh at ``at`` and does not list ``cert``."""
    fresh = 0
    for der in crls:
        parsed = asn1_crl.CertificateList.load(der)
        if not _same_name(parsed.issuer, cert.issuer):
            continue
        crl = x509.load_der_x509_crl(der)
        _require(_crl_signed_by(crl, der, anchor))
        _require(parsed["signature_algorithm"].hash_algo in _HASHES)
        tbs = parsed["tbs_cert_list"]
        for ext in tbs["crl_extensions"] or ():
            _require(not ext["critical"].native and ext["extn_id"].native not in _CRL_PARTITIONING)
        next_update = tbs["next_update"].native
        _require(next_update is not None)
        _require(aware(tbs["this_update"].native) <= at <= aware(next_update))
        _require(crl.get_revoked_certificate_by_serial_number(cert.serial_number) is None)
        _require(all(e["user_certificate"].native != cert.serial_number
                     for e in tbs["revoked_certificates"] or ()))  # fmt: skip
        fresh += 1
    _require(fresh > 0)
