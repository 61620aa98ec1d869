"""PKCS#11 signing keys (HSM, USB token, SoftHSM2) through python-pkcs11.

    >>> from keys.pkcs11_key import Pkcs11Key
    >>> # with Pkcs11Key(module="/usr/lib/softhsm/libsofthsm2.so", token_label="HC-01",
    >>> #                key_label="dsc", pin=pin) as key:
    >>> #     signature = key.sign(b"data")      # raw r||s for ES256

Facts this module is built around (measured with SoftHSM 2.6, see
FIELD-NOTES): login state is per process and token, so a second ``C_Login``
fails with ``UserAlreadyLoggedIn``: :func:`token_session` keeps ONE logged-in
session per (module, token) and process, shared by every key on that token.
SoftHSM2 has no ``CKM_ECDSA_SHA256``: we hash in software and sign the
digest with ``CKM_ECDSA``, whose result is already raw ``r || s`` (PKCS#11
v2.40 section 2.3.1), the form COSE wants (RFC 9053 section 2.1). PS256 is
``CKM_RSA_PKCS_PSS`` over a software SHA-256 digest with MGF1-SHA256 and a
32-byte salt (RFC 8230 section 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pkcs11
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pkcs11 import MGF, Attribute, Mechanism, ObjectClass
from pkcs11 import exceptions as p11err

from keys.pkcs11_module import DEFAULT_MODULE as DEFAULT_MODULE  # re-exported
from keys.pkcs11_module import default_module as default_module
from keys.software import load_certificate_file
from verifier.codec import CoseAlgorithm
from verifier.crypto import verify_signature
from verifier.errors import KeyBackendError

_HASHES = {
    CoseAlgorithm.ES256: hashlib.sha256,
    CoseAlgorithm.ES384: hashlib.sha384,
    CoseAlgorithm.PS256: hashlib.sha256,
}


# --------------------------------------------------------------------------
# Session registry: one logged-in session per (module, token) per process.
# --------------------------------------------------------------------------


@dataclass
class _Entry:
    session: Any
    pin_digest: bytes
    rw: bool
    module: str
    users: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)


_SALT = os.urandom(16)
_registry: dict[tuple[str, str], _Entry] = {}
_registry_lock = threading.Lock()
_registry_pid = os.getpid()


def _after_fork_check() -> None:
    """In a forked child, drop the parent's sessions and re-initialise the modules.

    PKCS#11 state does not survive fork (PKCS#11 v2.40 section 6.7.7): the
    child must call C_Initialize again, or the token still believes it is
    logged in. Call with ``_registry_lock`` held.
    """
    global _registry_pid
    if _registry_pid == os.getpid():
        return
    modules = {entry.module for entry in _registry.values()}
    _registry.clear()
    _registry_pid = os.getpid()
    for module in modules:
        with contextlib.suppress(p11err.PKCS11Error):
            pkcs11.lib(module).reinitialize()


def _pin_digest(pin: str) -> bytes:
    return hashlib.sha256(_SALT + pin.encode()).digest()


def load_module(module: str) -> Any:
    """Load (once per process) a PKCS#11 module, or raise KeyBackendError."""
    if not Path(module).exists():
        raise KeyBackendError(f"PKCS#11 module not found: {module}")
    try:
        return pkcs11.lib(module)
    except p11err.PKCS11Error as err:
        raise KeyBackendError(f"cannot load PKCS#11 module {module}: {err}") from None


def _find_token(lib: Any, module: str, token_label: str) -> Any:
    try:
        return lib.get_token(token_label=token_label)
    except p11err.NoSuchToken:
        raise KeyBackendError(f"no PKCS#11 token labelled {token_label!r} in {module}") from None
    except p11err.MultipleTokensReturned:
        raise KeyBackendError(f"several tokens labelled {token_label!r} in {module}") from None
    except p11err.PKCS11Error as err:
        raise KeyBackendError(f"cannot list tokens of {module}: {_name(err)}") from None


def _name(err: BaseException) -> str:
    return type(err).__name__


