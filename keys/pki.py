"""The national DCC PKI kept in a directory: CSCA, health-centre DSCs, CRLs, trust lists.

    >>> import datetime as dt, tempfile
    >>> from pathlib import Path
    >>> from keys import pki
    >>> now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    >>> d = Path(tempfile.mkdtemp()) / "pki"
    >>> _ = pki.init_csca(d, country="VN", name="CSCA VN", passphrase=b"ca-pass", now=now)
    >>> dsc = pki.issue_dsc(d, name="Tram Y te 1", csca_passphrase=b"ca-pass",
    ...                     key_passphrase=b"dsc-pass", now=now)
    >>> dsc.types
    ('v',)

Layout of the directory (paths in the index are relative to it)::

    index.json              state (written atomically: temp file + rename)
    csca.pem  csca.key.pem  the CSCA; key encrypted PKCS#8 (CSCA passphrase)
    dsc/<slug>-<serial>.pem (+ .key.pem, encrypted with the DSC key passphrase,
                            unless the key lives in a PKCS#11 token)
    crl/crl-<n>.der/.pem    CRLs issued by the CSCA (RFC 5280 section 5)
    tl-signer.pem/.key.pem  trust-list signer (key encrypted with the CSCA passphrase)
    trustlist/trustlist-<seq>.cbor   exported trust lists

Every function takes ``now`` and the secrets it needs as parameters; the
CLI (:mod:`keys.cli`) reads them from the environment or a prompt. Errors
are :class:`verifier.errors.PassportError` subclasses with one-line messages.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keys.certs import (
    DEFAULT_CRL_URL,
    EKU_BY_TYPE,
    KEY_TYPES,
    PrivateKey,
    PublicKey,
    make_csca,
    make_dsc,
    make_trust_list_signer,
    new_private_key,
)
from keys.pkcs11_key import generate_key_in_token, token_session, write_certificate_to_token
from keys.software import SoftwareKey, load_certificate_file
from verifier.crypto import kid_for_certificate
from verifier.errors import ConfigError, KeyBackendError
from verifier.util import write_atomic
from verifier.uvci import is_valid_uvci

INDEX = "index.json"
FORMAT = "vn-dcc-pki"
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM

REVOCATION_REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
}


# --------------------------------------------------------------------------
# Index model
# --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TokenRef:
    """Where a key inside a PKCS#11 token is (never the PIN)."""

    module: str
    token_label: str
    key_label: str
    key_id: str  # hex CKA_ID


@dataclass(frozen=True, kw_only=True)
class DscRecord:
    """One document signer certificate of the PKI."""

    name: str
    serial: str  # hex
    kid: str  # hex, hcert kid (first 8 bytes of SHA-256 of the DER)
    alg: str  # ES256 / ES384 / PS256
    types: tuple[str, ...]
    cert: str  # path relative to the PKI directory
    key_file: str | None = None
    token: TokenRef | None = None
    not_before: str
    not_after: str
    revoked_at: str | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class CrlRecord:
    number: int
    der: str
    pem: str
    this_update: str
    next_update: str


