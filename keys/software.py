"""Software signing keys: encrypted PKCS#8 PEM (+ certificate PEM) or PKCS#12.

    >>> from keys.software import SoftwareKey
    >>> # key = SoftwareKey.from_pem_files("dsc.key.pem", "dsc.pem", passphrase=b"...")
    >>> # signature = key.sign(b"data")      # raw r||s for ES256

The passphrase is passed in by the caller, who reads it from the environment
or a prompt (see :mod:`keys.secrets`), never from argv.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from verifier.codec import CoseAlgorithm
from verifier.crypto import ecdsa_der_to_raw, pss_padding
from verifier.errors import KeyBackendError

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def alg_for_private_key(key: PrivateKey) -> CoseAlgorithm:
    """ES256 for P-256, ES384 for P-384, PS256 for RSA."""
    if isinstance(key, rsa.RSAPrivateKey):
        return CoseAlgorithm.PS256
    if isinstance(key.curve, ec.SECP256R1):
        return CoseAlgorithm.ES256
    if isinstance(key.curve, ec.SECP384R1):
        return CoseAlgorithm.ES384
    raise KeyBackendError(f"unsupported EC curve {key.curve.name}")


@dataclass(frozen=True)
class SoftwareKey:
    """A private key held in memory, with its certificate and chain."""

    private_key: PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = field(default=())
    # Prepared in __post_init__ for the hot path (not part of the key's identity).
    #: (key, ECDSA parameters, r/s size) for an EC key of a COSE algorithm.
    _ec: tuple[ec.EllipticCurvePrivateKey, ec.ECDSA, int] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        # The signing hot path (one call per certificate): algorithm, ECDSA
        # parameters and r/s size are worked out once, here, not per call.
        # An unsupported curve is still reported by ``alg``/``sign``, as before.
        key = self.private_key
        prepared = None
        if isinstance(key, ec.EllipticCurvePrivateKey):
            try:
                alg = alg_for_private_key(key)
            except KeyBackendError:
                alg = None
            if alg is not None:
                ecdsa = ec.ECDSA(hashes.SHA256() if alg == CoseAlgorithm.ES256 else hashes.SHA384())
                prepared = (key, ecdsa, (key.curve.key_size + 7) // 8)
        object.__setattr__(self, "_ec", prepared)

    @property
    def alg(self) -> CoseAlgorithm:
        return alg_for_private_key(self.private_key)

    def sign(self, data: bytes) -> bytes:
        prepared = self._ec
        if prepared is not None:
            ec_key, ecdsa, size = prepared
            return ecdsa_der_to_raw(ec_key.sign(data, ecdsa), size)
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, pss_padding(), hashes.SHA256())
        alg = self.alg
        hash_alg = hashes.SHA256() if alg == CoseAlgorithm.ES256 else hashes.SHA384()
        size = (key.curve.key_size + 7) // 8
        return ecdsa_der_to_raw(key.sign(data, ec.ECDSA(hash_alg)), size)

    @classmethod
    def from_pem_files(
        cls,
        key_path: str | Path,
        cert_path: str | Path,
        *,
        passphrase: bytes | None,
        chain_paths: Sequence[str | Path] = (),
    ) -> SoftwareKey:
        """Load an (encrypted) PKCS#8 PEM key and its certificate PEM."""
        key_bytes = _read(key_path)
        try:
            key = serialization.load_pem_private_key(key_bytes, password=passphrase)
        except TypeError as err:
            raise KeyBackendError(f"{key_path}: {_passphrase_problem(err)}") from None
        except ValueError:
            raise KeyBackendError(
                f"{key_path}: cannot decrypt the key (wrong passphrase?) or not a PEM private key"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyBackendError(f"{key_path}: only EC and RSA keys are supported")
        cert = load_certificate_file(cert_path)
        chain = tuple(load_certificate_file(p) for p in chain_paths)
        _check_pair(key, cert, str(cert_path))
        return cls(private_key=key, certificate=cert, chain=chain)

    @classmethod
    def from_pkcs12(cls, path: str | Path, *, passphrase: bytes | None) -> SoftwareKey:
        """Load a PKCS#12 (.p12/.pfx) file holding key, certificate and chain."""
        data = _read(path)
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
        except ValueError:
            raise KeyBackendError(f"{path}: cannot open PKCS#12 (wrong passphrase?)") from None
        if key is None or cert is None:
            raise KeyBackendError(f"{path}: PKCS#12 lacks a private key or certificate")
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyBackendError(f"{path}: only EC and RSA keys are supported")
        _check_pair(key, cert, str(path))
        return cls(private_key=key, certificate=cert, chain=tuple(extra or ()))


def _passphrase_problem(err: TypeError) -> str:
    text = str(err)  # cryptography: "Password was given but private key is not encrypted."
    if "not encrypted" in text:  # versus "Password was not given but private key is encrypted"
        return "key is not encrypted but a passphrase was given"
    return "key is encrypted: a passphrase is needed"


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise KeyBackendError(f"cannot read {path}: {err.strerror}") from None


def load_certificate_file(path: str | Path) -> x509.Certificate:
    """Load one certificate from PEM or DER."""
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise KeyBackendError(f"{path}: not a valid X.509 certificate") from None


def _check_pair(key: PrivateKey, cert: x509.Certificate, where: str) -> None:
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if key.public_key().public_bytes(enc, fmt) != cert.public_key().public_bytes(enc, fmt):
        raise KeyBackendError(f"{where}: certificate does not match the private key")