def _login(token: Any, token_label: str, pin: str, rw: bool) -> Any:
    try:
        return token.open(rw=rw, user_pin=pin)
    except (p11err.PinIncorrect, p11err.PinInvalid, p11err.PinLenRange):
        raise KeyBackendError(f"wrong PIN for token {token_label!r}") from None
    except p11err.PinLocked:
        raise KeyBackendError(f"the PIN of token {token_label!r} is locked") from None
    except p11err.PinExpired:
        raise KeyBackendError(f"the PIN of token {token_label!r} has expired") from None
    except p11err.UserPinNotInitialized:
        raise KeyBackendError(f"token {token_label!r} has no user PIN set") from None
    except p11err.UserAlreadyLoggedIn:
        raise KeyBackendError(
            f"token {token_label!r} is already logged in by other code in this process; "
            "share its session through keys.pkcs11_key.token_session"
        ) from None
    except p11err.PKCS11Error as err:
        raise KeyBackendError(f"cannot open token {token_label!r}: {_name(err)}") from None


@dataclass(frozen=True)
class TokenSession:
    """A shared logged-in session and the lock that serialises its operations."""

    session: Any
    lock: threading.RLock
    token_label: str
    module: str


@contextmanager
def token_session(
    module: str, token_label: str, pin: str, *, rw: bool = False
) -> Iterator[TokenSession]:
    """Borrow the process's logged-in session on a token (opened on first use).

    Every borrower on the same (module, token) gets the same session; it is
    closed (logging the process out) when the last borrower leaves. A borrower
    with a different PIN than the one that logged in is refused. Hold
    ``lock`` around each operation: a PKCS#11 session is not thread-safe.
    """
    key = (os.path.realpath(module), token_label)
    with _registry_lock:
        _after_fork_check()
        entry = _registry.get(key)
        if entry is None:
            lib = load_module(module)
            token = _find_token(lib, module, token_label)
            session = _login(token, token_label, pin, rw)
            entry = _Entry(session=session, pin_digest=_pin_digest(pin), rw=rw, module=module)
            _registry[key] = entry
        else:
            if not hmac.compare_digest(entry.pin_digest, _pin_digest(pin)):
                raise KeyBackendError(f"wrong PIN for token {token_label!r}")
            if rw and not entry.rw:
                raise KeyBackendError(
                    f"token {token_label!r} is open read-only in this process; "
                    "close its keys before changing the token"
                )
        entry.users += 1
    try:
        yield TokenSession(
            session=entry.session, lock=entry.lock, token_label=token_label, module=module
        )
    finally:
        with _registry_lock:
            # After a fork the entry belongs to the parent: leave it alone.
            if _registry_pid == os.getpid() and _registry.get(key) is entry:
                entry.users -= 1
                if entry.users == 0:
                    del _registry[key]
                    with contextlib.suppress(p11err.PKCS11Error):
                        entry.session.close()


def open_session_count() -> int:
    """Number of logged-in sessions the registry holds (for tests and diagnostics)."""
    with _registry_lock:
        return len(_registry)


# --------------------------------------------------------------------------
# The key
# --------------------------------------------------------------------------


def _find_one(session: Any, cls: ObjectClass, label: str | None, key_id: bytes | None) -> Any:
    attrs: dict[Attribute, Any] = {Attribute.CLASS: cls}
    if label is not None:
        attrs[Attribute.LABEL] = label
    if key_id is not None:
        attrs[Attribute.ID] = key_id
    found = list(session.get_objects(attrs))
    if len(found) > 1:
        raise KeyBackendError(
            f"several {cls.name.lower()} objects match {_describe(label, key_id)}"
        )
    return found[0] if found else None


def _describe(label: str | None, key_id: bytes | None) -> str:
    parts = []
    if label is not None:
        parts.append(f"label {label!r}")
    if key_id is not None:
        parts.append(f"id {key_id.hex()}")
    return " and ".join(parts)


