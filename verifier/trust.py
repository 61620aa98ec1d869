"""Trust material for the offline verifier: DSC files, pinned CSCAs, signed trust lists.

    >>> import datetime as dt
    >>> from verifier.trust import load_trust
    >>> # trust = load_trust(["trustlist.cbor", "csca.pem"], now=dt.datetime.now(dt.UTC))
    >>> # trust = load_trust(["dsc.pem"], now=...)     # EU style: trust DSCs directly

Each ``--trust FILE`` is one of:

* a DSC certificate (PEM, DER or bare base64 DER; a PEM file may hold several),
  trusted directly as EU verifier apps do: signature and key usage are
  checked, not its chain or validity (a revocation named by a loaded trust
  list still applies);
* a CSCA certificate (basicConstraints CA:TRUE): a pinned trust anchor for
  the trust lists of the run. When no trust list is given it is trusted
  as a signing certificate instead, like a DSC file: hcert 1.x Appendix A
  lets a country publish its CSCA as its DSC, and some official EU test
  DSCs are self-signed CA:TRUE certificates;
* a signed trust list (docs/trust-list.md): verified against a pinned CSCA,
  with rollback protection; its DSCs are then checked for chain, validity
  at verification time and revocation (revokedDscs and CRLs), and its
  revokedUvcis apply to every QR.

A certificate that cannot sign a DCC (unreadable DER, a key other than
P-256 or RSA of 2048 bits and more: see :func:`verifier.crypto.dcc_key_problem`)
still enters the store under its kid with a :class:`CertProblem`: a QR naming
that kid gets an invalid verdict with the problem as its reason
(:func:`signature_failure`), never an exception.

CSCAs pinned with ``python -m verifier trust pin`` live in
``<state dir>/pinned/`` and are loaded too. Unusable trust *files* (missing,
unreadable, empty, not a certificate or trust list at all) and trust lists
that fail their checks raise :class:`verifier.errors.TrustError`: a
configuration error, not a verdict.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
    PublicKeyTypes,
)

from verifier import codec
from verifier.crypto import (
    alg_matches_key,
    dcc_key_problem,
    kid_for_certificate,
    pss_salt_mismatch,
    verify_signature,
)
from verifier.errors import CodecError, TrustError
from verifier.util import write_atomic

#: The keys EC and RSA that verify COSE signatures at all (trust lists, DCCs).
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
#: Reason codes (:class:`verifier.result.Reason` values) of :class:`CertProblem`.
DSC_KEY_UNSUPPORTED = "dsc_key_unsupported"
DSC_MALFORMED = "dsc_malformed"

#: hcert 1.x section 5.1.1: EKU OIDs limiting a DSC to DCC types, in the
#: current form and the legacy form (with an extra ``.0``) still found in
#: many EU test DSCs.
DCC_EKU_TYPES: Mapping[str, str] = {
    "1.3.6.1.4.1.1847.2021.1.1": "t",
    "1.3.6.1.4.1.1847.2021.1.2": "v",
    "1.3.6.1.4.1.1847.2021.1.3": "r",
    "1.3.6.1.4.1.0.1847.2021.1.1": "t",
    "1.3.6.1.4.1.0.1847.2021.1.2": "v",
    "1.3.6.1.4.1.0.1847.2021.1.3": "r",
}

#: Trust-list signer EKU (docs/trust-list.md); same value as
#: ``keys.certs.EKU_TRUST_LIST_SIGNER``, copied so the verifier stands alone.
EKU_TRUST_LIST_SIGNER = "2.25.214375089251405394580617312245409632127"

TRUST_LIST_VERSION = 1
_TRUST_LIST_ALGS = (
    codec.CoseAlgorithm.ES256,
    codec.CoseAlgorithm.ES384,
    codec.CoseAlgorithm.PS256,
)
STATE_ENV = "VNDCC_VERIFIER_STATE"
SEQ_FILE = "trustlist-seq.json"
#: The lock of the sequence files, in the same folder.
LOCK_FILE = ".lock"
#: How long a command waits for another process's lock on the state folder before it
#: gives up with ``state_busy`` (a stuck process must not stall the verifier, nor a
#: daemon serving every checkpoint command of its user).
LOCK_WAIT_SECONDS = 5.0
_MAX_TRUST_FILE = 32 * 1024 * 1024
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL)


# --------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class CertProblem:
    """Why a trusted certificate cannot verify any DCC.

    ``reason`` is ``dsc_key_unsupported`` or ``dsc_malformed`` (the
    :class:`verifier.result.Reason` of a QR naming the certificate's kid).
    """

    reason: str
    message: str


@dataclass(frozen=True, kw_only=True)
class CertInfo:
    """What the verifier needs from one X.509 certificate, parsed once.

    ``cert`` is None when ``cryptography``'s strict DER parser refuses the
    certificate (some official EU test DSCs); the fields then come from
    asn1crypto, which is lenient. ``problem`` is set when the certificate
    cannot sign a DCC (:func:`read_certificate`).
    """

    der: bytes
    kid: bytes
    public_key: PublicKeyTypes | None  # None: not readable
    not_before: dt.datetime
    not_after: dt.datetime
    ekus: frozenset[str] | None  # None: no EKU extension
    is_ca: bool
    digital_signature: bool | None  # None: no keyUsage extension
    serial: int
    issuer: bytes  # DER of the issuer Name
    subject: bytes  # DER of the subject Name
    country: str | None
    cert: x509.Certificate | None
    problem: CertProblem | None = None
    #: DCC types this DSC may sign (hcert 5.1.1); None means any type.
    dcc_types: frozenset[str] | None = field(init=False)

    def __post_init__(self) -> None:
        types = frozenset(DCC_EKU_TYPES[o] for o in self.ekus or () if o in DCC_EKU_TYPES)
        object.__setattr__(self, "dcc_types", types or None)

    def valid_at(self, now: dt.datetime) -> bool:
        return self.not_before <= now <= self.not_after

    @property
    def readable(self) -> bool:
        """False for a placeholder of a certificate no parser could read."""
        return self.problem is None or self.problem.reason != DSC_MALFORMED

    def describe(self) -> str:
        """Subject as readable text (for ``trust show``)."""
        if self.problem is not None:
            suffix = f" [{self.problem.reason}: {self.problem.message}]"
        else:
            suffix = ""
        return self._subject_text() + suffix

    def _subject_text(self) -> str:
        if not self.subject:
            return "(unreadable certificate)"
        try:
            from asn1crypto import x509 as asn1_x509  # imported when needed: ~8 ms of every start

            return str(asn1_x509.Name.load(self.subject).human_friendly)
        except Exception:  # display only
            return self.subject.hex()


def read_certificate(der: bytes) -> CertInfo:
    """Parse a trusted DER certificate; never raises on its content.

    A certificate that cannot sign a DCC comes back with ``problem`` set:
    ``dsc_malformed`` when neither ``cryptography`` nor asn1crypto can read
    it (the kid, a hash of the DER, is still known), ``dsc_key_unsupported``
    when its key is not one hcert 1.x section 3.3.2 allows.
    """
    try:
        return _parse_strict(der)
    except Exception:  # cryptography's strict parser: fall back to asn1crypto
        pass
    try:
        return _parse_lenient(der)
    except Exception as err:  # asn1crypto raises many types
        return _malformed(der, f"not a readable X.509 certificate ({type(err).__name__})")


def parse_certificate(der: bytes) -> CertInfo:
    """Like :func:`read_certificate`, but raises ``TrustError`` for a certificate
    that is unreadable (``certificate_invalid``) or has a key that is neither EC
    nor RSA (``certificate_key_unsupported``): for the trust-list signer, pinned
    CSCAs and the signer's own DSC check.
    """
    info = read_certificate(der)
    if info.problem is not None and info.problem.reason == DSC_MALFORMED:
        raise TrustError("certificate_invalid", info.problem.message)
    if not isinstance(info.public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise TrustError("certificate_key_unsupported", "only EC and RSA keys are supported")
    return info


def _malformed(der: bytes, message: str) -> CertInfo:
    never = dt.datetime.min.replace(tzinfo=dt.UTC)
    return CertInfo(
        der=der,
        kid=kid_for_certificate(der),
        public_key=None,
        not_before=never,
        not_after=never,
        ekus=None,
        is_ca=False,
        digital_signature=None,
        serial=0,
        issuer=b"",
        subject=b"",
        country=None,
        cert=None,
        problem=CertProblem(DSC_MALFORMED, message),
    )


def _public_key(
    load: Callable[[], PublicKeyTypes],
) -> tuple[PublicKeyTypes | None, CertProblem | None]:
    """The certificate's key, and a problem when it cannot sign a DCC."""
    try:
        key: PublicKeyTypes | None = load()
    except Exception as err:  # UnsupportedAlgorithm, ValueError: unknown key algorithm
        key = None
        message = f"public key not readable ({type(err).__name__})"
    else:
        message = dcc_key_problem(key) or ""
    return key, CertProblem(DSC_KEY_UNSUPPORTED, message) if message else None


def _parse_strict(der: bytes) -> CertInfo:
    cert = x509.load_der_x509_certificate(der)
    public_key, problem = _public_key(cert.public_key)
    exts = cert.extensions
    ekus: frozenset[str] | None = None
    is_ca = False
    digital_signature: bool | None = None
    for ext in exts:
        value = ext.value
        if isinstance(value, x509.ExtendedKeyUsage):
            ekus = frozenset(o.dotted_string for o in value)
        elif isinstance(value, x509.BasicConstraints):
            is_ca = value.ca
        elif isinstance(value, x509.KeyUsage):
            digital_signature = value.digital_signature
    countries = cert.subject.get_attributes_for_oid(x509.NameOID.COUNTRY_NAME)
    return CertInfo(
        der=der,
        kid=kid_for_certificate(der),
        public_key=public_key,
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        ekus=ekus,
        is_ca=is_ca,
        digital_signature=digital_signature,
        serial=cert.serial_number,
        issuer=cert.issuer.public_bytes(),
        subject=cert.subject.public_bytes(),
        country=str(countries[0].value) if countries else None,
        cert=cert,
        problem=problem,
    )


def _parse_lenient(der: bytes) -> CertInfo:
    from asn1crypto import x509 as asn1_x509  # only for what cryptography's parser refuses

    cert = asn1_x509.Certificate.load(der, strict=True)
    tbs = cert["tbs_certificate"]
    spki = tbs["subject_public_key_info"].dump()
    public_key, problem = _public_key(lambda: serialization.load_der_public_key(spki))
    validity = tbs["validity"]
    eku_value = cert.extended_key_usage_value
    bc = cert.basic_constraints_value
    ku = cert.key_usage_value
    country = None
    for rdn in tbs["subject"].chosen:
        for attr in rdn:
            if attr["type"].dotted == "2.5.4.6":
                country = str(attr["value"].native)
    return CertInfo(
        der=der,
        kid=kid_for_certificate(der),
        public_key=public_key,
        not_before=validity["not_before"].native,
        not_after=validity["not_after"].native,
        ekus=None if eku_value is None else frozenset(o.dotted for o in eku_value),
        is_ca=bool(bc is not None and bc["ca"].native),
        digital_signature=None if ku is None else "digital_signature" in ku.native,
        serial=int(tbs["serial_number"].native),
        issuer=tbs["issuer"].dump(),
        subject=tbs["subject"].dump(),
        country=country,
        cert=None,
        problem=problem,
    )


def _issuer_key(key: PublicKeyTypes | None) -> CertificateIssuerPublicKeyTypes | None:
    if isinstance(
        key,
        ec.EllipticCurvePublicKey
        | rsa.RSAPublicKey
        | dsa.DSAPublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    return None


def issued_by(child: CertInfo, issuer: CertInfo) -> bool:
    """True when ``issuer``'s key signed ``child`` (names and signature)."""
    if child.issuer != issuer.subject or child.cert is None or issuer.cert is None:
        return False
    try:
        child.cert.verify_directly_issued_by(issuer.cert)
    except Exception:  # InvalidSignature, ValueError, ...
        return False
    return True


def certificates_in(data: bytes, *, where: str) -> list[bytes]:
    """DER certificates in a PEM (several allowed), DER or bare base64 DER file."""
    if b"-----BEGIN" in data:
        blocks = _PEM_CERT.findall(data)
        if not blocks:
            raise TrustError("trust_file_invalid", f"{where}: PEM file holds no CERTIFICATE")
        try:
            return [base64.b64decode(b"".join(b.split()), validate=True) for b in blocks]
        except binascii.Error:
            raise TrustError("trust_file_invalid", f"{where}: broken PEM base64") from None
    if data[:1] == b"\x30":
        return [data]
    try:
        der = base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error:
        raise TrustError(
            "trust_file_invalid",
            f"{where}: neither a certificate (PEM, DER, base64 DER) nor a trust list",
        ) from None
    if der[:1] != b"\x30":
        raise TrustError("trust_file_invalid", f"{where}: base64 content is not a DER certificate")
    return [der]


# --------------------------------------------------------------------------
# The trust store


@dataclass(frozen=True, kw_only=True)
class DscEntry:
    """A document signer certificate the verifier may use.

    ``listed`` DSCs come from a verified trust list and get the CSCA-backed
    checks (chain, validity at ``now``, revocation); DSC files given
    directly are trusted as they are, like EU verifier apps do.
    """

    info: CertInfo
    listed: bool = False
    country: str | None = None
    chain_ok: bool = True
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True, kw_only=True)
class TrustListInfo:
    """Summary of one accepted trust list."""

    path: str
    seq: int
    issued_at: dt.datetime
    next_update: dt.datetime | None
    country: str
    signer: CertInfo
    anchor: CertInfo
    dscs: int
    revoked_dscs: int
    revoked_uvcis: int
    crls: int


@dataclass(frozen=True, kw_only=True)
class TrustStore:
    """Everything the verifier trusts, parsed once (public keys cached per kid)."""

    by_kid: Mapping[bytes, tuple[DscEntry, ...]]
    anchors: tuple[CertInfo, ...] = ()
    revoked_uvci_hashes: frozenset[bytes] = frozenset()
    trust_lists: tuple[TrustListInfo, ...] = ()

    def candidates(self, kid: bytes) -> tuple[DscEntry, ...]:
        return self.by_kid.get(kid, ())

    @property
    def dscs(self) -> tuple[DscEntry, ...]:
        """The readable certificates (for ``trust show`` and the PDF verifier's roots).

        Unreadable ones (:attr:`unreadable`) only answer :meth:`candidates`, so
        that a QR naming them gets ``dsc_malformed``.
        """
        return tuple(e for entries in self.by_kid.values() for e in entries if e.info.readable)

    @property
    def unreadable(self) -> tuple[DscEntry, ...]:
        """Trusted certificates no parser could read, kept by kid."""
        return tuple(e for entries in self.by_kid.values() for e in entries if not e.info.readable)

    def uvci_revoked(self, uvci: str) -> bool:
        """UVCI revocation (docs/trust-list.md): SHA-256 of the UTF-8 UVCI, first 16 bytes."""
        if not self.revoked_uvci_hashes:
            return False
        return uvci_hash(uvci) in self.revoked_uvci_hashes


def signature_failure(
    candidates: Sequence[DscEntry], alg: object, data: bytes, signature: bytes
) -> tuple[str, str]:
    """Why no DSC of ``candidates`` verified ``signature``: (reason code, message).

    Call it only once verification failed with every candidate; it names the
    reason, it never accepts. In order:

    1. every candidate cannot sign a DCC at all: the first one's problem
       (``dsc_key_unsupported``, ``dsc_malformed``);
    2. a usable RSA candidate verifies the signature as RSASSA-PSS with a
       salt other than 32 bytes: ``pss_salt_length`` (RFC 8230 section 2);
    3. otherwise ``bad_signature``.
    """
    usable = [c for c in candidates if c.info.problem is None]
    if not usable:
        problem = candidates[0].info.problem if candidates else None
        if problem is not None:
            return problem.reason, f"trusted DSC cannot verify a DCC: {problem.message}"
    for candidate in usable:
        if pss_salt_mismatch(candidate.info.public_key, alg, data, signature):
            return "pss_salt_length", "RSA-PSS signature with a salt length other than 32 bytes"
    return "bad_signature", "signature does not verify"


def uvci_hash(uvci: str) -> bytes:
    """Revocation hash of a UVCI as written in ``ci`` (docs/trust-list.md)."""
    return hashlib.sha256(uvci.encode("utf-8")).digest()[:16]


def default_state_dir() -> Path:
    """``$VNDCC_VERIFIER_STATE`` or ``~/.local/state/vn-dcc-verifier``."""
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env)
    return Path.home() / ".local" / "state" / "vn-dcc-verifier"