@dataclass(frozen=True, kw_only=True)
class PkiIndex:
    """The PKI's state, saved as index.json."""

    country: str
    csca_cert: str
    csca_key: str
    dscs: tuple[DscRecord, ...] = ()
    revoked_uvcis: tuple[tuple[str, str], ...] = ()  # (UVCI, revoked at ISO)
    crl_number: int = 0
    crls: tuple[CrlRecord, ...] = ()
    trust_list_signer_cert: str | None = None
    trust_list_signer_key: str | None = None
    trust_list_seq: int = 0
    trust_lists: tuple[tuple[int, str, str], ...] = ()  # (seq, path, iat ISO)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return {"format": FORMAT, "version": 1, **data, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PkiIndex:
        if data.get("format") != FORMAT or data.get("version") != 1:
            raise ConfigError("index.json is not a vn-dcc PKI index (format/version)")
        known = set(cls.__dataclass_fields__) - {"extra"}
        try:
            dscs = tuple(
                DscRecord(
                    **{
                        **d,
                        "types": tuple(d["types"]),
                        "token": TokenRef(**d["token"]) if d.get("token") else None,
                    }
                )
                for d in data.get("dscs", ())
            )
            return cls(
                country=data["country"],
                csca_cert=data["csca_cert"],
                csca_key=data["csca_key"],
                dscs=dscs,
                revoked_uvcis=tuple((u, at) for u, at in data.get("revoked_uvcis", ())),
                crl_number=int(data.get("crl_number", 0)),
                crls=tuple(CrlRecord(**c) for c in data.get("crls", ())),
                trust_list_signer_cert=data.get("trust_list_signer_cert"),
                trust_list_signer_key=data.get("trust_list_signer_key"),
                trust_list_seq=int(data.get("trust_list_seq", 0)),
                trust_lists=tuple((int(s), p, t) for s, p, t in data.get("trust_lists", ())),
                extra={k: v for k, v in data.items() if k not in known | {"format", "version"}},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"index.json is damaged: {err}") from None


# --------------------------------------------------------------------------
# Files: atomic writes, lock, load/save
# --------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data`` to ``path`` through a temp file + fsync + rename (never half-written)."""
    write_atomic(path, data, mode=0o600 if private else 0o644)


def _write_new(path: Path, data: bytes, *, private: bool = False) -> None:
    if path.exists():
        raise ConfigError(f"{path} exists already; refusing to overwrite it")
    atomic_write(path, data, private=private)


@contextlib.contextmanager
def _locked(pki_dir: Path, *, create: bool = False) -> Iterator[None]:
    """Exclusive lock on the PKI directory for one load-modify-save."""
    if create:
        pki_dir.mkdir(parents=True, exist_ok=True)
    elif not (pki_dir / INDEX).is_file():
        raise ConfigError(f"{pki_dir} is not a PKI directory (no {INDEX}); run init-csca first")
    with open(pki_dir / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_index(pki_dir: Path) -> PkiIndex:
    path = pki_dir / INDEX
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"{pki_dir} is not a PKI directory (no {INDEX}); run init-csca first"
        ) from None
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot read {path}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is damaged")
    return PkiIndex.from_json(data)