def _alg_for(cert: x509.Certificate) -> CoseAlgorithm:
    pub = cert.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        return CoseAlgorithm.PS256
    if isinstance(pub, ec.EllipticCurvePublicKey):
        if isinstance(pub.curve, ec.SECP256R1):
            return CoseAlgorithm.ES256
        if isinstance(pub.curve, ec.SECP384R1):
            return CoseAlgorithm.ES384
        raise KeyBackendError(f"unsupported EC curve {pub.curve.name}")
    raise KeyBackendError("only EC and RSA keys are supported")


def _token_key_alg(key: Any) -> CoseAlgorithm | None:
    """The COSE algorithm a token private key can do, None if the token does not say."""
    from pkcs11 import KeyType
    from pkcs11.util.ec import encode_named_curve_parameters

    if key.key_type == KeyType.RSA:
        return CoseAlgorithm.PS256
    if key.key_type != KeyType.EC:
        raise KeyBackendError("only EC and RSA keys are supported")
    try:
        params = bytes(key[Attribute.EC_PARAMS])
    except p11err.PKCS11Error:
        return None
    if params == encode_named_curve_parameters(_P256_OID):
        return CoseAlgorithm.ES256
    if params == encode_named_curve_parameters(_P384_OID):
        return CoseAlgorithm.ES384
    raise KeyBackendError("unsupported EC curve in the token")