def load_trust(
    paths: Sequence[str | os.PathLike[str]],
    *,
    now: dt.datetime,
    state_dir: str | os.PathLike[str] | None = None,
) -> TrustStore:
    """Load and check trust material; raises ``TrustError`` when it is unusable.

    A store without any certificate to verify with (e.g. only trust lists
    with an empty ``dscs``) is refused: it could only ever reject.
    """
    store = load_trust_material(paths, now=now, state_dir=state_dir)
    if not store.by_kid:
        raise TrustError("no_dsc", "the trust material holds no document signer certificate")
    return store


def load_trust_material(
    paths: Sequence[str | os.PathLike[str]],
    *,
    now: dt.datetime,
    state_dir: str | os.PathLike[str] | None = None,
) -> TrustStore:
    """Like :func:`load_trust` but allows a store without DSCs (``trust show``)."""
    now = _aware(now)
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    anchors: list[CertInfo] = list(pinned_cscas(state))
    direct: list[CertInfo] = []
    given_cas: list[CertInfo] = []
    lists: list[tuple[str, bytes]] = []
    for raw_path in paths:
        data = _read(os.fspath(raw_path))
        where = _shown(os.fspath(raw_path))
        if data[:1] in (b"\xd2", b"\x84", b"\xd8"):
            lists.append((where, data))
            continue
        for der in certificates_in(data, where=where):
            # A certificate that cannot sign a DCC stays in under its kid,
            # with its problem (a verdict, not an error).
            info = read_certificate(der)
            if info.is_ca and info.cert is not None:
                anchors.append(info)
                given_cas.append(info)
            else:
                direct.append(info)
    if not lists:
        # Plain-certificate mode: a CA certificate is a signing certificate
        # too (hcert Appendix A: a CSCA may be its own DSC; some EU test DSCs
        # are self-signed CA:TRUE). With a trust list it is only its anchor.
        direct.extend(given_cas)
    by_kid: dict[bytes, list[DscEntry]] = {}
    revoked_uvcis: set[bytes] = set()
    revoked: dict[tuple[bytes, int], dt.datetime] = {}
    infos: list[TrustListInfo] = []
    parsed_lists = [
        _verify_trust_list(data, where=where, anchors=anchors, now=now) for where, data in lists
    ]
    # Newest first, so that an older list given in the same run is refused as a
    # rollback whatever the order of the files (e.g. `--trust trustlist-*.cbor`).
    for parsed in sorted(parsed_lists, key=lambda p: p.seq, reverse=True):
        _check_rollback(state, parsed.anchor, parsed.seq, where=parsed.summary.path)
    for parsed in parsed_lists:
        for entry in parsed.entries:
            by_kid.setdefault(entry.info.kid, []).append(entry)
        revoked_uvcis |= parsed.revoked_uvcis
        for key, when in parsed.revoked.items():
            revoked[key] = min(when, revoked.get(key, when))
        infos.append(parsed.summary)
    # A DSC that a verified list also holds keeps the list's checks (chain,
    # validity, revocation): the plain file must not bypass them. One the
    # lists only revoke (revokedDscs, CRLs) stays revoked when given as a file.
    listed = {e.info.der for entries in by_kid.values() for e in entries}
    for info in direct:
        if info.der not in listed:
            entry = DscEntry(info=info, country=info.country, revoked_at=_revoked_at(revoked, info))
            by_kid.setdefault(info.kid, []).append(entry)
    return TrustStore(
        by_kid={k: tuple(v) for k, v in by_kid.items()},
        anchors=tuple(_unique(anchors)),
        revoked_uvci_hashes=frozenset(revoked_uvcis),
        trust_lists=tuple(infos),
    )