def _save(pki_dir: Path, index: PkiIndex) -> None:
    text = json.dumps(index.to_json(), indent=2, ensure_ascii=False) + "\n"
    atomic_write(pki_dir / INDEX, text.encode())


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def _parse_iso(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def _check_now(now: dt.datetime) -> None:
    if now.tzinfo is None:
        raise ConfigError("now must be timezone-aware")


def slug(name: str) -> str:
    """ASCII file-name part for a (Vietnamese) name: 'Trạm Y tế Đống Đa' -> 'tram-y-te-dong-da'."""
    text = name.replace("đ", "d").replace("Đ", "D")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "dsc"


# --------------------------------------------------------------------------
# Keys on disk
# --------------------------------------------------------------------------


def _encrypted_pem(key: PrivateKey, passphrase: bytes) -> bytes:
    if not passphrase:
        raise KeyBackendError("an empty passphrase is not allowed for a private key file")
    return key.private_bytes(
        PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(passphrase)
    )


def _load_key(pki_dir: Path, rel: str, passphrase: bytes, what: str) -> PrivateKey:
    path = pki_dir / rel
    try:
        data = path.read_bytes()
    except OSError as err:
        raise KeyBackendError(f"cannot read {path}: {err.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except (TypeError, ValueError):
        raise KeyBackendError(f"cannot decrypt the {what} key {path} (wrong passphrase?)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise KeyBackendError(f"{path}: only EC and RSA keys are supported")
    return key


def load_csca(pki_dir: Path, passphrase: bytes) -> tuple[x509.Certificate, PrivateKey]:
    """The CSCA certificate and its (decrypted) private key."""
    index = load_index(pki_dir)
    cert = load_certificate_file(pki_dir / index.csca_cert)
    return cert, _load_key(pki_dir, index.csca_key, passphrase, "CSCA")


def csca_certificate(pki_dir: Path) -> x509.Certificate:
    return load_certificate_file(pki_dir / load_index(pki_dir).csca_cert)


def _usable_csca(
    pki_dir: Path, passphrase: bytes, now: dt.datetime
) -> tuple[x509.Certificate, PrivateKey]:
    cert, key = load_csca(pki_dir, passphrase)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise ConfigError(
            f"the CSCA is not valid at {_iso(now)} (valid until {_iso(cert.not_valid_after_utc)})"
        )
    return cert, key


# --------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------


def init_csca(
    pki_dir: Path,
    *,
    country: str,
    name: str,
    passphrase: bytes,
    now: dt.datetime,
    key_type: str = "ec-p256",
    days: int = 365 * 15,
    organization: str | None = "Ministry of Health",
) -> x509.Certificate:
    """Create the PKI directory with a self-signed CSCA (ECDSA P-256 or P-384)."""
    _check_now(now)
    if key_type not in ("ec-p256", "ec-p384"):
        raise ConfigError("the CSCA key must be ec-p256 or ec-p384")
    if not re.fullmatch(r"[A-Z]{2}", country):
        raise ConfigError("country must be an ISO 3166-1 alpha-2 code such as VN")
    if days <= 0:
        raise ConfigError("days must be positive")
    with _locked(pki_dir, create=True):
        if (pki_dir / INDEX).exists():
            raise ConfigError(f"{pki_dir} already holds a PKI; refusing to replace its CSCA")
        key = new_private_key(key_type)
        cert = make_csca(
            key, country=country, name=name, now=now, days=days, organization=organization
        )
        _write_new(pki_dir / "csca.key.pem", _encrypted_pem(key, passphrase), private=True)
        atomic_write(pki_dir / "csca.pem", cert.public_bytes(PEM))
        _save(pki_dir, PkiIndex(country=country, csca_cert="csca.pem", csca_key="csca.key.pem"))
    return cert


@dataclass(frozen=True, kw_only=True)
class TokenTarget:
    """A PKCS#11 token to generate a key in (the PIN is passed, never stored nor shown)."""

    module: str
    token_label: str
    pin: str = field(repr=False)  # kept out of repr(): tracebacks and logs show reprs
    key_label: str | None = None


def issue_dsc(
    pki_dir: Path,
    *,
    name: str,
    csca_passphrase: bytes,
    now: dt.datetime,
    key_type: str = "ec-p256",
    types: Sequence[str] = ("v",),
    days: int = 365 * 2,
    key_passphrase: bytes | None = None,
    token: TokenTarget | None = None,
    organization: str | None = None,
    crl_url: str | None = DEFAULT_CRL_URL,
) -> DscRecord:
    """Create a health centre's key (file or token) and its DSC, issued by the CSCA.

    The DSC has keyUsage digitalSignature + nonRepudiation, a CRL distribution
    point ``crl_url`` (None: none) and the hcert EKUs of ``types``
    (hcert 1.x section 5.1.1: v -> 1.3.6.1.4.1.1847.2021.1.2, t -> .1, r -> .3);
    its validity never extends beyond the CSCA's. With ``token`` the key is
    generated inside the token (never extractable) and the DSC written into
    the token next to it; otherwise it is saved encrypted with ``key_passphrase``.
    """
    _check_now(now)
    if key_type not in ("ec-p256", "ec-p384", "rsa-2048", "rsa-3072"):
        raise ConfigError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")
    bad = [t for t in types if t not in EKU_BY_TYPE]
    if bad or not types:
        raise ConfigError(
            "types must be a non-empty subset of v (vaccination), t (test), r (recovery)"
        )
    if days <= 0:
        raise ConfigError("days must be positive")
    if (token is None) == (key_passphrase is None):
        raise ConfigError("a DSC key goes either in a file (with a passphrase) or in a token")
    with _locked(pki_dir):
        index = load_index(pki_dir)
        csca, csca_key = _usable_csca(pki_dir, csca_passphrase, now)
        serial = x509.random_serial_number()

        def make(public: PublicKey) -> x509.Certificate:
            return make_dsc(
                csca, csca_key, public, name=name, now=now, days=days, types=types,
                organization=organization, serial=serial, crl_url=crl_url,
            )  # fmt: skip

        base = f"dsc/{slug(name)[:32]}-{serial:x}"
        key_file: str | None = None
        token_ref: TokenRef | None = None
        if token is None:
            assert key_passphrase is not None
            private = new_private_key(key_type)
            public: PublicKey = private.public_key()
            key_file = f"{base}.key.pem"
            _write_new(pki_dir / key_file, _encrypted_pem(private, key_passphrase), private=True)
            cert = make(public)
        else:
            label = token.key_label or f"dsc-{slug(name)[:32]}-{serial:x}"[:48]
            key_id = secrets.token_bytes(8)
            with token_session(token.module, token.token_label, token.pin, rw=True) as ts:
                public = generate_key_in_token(ts, key_type=key_type, label=label, key_id=key_id)
                cert = make(public)
                write_certificate_to_token(ts, cert, label=label, key_id=key_id)
            token_ref = TokenRef(
                module=token.module,
                token_label=token.token_label,
                key_label=label,
                key_id=key_id.hex(),
            )
        atomic_write(pki_dir / f"{base}.pem", cert.public_bytes(PEM))
        der = cert.public_bytes(DER)
        record = DscRecord(
            name=name,
            serial=f"{cert.serial_number:x}",
            kid=kid_for_certificate(der).hex(),
            alg=_alg_name(public),
            types=tuple(types),
            cert=f"{base}.pem",
            key_file=key_file,
            token=token_ref,
            not_before=_iso(cert.not_valid_before_utc),
            not_after=_iso(cert.not_valid_after_utc),
        )
        _save(pki_dir, replace(index, dscs=(*index.dscs, record)))
    return record


def _alg_name(public: PublicKey) -> str:
    if isinstance(public, rsa.RSAPublicKey):
        return "PS256"
    return "ES384" if public.curve.key_size > 256 else "ES256"


def find_dsc(index: PkiIndex, selector: str) -> DscRecord:
    """A DSC by serial (hex), kid (hex) or exact name; ConfigError if none or several."""
    sel = selector.strip()
    low = sel.lower().removeprefix("0x")
    hits = [d for d in index.dscs if low in (d.serial, d.kid) or d.name == sel]
    if not hits:
        raise ConfigError(f"no DSC with serial, kid or name {selector!r}")
    if len(hits) > 1:
        raise ConfigError(f"{len(hits)} DSCs match {selector!r}; give the serial")
    return hits[0]


def revoke_dsc(
    pki_dir: Path, selector: str, *, now: dt.datetime, reason: str = "unspecified"
) -> DscRecord:
    """Mark a DSC revoked at ``now`` (it goes into the next CRL and trust list)."""
    _check_now(now)
    if reason not in REVOCATION_REASONS:
        raise ConfigError(
            f"unknown reason {reason!r}; choose one of {', '.join(REVOCATION_REASONS)}"
        )
    with _locked(pki_dir):
        index = load_index(pki_dir)
        dsc = find_dsc(index, selector)
        if dsc.revoked_at is not None:
            raise ConfigError(
                f"DSC {dsc.serial} ({dsc.name}) was already revoked at {dsc.revoked_at}"
            )
        revoked = replace(dsc, revoked_at=_iso(now), revocation_reason=reason)
        dscs = tuple(revoked if d is dsc else d for d in index.dscs)
        _save(pki_dir, replace(index, dscs=dscs))
    return revoked


# Case-sensitive: the trust list holds SHA-256(UVCI as written in ``ci``), and
# UVCIs are upper case (their checksum alphabet is A-Z 0-9 / :).
_UVCI = re.compile(r"(URN:UVCI:)?01[:/#][A-Z]{2}[:/#][A-Z0-9/:#]+")


def revoke_uvci(pki_dir: Path, uvci: str, *, now: dt.datetime) -> str:
    """Revoke one issued certificate by its UVCI (as written in the DCC's ``ci``)."""
    _check_now(now)
    uvci = uvci.strip()
    if not _UVCI.fullmatch(uvci):
        raise ConfigError(f"not a UVCI: {uvci!r} (expected URN:UVCI:01:VN:...)")
    with _locked(pki_dir):
        index = load_index(pki_dir)
        own = f"URN:UVCI:01:{index.country}:"
        own_country = uvci.removeprefix("URN:UVCI:")[3:5] == index.country
        if own_country and not (
            re.fullmatch(re.escape(own) + r"[A-Z0-9/:]+#[A-Z0-9/:]", uvci) and is_valid_uvci(uvci)
        ):
            # The signer writes every ci as URN:UVCI:01:<country>:<opaque>#<check>;
            # another spelling would hash differently and revoke nothing.
            raise ConfigError(
                f"not a UVCI as this country's certificates carry it: {uvci!r} "
                f"(expected {own}...#C with its check character, exactly as in the certificate's ci)"
            )
        if any(u == uvci for u, _ in index.revoked_uvcis):
            raise ConfigError(f"{uvci} is already revoked")
        _save(pki_dir, replace(index, revoked_uvcis=(*index.revoked_uvcis, (uvci, _iso(now)))))
    return uvci


def issue_crl(
    pki_dir: Path, *, csca_passphrase: bytes, now: dt.datetime, days: int = 30
) -> tuple[x509.CertificateRevocationList, CrlRecord]:
    """Issue the next CRL of the CSCA (RFC 5280 section 5): CRL number, thisUpdate, nextUpdate."""
    _check_now(now)
    if days <= 0:
        raise ConfigError("days must be positive")
    with _locked(pki_dir):
        index = load_index(pki_dir)
        if index.crls and now < _parse_iso(index.crls[-1].this_update):
            # CRL n+1 must not claim an earlier thisUpdate than CRL n (RFC 5280
            # section 5.1.2.4): relying parties keep the newest by time.
            raise ConfigError(
                f"CRL {index.crls[-1].number} was issued at {index.crls[-1].this_update}; "
                f"a new CRL cannot be dated earlier ({_iso(now)})"
            )
        csca, key = _usable_csca(pki_dir, csca_passphrase, now)
        number = index.crl_number + 1
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(csca.subject)
            .last_update(now)
            .next_update(now + dt.timedelta(days=days))
            .add_extension(x509.CRLNumber(number), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(csca.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
        )
        for d in index.dscs:
            if d.revoked_at is None:
                continue
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(d.serial, 16))
                .revocation_date(_parse_iso(d.revoked_at))
            )
            reason = REVOCATION_REASONS.get(d.revocation_reason or "unspecified")
            if reason is not None and reason != x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        # other certificates of the CSCA marked revoked (the TSA: keys.tsa.revoke_tsa)
        for other in index.extra.get("revoked_certs", ()):
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(other["serial"], 16))
                .revocation_date(_parse_iso(other["revoked_at"]))
            )
            reason = REVOCATION_REASONS.get(other.get("reason") or "unspecified")
            if reason is not None and reason != x509.ReasonFlags.unspecified:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        hash_alg = (
            hashes.SHA384()
            if key.key_size > 256 and isinstance(key, ec.EllipticCurvePrivateKey)
            else hashes.SHA256()
        )
        crl = builder.sign(key, hash_alg)
        record = CrlRecord(
            number=number,
            der=f"crl/crl-{number}.der",
            pem=f"crl/crl-{number}.pem",
            this_update=_iso(now),
            next_update=_iso(now + dt.timedelta(days=days)),
        )
        atomic_write(pki_dir / record.der, crl.public_bytes(DER))
        atomic_write(pki_dir / record.pem, crl.public_bytes(PEM))
        _save(pki_dir, replace(index, crl_number=number, crls=(*index.crls, record)))
    return crl, record