class Pkcs11Key:
    """A private key inside a PKCS#11 token, with its certificate.

    The constructor does no I/O; ``with key:`` (or :meth:`open`) logs in
    (sharing the process's session on that token), finds the private key by
    label and/or id, takes the certificate from the token (a CKO_CERTIFICATE
    with the same label/id) unless ``cert_path`` is given, and checks with a
    test signature that certificate and key belong together.
    """

    def __init__(
        self,
        *,
        module: str,
        token_label: str,
        pin: str,
        key_label: str | None = None,
        key_id: bytes | None = None,
        cert_path: str | Path | None = None,
        chain_paths: Sequence[str | Path] = (),
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        if key_label is None and key_id is None:
            raise KeyBackendError("a PKCS#11 key needs a key label or a key id")
        self.module = module
        self.token_label = token_label
        self.key_label = key_label
        self.key_id = key_id
        self._pin = pin
        self._cert_path = cert_path
        self._chain_paths = tuple(chain_paths)
        self._extra_chain = tuple(chain)
        self._cm: Any = None
        self._ts: TokenSession | None = None
        self._key: Any = None
        self._cert: x509.Certificate | None = None
        self._chain: tuple[x509.Certificate, ...] = ()
        self._alg: CoseAlgorithm | None = None
        self._mechanism: Mechanism | None = None
        self._pid = 0

    def __repr__(self) -> str:  # never shows the PIN
        return (
            f"Pkcs11Key(token_label={self.token_label!r}, "
            f"key={_describe(self.key_label, self.key_id)!r}, open={self._ts is not None})"
        )

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self) -> Pkcs11Key:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> None:
        if self._ts is not None:
            return
        cm = token_session(self.module, self.token_label, self._pin)
        ts = cm.__enter__()
        try:
            with ts.lock:
                self._load(ts)
        except BaseException:
            cm.__exit__(None, None, None)
            raise
        self._cm, self._ts, self._pid = cm, ts, os.getpid()

    def close(self) -> None:
        cm, self._cm, self._ts, self._key = self._cm, None, None, None
        if cm is not None:
            cm.__exit__(None, None, None)

    def _load(self, ts: TokenSession) -> None:
        where = f"{_describe(self.key_label, self.key_id)} in token {self.token_label!r}"
        try:
            key = _find_one(ts.session, ObjectClass.PRIVATE_KEY, self.key_label, self.key_id)
            if key is None:
                raise KeyBackendError(f"no private key with {where}")
            if self._cert_path is not None:
                cert = load_certificate_file(self._cert_path)
            else:
                obj = _find_one(ts.session, ObjectClass.CERTIFICATE, self.key_label, self.key_id)
                if obj is None:
                    raise KeyBackendError(
                        f"no certificate with {where}: write it to the token or give a certificate file"
                    )
                try:
                    cert = x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
                except ValueError:
                    raise KeyBackendError(
                        f"the certificate with {where} is not valid X.509"
                    ) from None
            chain = self._extra_chain + tuple(load_certificate_file(p) for p in self._chain_paths)
            alg = _alg_for(cert)
            if _token_key_alg(key) not in (alg, None):
                # Never hand a mechanism of the wrong family to the token (SoftHSM2 crashes).
                raise KeyBackendError(
                    f"the certificate does not match the private key with {where}"
                )
            mechanisms = ts.session.token.slot.get_mechanisms()
        except p11err.PKCS11Error as err:
            raise KeyBackendError(f"cannot read {where}: {_name(err)}") from None
        self._key, self._cert, self._chain, self._alg = key, cert, chain, alg
        self._mechanism = self._pick_mechanism(alg, mechanisms)
        probe = b"vn-dcc key check"
        if not verify_signature(cert.public_key(), alg, probe, self._sign_locked(probe)):
            raise KeyBackendError(f"the certificate does not match the private key with {where}")

    @staticmethod
    def _pick_mechanism(alg: CoseAlgorithm, available: set[Any]) -> Mechanism:
        if alg == CoseAlgorithm.PS256:
            prefs = (Mechanism.RSA_PKCS_PSS, Mechanism.SHA256_RSA_PKCS_PSS)
        elif alg == CoseAlgorithm.ES256:
            prefs = (Mechanism.ECDSA, Mechanism.ECDSA_SHA256)
        else:
            prefs = (Mechanism.ECDSA, Mechanism.ECDSA_SHA384)
        for mech in prefs:
            if mech in available:
                return mech
        raise KeyBackendError(f"the token supports no mechanism for {alg.name}")

    # -- SigningKey ----------------------------------------------------------

    def _require_open(self) -> TokenSession:
        if self._ts is None:
            raise KeyBackendError("PKCS#11 key is not open: use it as a context manager")
        if self._pid != os.getpid():
            raise KeyBackendError("PKCS#11 key was opened in another process: open it after fork")
        return self._ts

    @property
    def alg(self) -> CoseAlgorithm:
        self._require_open()
        assert self._alg is not None
        return self._alg

    @property
    def certificate(self) -> x509.Certificate:
        self._require_open()
        assert self._cert is not None
        return self._cert

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        return self._chain

    @property
    def token(self) -> TokenSession:
        """The shared session (e.g. for pyHanko's ``PKCS11Signer(pkcs11_session=...)``)."""
        return self._require_open()

    @property
    def private_key_object(self) -> Any:
        """The python-pkcs11 private key object (for CMS signers that need it)."""
        self._require_open()
        return self._key

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (hashed here in software); COSE form, raw r||s for ECDSA."""
        ts = self._require_open()
        with ts.lock:
            return self._sign_locked(data)

    def sign_digest(self, digest: bytes) -> bytes:
        """Sign an already computed digest with the raw mechanism (ECDSA raw r||s, PSS)."""
        ts = self._require_open()
        if self._mechanism not in (Mechanism.ECDSA, Mechanism.RSA_PKCS_PSS):
            raise KeyBackendError("this token signs whole messages only")
        with ts.lock:
            return self._sign_raw(digest)

    def _sign_locked(self, data: bytes) -> bytes:
        mech = self._mechanism
        if mech in (Mechanism.ECDSA, Mechanism.RSA_PKCS_PSS):
            assert self._alg is not None
            return self._sign_raw(_HASHES[self._alg](data).digest())
        try:
            if mech == Mechanism.SHA256_RSA_PKCS_PSS:
                return bytes(
                    self._key.sign(
                        data, mechanism=mech, mechanism_param=(Mechanism.SHA256, MGF.SHA256, 32)
                    )
                )
            return bytes(self._key.sign(data, mechanism=mech))
        except p11err.PKCS11Error as err:
            raise KeyBackendError(
                f"token {self.token_label!r} failed to sign: {_name(err)}"
            ) from None

    def _sign_raw(self, digest: bytes) -> bytes:
        try:
            if self._mechanism == Mechanism.RSA_PKCS_PSS:
                return bytes(
                    self._key.sign(
                        digest,
                        mechanism=Mechanism.RSA_PKCS_PSS,
                        mechanism_param=(Mechanism.SHA256, MGF.SHA256, 32),
                    )
                )
            return bytes(self._key.sign(digest, mechanism=Mechanism.ECDSA))
        except p11err.PKCS11Error as err:
            raise KeyBackendError(
                f"token {self.token_label!r} failed to sign: {_name(err)}"
            ) from None


# --------------------------------------------------------------------------
# Token administration used by the PKI: keys generated inside the token.
# --------------------------------------------------------------------------

_P256_OID = "1.2.840.10045.3.1.7"
_P384_OID = "1.3.132.0.34"


def generate_key_in_token(
    ts: TokenSession, *, key_type: str, label: str, key_id: bytes
) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
    """Generate a key pair inside the token (private part sensitive, never extractable).

    ``ts`` must be a read-write session (``token_session(..., rw=True)``).
    Returns the public key, to be certified by the CSCA.
    """
    from cryptography.hazmat.primitives.serialization import load_der_public_key
    from pkcs11 import KeyType
    from pkcs11.util.ec import encode_ec_public_key, encode_named_curve_parameters
    from pkcs11.util.rsa import encode_rsa_public_key

    private_template = {
        Attribute.SENSITIVE: True,
        Attribute.EXTRACTABLE: False,
        Attribute.PRIVATE: True,
        Attribute.SIGN: True,
    }
    with ts.lock:
        session = ts.session
        if _find_one(session, ObjectClass.PRIVATE_KEY, label, None) is not None:
            raise KeyBackendError(
                f"token {ts.token_label!r} already holds a key labelled {label!r}"
            )
        try:
            if key_type in ("ec-p256", "ec-p384"):
                oid = _P256_OID if key_type == "ec-p256" else _P384_OID
                params = session.create_domain_parameters(
                    KeyType.EC,
                    {Attribute.EC_PARAMS: encode_named_curve_parameters(oid)},
                    local=True,
                )
                pub, _ = params.generate_keypair(
                    store=True, label=label, id=key_id, private_template=private_template
                )
                der = encode_ec_public_key(pub)
            elif key_type in ("rsa-2048", "rsa-3072"):
                pub, _ = session.generate_keypair(
                    KeyType.RSA,
                    int(key_type[4:]),
                    store=True,
                    label=label,
                    id=key_id,
                    private_template=private_template,
                )
                der = encode_rsa_public_key(pub)
            else:
                raise KeyBackendError(f"cannot generate a {key_type!r} key in a token")
        except p11err.PKCS11Error as err:
            raise KeyBackendError(
                f"token {ts.token_label!r} could not generate the key: {_name(err)}"
            ) from None
    public = load_der_public_key(der)
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise KeyBackendError("the token returned an unsupported public key")
    return public


def write_certificate_to_token(
    ts: TokenSession, cert: x509.Certificate, *, label: str, key_id: bytes
) -> None:
    """Store ``cert`` in the token as a CKO_CERTIFICATE next to its key (same label and id)."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from pkcs11 import CertificateType

    attrs = {
        Attribute.CLASS: ObjectClass.CERTIFICATE,
        Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
        Attribute.TOKEN: True,
        Attribute.PRIVATE: False,
        Attribute.LABEL: label,
        Attribute.ID: key_id,
        Attribute.SUBJECT: cert.subject.public_bytes(),
        Attribute.ISSUER: cert.issuer.public_bytes(),
        Attribute.SERIAL_NUMBER: _der_integer(cert.serial_number),
        Attribute.VALUE: cert.public_bytes(Encoding.DER),
    }
    with ts.lock:
        try:
            for old in list(
                ts.session.get_objects(
                    {Attribute.CLASS: ObjectClass.CERTIFICATE, Attribute.LABEL: label}
                )
            ):
                old.destroy()
            ts.session.create_object(attrs)
        except p11err.PKCS11Error as err:
            raise KeyBackendError(
                f"token {ts.token_label!r} refused the certificate: {_name(err)}"
            ) from None


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")
    if len(body) < 128:
        return bytes([0x02, len(body)]) + body
    length = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([0x02, 0x80 | len(length)]) + length + body