def _unique(certs: Iterable[CertInfo]) -> list[CertInfo]:
    seen: dict[bytes, CertInfo] = {}
    for c in certs:
        seen.setdefault(c.der, c)
    return list(seen.values())


def _aware(now: dt.datetime) -> dt.datetime:
    return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)


def _shown(path: str, limit: int = 160) -> str:
    """A path as error messages show it: at most ``limit`` characters (an argv path
    can be 100,000 characters long), with the file name kept."""
    return path if len(path) <= limit else f"{path[: limit // 2]}...{path[-(limit // 2) :]}"


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(_MAX_TRUST_FILE + 1)
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        why = getattr(err, "strerror", None) or "invalid path"
        raise TrustError("trust_file_unreadable", f"cannot read {_shown(path)}: {why}") from None
    if not data.strip():
        raise TrustError("trust_file_invalid", f"{_shown(path)}: file is empty")
    if len(data) > _MAX_TRUST_FILE:
        raise TrustError("trust_file_invalid", f"{_shown(path)}: file is too large")
    return data


# --------------------------------------------------------------------------
# Signed trust list (docs/trust-list.md)


@dataclass(frozen=True)
class _ParsedList:
    summary: TrustListInfo
    anchor: CertInfo
    seq: int
    entries: tuple[DscEntry, ...]
    revoked_uvcis: frozenset[bytes] = field(default_factory=frozenset)
    #: see :func:`_revocations`
    revoked: Mapping[tuple[bytes, int], dt.datetime] = field(default_factory=dict)


