"""The one signing primitive every key backend provides.

    >>> from keys.base import SigningKey   # protocol
    >>> # key.sign(data) -> COSE-form signature (raw r||s for ECDSA)

Backends (software file, PKCS#11 token) differ only in :meth:`SigningKey.sign`;
COSE, CMS/PAdES and trust-list structures are built once on top of it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from verifier.codec import CoseAlgorithm
from verifier.crypto import kid_for_certificate


@runtime_checkable
class SigningKey(Protocol):
    """A private key with its certificate.

    ``sign`` hashes ``data`` itself (SHA-256 for ES256/PS256) and returns the
    signature in COSE form: raw ``r || s`` for ECDSA, plain bytes for PSS.
    """

    @property
    def alg(self) -> CoseAlgorithm: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """Issuer certificates above ``certificate`` (may be empty)."""
        ...

    def sign(self, data: bytes) -> bytes: ...


def kid_of(key: SigningKey) -> bytes:
    """hcert kid of the key's certificate."""
    return kid_for_certificate(key.certificate.public_bytes(Encoding.DER))
