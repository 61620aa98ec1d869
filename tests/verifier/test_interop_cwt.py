"""Independent COSE implementation (PyPI ``cwt``, test dependency only) in both directions.

* A CWT signed by ``cwt`` (kid in its unprotected header, its own CBOR
  encoder), wrapped with zlib/base45 here, verifies in our verifier.
* An HC1 built with verifier.codec + keys.software (the signer's path)
  verifies in ``cwt``.
"""

from __future__ import annotations

import datetime as dt
import zlib

import cbor2
import cwt
import pytest
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from keys.base import kid_of
from keys.software import SoftwareKey
from tests.fixtures import pki as pki_fixture
from tests.verifier.factory import DCC, make_cose
from verifier import codec
from verifier.hc1 import verify_qr_text
from verifier.trust import TrustStore

ALGS = {"dsc_ec": "ES256", "dsc_rsa": "PS256"}


def _cose_key(key: SoftwareKey, alg: str, *, private: bool) -> cwt.COSEKey:
    if private:
        data = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    else:
        data = key.certificate.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
    return cwt.COSEKey.from_pem(data, alg=alg, kid=kid_of(key))


@pytest.mark.parametrize("which", sorted(ALGS))
def test_cwt_signed_verifies_here(
    test_pki: pki_fixture.TestPki, dsc_trust: TrustStore, which: str
) -> None:
    key: SoftwareKey = getattr(test_pki, which)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    iat = int(now.timestamp())
    claims = {1: "VN", 6: iat, 4: iat + 86400 * 365, -260: {1: DCC}}
    token = cwt.encode(claims, _cose_key(key, ALGS[which], private=True))
    sign1 = cbor2.loads(token)
    # cwt's own choices, which the verifier must accept: kid unprotected.
    inner = sign1.value if isinstance(sign1, cbor2.CBORTag) else sign1
    while isinstance(inner, cbor2.CBORTag):
        inner = inner.value
    assert 4 not in cbor2.loads(inner[0]) and inner[1].get(4) == kid_of(key)
    text = "HC1:" + codec.b45encode(zlib.compress(token, 9))
    v = verify_qr_text(text, dsc_trust, now=now)
    assert v.valid, v.errors
    assert v.payload is not None and v.payload["hcert"] == DCC
    # And the tampered variant fails.
    forged = bytearray(token)
    forged[-70] ^= 0x01
    bad = verify_qr_text("HC1:" + codec.b45encode(zlib.compress(bytes(forged))), dsc_trust, now=now)
    assert not bad.valid


@pytest.mark.parametrize("which", sorted(ALGS))
def test_our_hc1_verifies_in_cwt(test_pki: pki_fixture.TestPki, which: str) -> None:
    key: SoftwareKey = getattr(test_pki, which)
    now = dt.datetime.now(dt.UTC)  # cwt checks exp/iat against the real clock
    text = codec.to_qr_text(
        make_cose(key, now=now, iat=int(now.timestamp()) - 60, exp=int(now.timestamp()) + 3600)
    )
    cose = codec.from_qr_text(text)
    claims = cwt.decode(cose, _cose_key(key, ALGS[which], private=False))
    assert claims[-260][1] == DCC and claims[1] == "VN"