def _revoked_at(
    revoked: Mapping[tuple[bytes, int], dt.datetime], info: CertInfo
) -> dt.datetime | None:
    """Earliest revocation of ``info`` by issuer and serial (CRLs) or kid and serial."""
    times = [
        t
        for t in (
            revoked.get((info.issuer, info.serial)),
            revoked.get((b"kid:" + info.kid, info.serial)),
        )
        if t is not None
    ]
    return min(times) if times else None


def _fail(where: str, message: str, reason: str = "trust_list_invalid") -> TrustError:
    return TrustError(reason, f"{where}: {message}")


def _uint(
    payload: Mapping[Any, Any], key: str, where: str, *, optional: bool = False
) -> int | None:
    value = payload.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(where, f"field {key!r} must be an unsigned integer")
    return value


def _list_of(payload: Mapping[Any, Any], key: str, kind: type, where: str) -> list[Any]:
    """An array field; cbor2 5 gives lists and dicts, cbor2 6 tuples and frozendicts in tags."""
    value = payload.get(key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(x, kind) for x in value):
        raise _fail(where, f"field {key!r} must be an array of {kind.__name__}")
    return list(value)


def _short(value: object) -> str:
    """A value from an untrusted list for a message: bounded, never a huge int's digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"<integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _ts(value: int) -> dt.datetime:
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        return dt.datetime.max.replace(tzinfo=dt.UTC)


#: COSE header label 3 (content type, RFC 9052 section 3.1) of a signed rule set
#: (docs/rules.md "Signed rule sets"); a trust list carries none. The two share the
#: envelope and the signer, so the label keeps one from being taken for the other.
COSE_CONTENT_TYPE = 3
RULE_SET_CONTENT_TYPE = "application/vnd.vn-dcc.rules+cbor"


@dataclass(frozen=True)
class SignedEnvelope:
    """A verified envelope (steps 1-3 of docs/trust-list.md "Verification")."""

    payload: bytes
    content_type: object
    signer: CertInfo
    anchor: CertInfo


def verify_envelope(
    data: bytes,
    *,
    where: str,
    anchors: Sequence[CertInfo],
    now: dt.datetime,
    what: str = "trust-list",
    reason_prefix: str = "trust_list",
) -> SignedEnvelope:
    """Check the COSE_Sign1 envelope of a trust list or a signed rule set.

    The signer certificate in x5chain must chain to one of ``anchors`` (pinned
    CSCAs), both valid at ``now``, carry the trust-list-signing EKU and
    digitalSignature, and its key must verify the signature. Raises
    ``TrustError`` with reason ``<reason_prefix>_invalid``, ``_untrusted`` or
    ``_bad_signature``; ``what`` names the document in messages.
    """

    def fail(message: str, kind: str = "invalid") -> TrustError:
        return _fail(where, message, f"{reason_prefix}_{kind}")

    # 1. Decode the COSE_Sign1 and take the signer certificate from x5chain.
    try:
        sign1 = codec.decode_sign1(data)
    except CodecError as err:
        raise fail(f"not a {what.replace('-', ' ')}: {err.message}") from None
    x5chain = sign1.protected.get(codec.CoseHeader.X5CHAIN)
    if isinstance(x5chain, list | tuple) and x5chain:  # cbor2 6 decodes tagged arrays as tuples
        x5chain = x5chain[0]
    if not isinstance(x5chain, bytes):
        raise fail("protected header has no x5chain signer certificate")
    try:
        signer = parse_certificate(x5chain)
    except TrustError as err:
        raise fail(f"signer certificate: {err.message}") from None
    # 2. The signer chains to a pinned CSCA, is valid now, and may sign trust lists.
    anchor = next((a for a in anchors if issued_by(signer, a)), None)
    if anchor is None:
        raise fail(
            f"{what} signer does not chain to a pinned CSCA (give it with --trust CSCA.pem "
            "or pin it with `python -m verifier trust pin`)",
            "untrusted",
        )
    if not anchor.valid_at(now):
        raise fail("the pinned CSCA is outside its validity period", "untrusted")
    if not signer.valid_at(now):
        raise fail(f"{what} signer certificate is outside its validity period", "untrusted")
    if not signer.ekus or EKU_TRUST_LIST_SIGNER not in signer.ekus:
        raise fail("signer certificate lacks the trust-list-signing EKU", "untrusted")
    if signer.digital_signature is False:
        raise fail("signer certificate lacks keyUsage digitalSignature", "untrusted")
    # 3. The COSE signature verifies with the signer's key.
    alg = sign1.alg
    if isinstance(alg, bool) or alg not in _TRUST_LIST_ALGS:
        raise fail(f"unsupported {what} algorithm {_short(alg)}")
    if not alg_matches_key(signer.public_key, alg):
        raise fail(f"{what} algorithm {_short(alg)} does not fit the signer's key")
    to_check = codec.sig_structure(sign1.protected_bytes, sign1.payload)
    if not verify_signature(signer.public_key, alg, to_check, sign1.signature):
        raise fail(f"{what} signature does not verify", "bad_signature")
    content_type = sign1.protected.get(COSE_CONTENT_TYPE)
    return SignedEnvelope(sign1.payload, content_type, signer, anchor)


def _verify_trust_list(
    data: bytes, *, where: str, anchors: Sequence[CertInfo], now: dt.datetime
) -> _ParsedList:
    """Steps 1-3 of docs/trust-list.md "Verification" plus payload checks."""
    envelope = verify_envelope(data, where=where, anchors=anchors, now=now)
    if envelope.content_type == RULE_SET_CONTENT_TYPE:
        raise _fail(where, "this is a signed rule set, not a trust list (give it with --rules)")
    signer, anchor = envelope.signer, envelope.anchor
    # Payload (docs/trust-list.md "Payload").
    try:
        payload = codec.cbor_loads(envelope.payload, reason="trust_list_invalid")
    except CodecError as err:
        raise _fail(where, err.message) from None
    if not isinstance(payload, Mapping):
        raise _fail(where, "payload is not a map")
    if payload.get("v") != TRUST_LIST_VERSION:
        raise _fail(where, f"unsupported trust-list format version {_short(payload.get('v'))}")
    seq = _uint(payload, "seq", where)
    iat = _uint(payload, "iat", where)
    next_update = _uint(payload, "nextUpdate", where, optional=True)
    assert seq is not None and iat is not None
    country = payload.get("country")
    if not isinstance(country, str):
        raise _fail(where, "field 'country' must be text")
    if next_update is not None and now > _ts(next_update):
        raise _fail(where, "trust list is out of date (past its nextUpdate)", "trust_list_stale")
    list_cscas = [
        _parse_in_list(d, where, "cscas") for d in _list_of(payload, "cscas", bytes, where)
    ]
    issuers = _unique([anchor, *anchors, *(c for c in list_cscas if c.is_ca)])
    revoked = _revocations(payload, where, issuers)
    entries: list[DscEntry] = []
    for item in _list_of(payload, "dscs", Mapping, where):
        kid, cert_der, dsc_country = item.get("kid"), item.get("cert"), item.get("country")
        if not isinstance(kid, bytes) or not isinstance(cert_der, bytes):
            raise _fail(where, "each dscs entry needs bytes 'kid' and 'cert'")
        # A listed DSC that cannot sign a DCC stays in with its problem, as a
        # certificate file does: QRs naming it get that reason.
        info = read_certificate(cert_der)
        if info.kid != kid:
            raise _fail(where, f"dscs entry kid {kid.hex()} does not match its certificate")
        entries.append(
            DscEntry(
                info=info,
                listed=True,
                country=dsc_country if isinstance(dsc_country, str) else info.country,
                chain_ok=any(issued_by(info, ca) for ca in issuers),
                revoked_at=_revoked_at(revoked, info),
            )
        )
    uvcis = _list_of(payload, "revokedUvcis", bytes, where)
    summary = TrustListInfo(
        path=where,
        seq=seq,
        issued_at=_ts(iat),
        next_update=None if next_update is None else _ts(next_update),
        country=country,
        signer=signer,
        anchor=anchor,
        dscs=len(entries),
        revoked_dscs=len(_list_of(payload, "revokedDscs", Mapping, where)),
        revoked_uvcis=len(uvcis),
        crls=len(_list_of(payload, "crls", bytes, where)),
    )
    return _ParsedList(summary, anchor, seq, tuple(entries), frozenset(uvcis), revoked)


def _parse_in_list(der: bytes, where: str, field_name: str) -> CertInfo:
    """A CSCA of the list: readable, whatever its key (it only signs certificates and CRLs)."""
    info = read_certificate(der)
    if info.problem is not None and info.problem.reason == DSC_MALFORMED:
        raise _fail(where, f"{field_name}: {info.problem.message}")
    return info


def _revocations(
    payload: Mapping[Any, Any], where: str, issuers: Sequence[CertInfo]
) -> dict[tuple[bytes, int], dt.datetime]:
    """(issuer name DER | b"kid:"+kid, serial) -> revocation time, from revokedDscs and CRLs."""
    out: dict[tuple[bytes, int], dt.datetime] = {}

    def add(key: tuple[bytes, int], when: dt.datetime) -> None:
        out[key] = min(when, out.get(key, when))

    for item in _list_of(payload, "revokedDscs", Mapping, where):
        kid, serial, at = item.get("kid"), item.get("serial"), item.get("revokedAt")
        if not isinstance(kid, bytes) or not isinstance(serial, bytes):
            raise _fail(where, "each revokedDscs entry needs bytes 'kid' and 'serial'")
        if not isinstance(at, int) or isinstance(at, bool) or at < 0:
            raise _fail(where, "revokedDscs 'revokedAt' must be an unsigned integer")
        add((b"kid:" + kid, int.from_bytes(serial, "big")), _ts(at))
    for der in _list_of(payload, "crls", bytes, where):
        try:
            crl = x509.load_der_x509_crl(der)
            crl_issuer = crl.issuer.public_bytes()
        except ValueError:
            raise _fail(where, "crls: not a DER CRL") from None
        ca = next((c for c in issuers if c.subject == crl_issuer and c.cert is not None), None)
        ca_key = None if ca is None else _issuer_key(ca.public_key)
        if ca_key is None or not crl.is_signature_valid(ca_key):
            raise _fail(where, "crls: CRL not signed by a CSCA of the list")
        for revoked in crl:
            add((crl_issuer, revoked.serial_number), revoked.revocation_date_utc)
    return out


# --------------------------------------------------------------------------
# State: rollback counters and pinned CSCAs


def _csca_id(csca: CertInfo) -> str:
    return hashlib.sha256(csca.der).hexdigest()


def _check_rollback(state: Path, anchor: CertInfo, seq: int, *, where: str) -> None:
    """Step 4: refuse a lower ``seq`` than the highest accepted for this CSCA."""
    check_rollback(state, anchor, seq, where=where)


def check_rollback(
    state: Path,
    anchor: CertInfo,
    seq: int,
    *,
    where: str,
    seq_file: str = SEQ_FILE,
    what: str = "trust list",
    reason: str = "trust_list_rollback",
) -> None:
    """Refuse a lower ``seq`` than the highest accepted for this CSCA in ``<state>/<seq_file>``
    (trust lists: ``trustlist-seq.json``; signed rule sets: ``rules-seq.json``).

    Read-compare-write happens under an exclusive lock on ``<state>/.lock``, so
    two verifier processes at once cannot write the counter back down.
    """
    try:
        state.mkdir(parents=True, exist_ok=True)
        lock = os.open(state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise TrustError("state_unwritable", f"cannot use verifier state {state}: {err}") from None
    try:
        _lock_exclusive(lock, state)
        _check_rollback_locked(state / seq_file, anchor, seq, where=where, what=what, reason=reason)
    finally:
        os.close(lock)  # releases the lock


def _lock_exclusive(fd: int, state: Path) -> None:
    """An exclusive lock on ``fd``, waiting at most :data:`LOCK_WAIT_SECONDS`."""
    import time

    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TrustError(
                    "state_busy",
                    f"verifier state {state} is locked by another process"
                    f" for over {LOCK_WAIT_SECONDS:g} s",
                ) from None
            time.sleep(0.01)
        except OSError as err:
            raise TrustError("state_unwritable", f"cannot lock verifier state {state}: {err}") from None


def _check_rollback_locked(
    path: Path, anchor: CertInfo, seq: int, *, where: str, what: str, reason: str
) -> None:
    seen: dict[str, int] = {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict):
            seen = {str(k): int(v) for k, v in raw.items() if isinstance(v, int)}
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as err:
        raise TrustError("state_unreadable", f"cannot read verifier state {path}: {err}") from None
    key = _csca_id(anchor)
    held = seen.get(key)
    if held is not None and seq < held:
        raise _fail(
            where,
            f"{what} sequence {seq} is older than the accepted {held} (rollback refused)",
            reason,
        )
    if held is None or seq > held:
        seen[key] = seq
        _write_atomic(path, json.dumps(seen, indent=1, sort_keys=True).encode("utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    try:
        write_atomic(path, data)
    except OSError as err:
        raise TrustError("state_unwritable", f"cannot write verifier state {path}: {err}") from None


def pinned_cscas(state_dir: Path) -> list[CertInfo]:
    """CSCAs pinned in ``<state dir>/pinned/*.pem``."""
    folder = state_dir / "pinned"
    if not folder.is_dir():
        return []
    out: list[CertInfo] = []
    for pem in sorted(folder.glob("*.pem")):
        for der in certificates_in(_read(str(pem)), where=str(pem)):
            info = parse_certificate(der)
            if not info.is_ca:
                raise TrustError("not_a_csca", f"{pem}: pinned certificate is not a CA")
            out.append(info)
    return out


def pin_csca(
    path: str | os.PathLike[str], *, state_dir: str | os.PathLike[str] | None = None
) -> Path:
    """Pin a CSCA certificate (must be CA:TRUE) in the state directory; returns its file."""
    where = os.fspath(path)
    ders = certificates_in(_read(where), where=where)
    if len(ders) != 1:
        raise TrustError("trust_file_invalid", f"{where}: give exactly one CSCA certificate")
    info = parse_certificate(ders[0])
    if not info.is_ca:
        raise TrustError("not_a_csca", f"{where}: certificate is not a CA (basicConstraints)")
    state = Path(state_dir) if state_dir is not None else default_state_dir()
    target = state / "pinned" / f"{_csca_id(info)[:16]}.pem"
    pem = base64.encodebytes(info.der).decode("ascii")
    _write_atomic(target, f"-----BEGIN CERTIFICATE-----\n{pem}-----END CERTIFICATE-----\n".encode())
    return target