def init_trust_list_signer(
    pki_dir: Path,
    *,
    csca_passphrase: bytes,
    now: dt.datetime,
    key_type: str = "ec-p256",
    days: int = 365 * 3,
) -> x509.Certificate:
    """Create (or renew) the trust-list signing key and its certificate from the CSCA.

    The key is saved encrypted with the CSCA passphrase: it belongs to the
    same national operator.
    """
    _check_now(now)
    return create_operator_key(
        pki_dir,
        prefix="tl-signer",
        csca_passphrase=csca_passphrase,
        key_type=key_type,
        certify=lambda csca, csca_key, public: make_trust_list_signer(
            csca, csca_key, public, now=now, days=days
        ),
        record=lambda index, cert_rel, key_rel: replace(
            index, trust_list_signer_cert=cert_rel, trust_list_signer_key=key_rel
        ),
        now=now,
    )


def create_operator_key(
    pki_dir: Path,
    *,
    prefix: str,
    csca_passphrase: bytes,
    key_type: str,
    certify: Callable[[x509.Certificate, PrivateKey, PublicKey], x509.Certificate],
    record: Callable[[PkiIndex, str, str], PkiIndex],
    now: dt.datetime,
) -> x509.Certificate:
    """A key of the national operator (trust-list signer, TSA) certified by the CSCA.

    ``certify(csca, csca_key, public_key)`` makes the certificate; the key is
    saved encrypted with the CSCA passphrase as ``<prefix>-<serial>.key.pem``
    (never overwritten), the certificate beside it, and ``record(index,
    cert_rel, key_rel)`` notes both in the index, all under the PKI lock.
    """
    with _locked(pki_dir):
        index = load_index(pki_dir)
        csca, csca_key = _usable_csca(pki_dir, csca_passphrase, now)
        key = new_private_key(key_type)
        cert = certify(csca, csca_key, key.public_key())
        tag = f"{cert.serial_number:x}"[:16]
        key_rel, cert_rel = f"{prefix}-{tag}.key.pem", f"{prefix}-{tag}.pem"
        _write_new(pki_dir / key_rel, _encrypted_pem(key, csca_passphrase), private=True)
        atomic_write(pki_dir / cert_rel, cert.public_bytes(PEM))
        _save(pki_dir, record(index, cert_rel, key_rel))
    return cert


