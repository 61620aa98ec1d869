"""Signature primitives shared by signer and verifier (no keys, no I/O).

COSE carries ECDSA signatures as raw ``r || s`` (RFC 9053 section 2.1);
``cryptography`` and CMS use DER. PS256 is RSASSA-PSS with SHA-256, MGF1
SHA-256 and a 32-byte salt (RFC 8230).
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from verifier.codec import CoseAlgorithm

_EC_HASH = {
    CoseAlgorithm.ES256: (hashes.SHA256, 32),
    CoseAlgorithm.ES384: (hashes.SHA384, 48),
    CoseAlgorithm.ES512: (hashes.SHA512, 66),
}

PUBLIC_KEY_TYPES = (ec.EllipticCurvePublicKey, rsa.RSAPublicKey)


def kid_for_certificate(der: bytes) -> bytes:
    """hcert 1.x section 3.3.1: first 8 bytes of SHA-256 over the DSC's DER."""
    return hashlib.sha256(der).digest()[:8]


def ecdsa_der_to_raw(der: bytes, size: int) -> bytes:
    """DER ECDSA-Sig-Value -> fixed-size ``r || s`` (``size`` bytes each).

    The signer calls this once per certificate, so the usual shape (a
    SEQUENCE with a one-byte length holding two positive INTEGERs of at most
    ``size`` significant bytes, as OpenSSL writes every P-256 and P-384
    signature) is taken apart by slicing; anything else goes through
    ``decode_dss_signature``, which raises ``ValueError`` for bad DER.
    """
    n = len(der)
    if n > 8 and der[0] == 0x30 and der[1] == n - 2 and der[2] == 0x02:
        r_end = 4 + der[3]
        if r_end + 2 < n and der[r_end] == 0x02 and der[r_end + 1] == n - r_end - 2:
            r = der[4:r_end]
            s = der[r_end + 2 :]
            if _fits(r, size) and _fits(s, size):
                return r[-size:].rjust(size, b"\0") + s[-size:].rjust(size, b"\0")
    r_int, s_int = decode_dss_signature(der)
    return r_int.to_bytes(size, "big") + s_int.to_bytes(size, "big")


def _fits(integer: bytes, size: int) -> bool:
    """A minimal positive DER INTEGER content of at most ``size`` significant bytes."""
    n = len(integer)
    if n == 0 or integer[0] & 0x80:
        return False
    if n > 1 and integer[0] == 0 and not integer[1] & 0x80:
        return False  # not minimal
    return n <= size or (n == size + 1 and integer[0] == 0)


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """``r || s`` -> DER ECDSA-Sig-Value."""
    half = len(raw) // 2
    return encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )


def pss_padding() -> padding.PSS:
    """RSASSA-PSS parameters of COSE PS256 (RFC 8230 section 2)."""
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def verify_signature(public_key: object, alg: object, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` (COSE form) over ``data`` verifies; never raises."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and alg in _EC_HASH:
            hash_cls, size = _EC_HASH[CoseAlgorithm(alg)]  # type: ignore[arg-type]
            if len(signature) != 2 * size or public_key.curve.key_size > 8 * size + 7:
                return False
            public_key.verify(ecdsa_raw_to_der(signature), data, ec.ECDSA(hash_cls()))
            return True
        if isinstance(public_key, rsa.RSAPublicKey) and alg == CoseAlgorithm.PS256:
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
            public_key.verify(signature, data, pss, hashes.SHA256())
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def alg_matches_key(public_key: object, alg: object) -> bool:
    """Whether a COSE algorithm can be used with this public key at all."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return alg in _EC_HASH
    if isinstance(public_key, rsa.RSAPublicKey):
        return alg == CoseAlgorithm.PS256
    return False
