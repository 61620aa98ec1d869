"""Signature primitives shared by signer and verifier (no keys, no I/O).

COSE carries ECDSA signatures as raw ``r || s`` (RFC 9053 section 2.1);
``cryptography`` and CMS use DER. PS256 is RSASSA-PSS with SHA-256, MGF1
SHA-256 and a 32-byte salt (RFC 8230 section 2: the salt is as long as the
hash); a PSS signature with any other salt length does not verify.

    >>> from cryptography.hazmat.primitives.asymmetric import ec
    >>> key = ec.generate_private_key(ec.SECP256R1())
    >>> dcc_key_problem(key.public_key()) is None
    True
    >>> dcc_key_problem(ec.generate_private_key(ec.SECP521R1()).public_key())
    'EC key on secp521r1: an EU DCC is signed with ES256 (P-256, or P-384 as some issuers did) or PS256 (RSA, at least 2048 bits)'
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

#: COSE ECDSA algorithm -> (hash, curve name, size of r and of s). RFC 9053
#: section 2.1 pairs each hash with one curve; only those pairs verify.
_EC_ALGS = {
    CoseAlgorithm.ES256: (hashes.SHA256, "secp256r1", 32),
    CoseAlgorithm.ES384: (hashes.SHA384, "secp384r1", 48),
    CoseAlgorithm.ES512: (hashes.SHA512, "secp521r1", 66),
}
_EC_ALG_IDS = frozenset(int(a) for a in _EC_ALGS)
#: ES256 (ECDSA with SHA-256) is also verified with a P-384 key. hcert names
#: P-256, but real issuers signed ES256 with P-384 DSCs (Spain's Illes Balears:
#: the official EU test vectors ES/401-403 expect those to verify), and the EU
#: reference verifier apps verify "SHA256withECDSA" with any curve of the DSC.
#: The signature is then ``r || s`` of the key's size (96 bytes).
_ES256_EXTRA_CURVES = {"secp384r1": 48}
#: RSA moduli a PS256 signature may use: hcert 1.x section 3.3.2 names a
#: 2048-bit modulus (larger ones are accepted); OpenSSL refuses more than
#: 16384 bits.
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 16384
#: RFC 8230 section 2: PS256's salt is as long as its SHA-256 hash.
PS256_SALT_LENGTH = 32

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
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PS256_SALT_LENGTH)


def _rsa_key_ok(key: rsa.RSAPublicKey) -> bool:
    """A modulus within bounds and an odd public exponent of at least 3."""
    e = key.public_numbers().e
    return MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS and e >= 3 and e % 2 == 1


def verify_signature(public_key: object, alg: object, data: bytes, signature: bytes) -> bool:
    """True when ``signature`` (COSE form) over ``data`` verifies; never raises.

    ES256/ES384/ES512 need the matching curve (P-256/P-384/P-521; ES256 also
    P-384, see ``_ES256_EXTRA_CURVES``) and a raw ``r || s`` of exactly twice
    the curve's size; PS256 needs an RSA key of
    2048-16384 bits and a 32-byte salt, nothing else.
    """
    try:
        ec_alg = _ec_alg(alg)
        if isinstance(public_key, ec.EllipticCurvePublicKey) and ec_alg is not None:
            hash_cls, curve, size = ec_alg
            if alg == CoseAlgorithm.ES256 and public_key.curve.name in _ES256_EXTRA_CURVES:
                curve, size = public_key.curve.name, _ES256_EXTRA_CURVES[public_key.curve.name]
            if len(signature) != 2 * size or public_key.curve.name != curve:
                return False
            public_key.verify(ecdsa_raw_to_der(signature), data, ec.ECDSA(hash_cls()))
            return True
        if isinstance(public_key, rsa.RSAPublicKey) and alg == CoseAlgorithm.PS256:
            if not _rsa_key_ok(public_key):
                return False
            public_key.verify(signature, data, pss_padding(), hashes.SHA256())
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


def _ec_alg(alg: object) -> tuple[type[hashes.HashAlgorithm], str, int] | None:
    """(hash, curve, size) of an ECDSA COSE algorithm; None for anything else,
    unhashable values from untrusted CBOR included."""
    if not isinstance(alg, int) or isinstance(alg, bool):
        return None
    return _EC_ALGS.get(CoseAlgorithm(alg)) if alg in _EC_ALG_IDS else None


def pss_salt_mismatch(public_key: object, alg: object, data: bytes, signature: bytes) -> bool:
    """Is ``signature`` a genuine RSA-PSS signature (SHA-256, MGF1-SHA-256) made
    with a salt other than 32 bytes? For when :func:`verify_signature` failed.

    Such a signature is refused all the same (RFC 8230 section 2); this only
    names the reason. Never raises.
    """
    if not (
        isinstance(public_key, rsa.RSAPublicKey)
        and alg == CoseAlgorithm.PS256
        and _rsa_key_ok(public_key)
    ) or verify_signature(public_key, alg, data, signature):
        return False
    auto = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    try:
        public_key.verify(signature, data, auto, hashes.SHA256())
    except (InvalidSignature, ValueError):
        return False
    return True


def dcc_key_problem(public_key: object) -> str | None:
    """Why this key cannot sign an EU DCC, or None when it can.

    hcert 1.x section 3.3.2 allows ES256 (ECDSA on P-256) and PS256
    (RSASSA-PSS, a modulus of 2048 bits; larger ones are accepted here up to
    16384). ES256 by a P-384 key is accepted too (``_ES256_EXTRA_CURVES``).
    Other curves (P-521, brainpool), EdDSA, DSA and short RSA keys never
    verify a DCC.
    """
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name == "secp256r1" or public_key.curve.name in _ES256_EXTRA_CURVES:
            return None
        return (
            f"EC key on {public_key.curve.name}: an EU DCC is signed with ES256 (P-256, or P-384 "
            "as some issuers did) or PS256 (RSA, at least 2048 bits)"
        )
    if isinstance(public_key, rsa.RSAPublicKey):
        if _rsa_key_ok(public_key):
            return None
        return (
            f"RSA key of {public_key.key_size} bits (exponent {public_key.public_numbers().e}):"
            f" PS256 needs {MIN_RSA_BITS} to {MAX_RSA_BITS} bits and an odd exponent of at least 3"
        )
    kind = "no readable public key" if public_key is None else type(public_key).__name__
    return f"{kind}: an EU DCC is signed with ES256 (P-256) or PS256 (RSA, at least 2048 bits)"


def alg_matches_key(public_key: object, alg: object) -> bool:
    """Whether a COSE algorithm can be used with this public key at all."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        ec_alg = _ec_alg(alg)
        if alg == CoseAlgorithm.ES256 and public_key.curve.name in _ES256_EXTRA_CURVES:
            return True
        return ec_alg is not None and public_key.curve.name == ec_alg[1]
    if isinstance(public_key, rsa.RSAPublicKey):
        return alg == CoseAlgorithm.PS256
    return False