def trust_list_signer(pki_dir: Path, *, csca_passphrase: bytes) -> SoftwareKey:
    """The trust-list signing key (decrypted with the CSCA passphrase) with its chain."""
    index = load_index(pki_dir)
    if index.trust_list_signer_cert is None or index.trust_list_signer_key is None:
        raise ConfigError("no trust-list signer yet; run init-tl-signer first")
    cert = load_certificate_file(pki_dir / index.trust_list_signer_cert)
    key = _load_key(pki_dir, index.trust_list_signer_key, csca_passphrase, "trust-list signer")
    return SoftwareKey(private_key=key, certificate=cert, chain=(csca_certificate(pki_dir),))


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    path: Path
    seq: int
    dscs: int
    revoked_dscs: int
    revoked_uvcis: int
    crls: int
    warnings: tuple[str, ...] = ()


def export_trust_list(
    pki_dir: Path,
    out: Path | None,
    *,
    csca_passphrase: bytes,
    now: dt.datetime,
    next_update_days: int | None = 7,
    extra_revoked_uvcis: Sequence[str] = (),
) -> ExportResult:
    """Sign and write the trust list (docs/trust-list.md) with the next sequence number.

    Holds the CSCA, every DSC not expired at ``now`` (revoked ones included,
    so verifiers can say "revoked"), the revoked DSCs with their revocation
    time, the revoked UVCIs (``revoke-uvci`` and ``extra_revoked_uvcis``, e.g.
    the issuance ledger's export: ``signer ledger export-revoked``) and the
    latest CRL. The file is written to ``trustlist/trustlist-<seq>.cbor`` in
    the PKI and, if given, to ``out``.
    """
    from keys.trustlist import build_trust_list

    _check_now(now)
    for uvci in extra_revoked_uvcis:
        if not _UVCI.fullmatch(uvci) or not is_valid_uvci(uvci):
            raise ConfigError(f"not a UVCI with its check character: {uvci[:80]!r}")
    if next_update_days is not None and next_update_days <= 0:
        raise ConfigError("next update days must be positive (or none)")
    with _locked(pki_dir):
        index = load_index(pki_dir)
        signer = trust_list_signer(pki_dir, csca_passphrase=csca_passphrase)
        if (
            not signer.certificate.not_valid_before_utc
            <= now
            <= signer.certificate.not_valid_after_utc
        ):
            raise ConfigError(
                "the trust-list signer certificate is not valid now; run init-tl-signer"
            )
        csca = csca_certificate(pki_dir)
        dscs: list[x509.Certificate] = []
        revoked: list[tuple[x509.Certificate, dt.datetime]] = []
        for d in index.dscs:
            cert = load_certificate_file(pki_dir / d.cert)
            if d.revoked_at is not None:
                revoked.append((cert, _parse_iso(d.revoked_at)))
            if cert.not_valid_after_utc >= now:
                dscs.append(cert)
        crls = []
        warnings = []
        if index.crls:
            latest = index.crls[-1]
            crls.append(x509.load_der_x509_crl((pki_dir / latest.der).read_bytes()))
            newest_revocation = max((r[1] for r in revoked), default=None)
            if newest_revocation is not None and newest_revocation > _parse_iso(latest.this_update):
                warnings.append("the latest CRL predates a revocation; run issue-crl")
            if _parse_iso(latest.next_update) < now:
                warnings.append("the latest CRL is past its nextUpdate; run issue-crl")
        elif revoked:
            warnings.append("no CRL has been issued; run issue-crl")
        seq = index.trust_list_seq + 1
        revoked_uvcis = sorted({*(u for u, _ in index.revoked_uvcis), *extra_revoked_uvcis})
        blob = build_trust_list(
            signer=signer,
            cscas=[csca],
            dscs=dscs,
            revoked_dscs=revoked,
            revoked_uvcis=revoked_uvcis,
            crls=crls,
            seq=seq,
            now=now,
            country=index.country,
            next_update=None
            if next_update_days is None
            else now + dt.timedelta(days=next_update_days),
        )
        rel = f"trustlist/trustlist-{seq}.cbor"
        atomic_write(pki_dir / rel, blob)
        # The sequence number is spent before the list leaves the PKI: a failed
        # --out must not let the next export sign a different list with this seq.
        _save(
            pki_dir,
            replace(
                index, trust_list_seq=seq, trust_lists=(*index.trust_lists, (seq, rel, _iso(now)))
            ),
        )
        if out is not None:
            try:
                atomic_write(out, blob)
            except OSError as err:
                raise ConfigError(
                    f"trust list seq {seq} saved as {pki_dir / rel} but not written to {out}: "
                    f"{err.strerror or err}"
                ) from None
    return ExportResult(
        path=out if out is not None else pki_dir / rel,
        seq=seq,
        dscs=len(dscs),
        revoked_dscs=len(revoked),
        revoked_uvcis=len(revoked_uvcis),
        crls=len(crls),
        warnings=tuple(warnings),
    )
