"""verifier.crypto: DER ECDSA signatures to COSE's fixed-size r || s."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given
from hypothesis import strategies as st

from verifier.crypto import ecdsa_der_to_raw, ecdsa_raw_to_der


def _reference(der: bytes, size: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


@pytest.mark.parametrize(("curve", "hash_alg", "size"), [(ec.SECP256R1(), hashes.SHA256(), 32), (ec.SECP384R1(), hashes.SHA384(), 48)])
def test_real_signatures_match_decode_dss_signature(curve: ec.EllipticCurve, hash_alg: hashes.HashAlgorithm, size: int) -> None:
    key = ec.generate_private_key(curve)
    short = 0
    for i in range(3000):  # about 1 in 128 has an r or s under `size` bytes
        der = key.sign(i.to_bytes(4, "big"), ec.ECDSA(hash_alg))
        raw = ecdsa_der_to_raw(der, size)
        assert raw == _reference(der, size)
        assert ecdsa_raw_to_der(raw) == der
        short += der[3] < size or der[5 + der[3]] < size
    assert short > 0  # the padding branch was exercised


@given(st.integers(1, 2**256 - 1), st.integers(1, 2**256 - 1))
def test_any_integers_round_trip(r: int, s: int) -> None:
    der = encode_dss_signature(r, s)
    assert ecdsa_der_to_raw(der, 32) == r.to_bytes(32, "big") + s.to_bytes(32, "big")


@pytest.mark.parametrize(
    "der",
    [
        b"",
        b"\x30\x00",
        b"\x30\x06\x02\x01\x01\x02\x01",  # truncated
        b"\x30\x06\x02\x01\x81\x02\x01\x01",  # negative r
        b"\x30\x07\x02\x02\x00\x01\x02\x01\x01",  # r not minimal
        b"\x31\x06\x02\x01\x01\x02\x01\x01",  # SET, not SEQUENCE
    ],
)
def test_bad_der_is_refused_as_before(der: bytes) -> None:
    with pytest.raises(ValueError):
        ecdsa_der_to_raw(der, 32)


def test_integer_too_large_for_the_size_is_refused() -> None:
    der = encode_dss_signature(2**256 + 5, 1)
    with pytest.raises(OverflowError):
        ecdsa_der_to_raw(der, 32)
