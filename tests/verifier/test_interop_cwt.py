"""Independent COSE implementation (PyPI ``cwt``) in both directions.

``cwt`` runs in its own venv (tests/interop/peer.py): it needs ``cbor2`` < 6,
and a test-only package must never move a runtime package's version in the
product's venv.

* A CWT signed by ``cwt`` (kid in its unprotected header, its own CBOR
  encoder), wrapped with zlib/base45 here, verifies in our verifier.
* An HC1 built with verifier.codec + keys.software (the signer's path)
  verifies in ``cwt``; a tampered one does not.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import zlib

import cbor2
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
from tests.interop.peer import call_peer
from tests.verifier.factory import DCC, make_cose
from verifier import codec
from verifier.hc1 import verify_qr_text
from verifier.trust import TrustStore

ALGS = {"dsc_ec": "ES256", "dsc_rsa": "PS256"}


def _key_pem(key: SoftwareKey, *, private: bool) -> str:
    if private:
        data = key.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    else:
        data = key.certificate.public_key().public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
    return data.decode()


def test_cwt_is_not_in_the_product_venv() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("cwt")


@pytest.mark.parametrize("which", sorted(ALGS))
def test_cwt_signed_verifies_here(
    test_pki: pki_fixture.TestPki, dsc_trust: TrustStore, which: str
) -> None:
    key: SoftwareKey = getattr(test_pki, which)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    iat = int(now.timestamp())
    claims = {1: "VN", 6: iat, 4: iat + 86400 * 365, -260: {1: DCC}}
    reply = call_peer(
        "cwt_peer.py",
        {
            "op": "sign",
            "key_pem": _key_pem(key, private=True),
            "alg": ALGS[which],
            "kid": kid_of(key).hex(),
            "claims_cbor": cbor2.dumps(claims).hex(),
        },
    )
    token = bytes.fromhex(reply["token"])
    sign1 = cbor2.loads(token)
    # cwt's own choices, which the verifier must accept: kid unprotected.
    inner = sign1
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
    request = {
        "op": "verify",
        "key_pem": _key_pem(key, private=False),
        "alg": ALGS[which],
        "kid": kid_of(key).hex(),
    }
    reply = call_peer("cwt_peer.py", {**request, "cose": cose.hex()})
    assert "error" not in reply, reply
    claims = cbor2.loads(bytes.fromhex(reply["claims_cbor"]))
    assert claims[-260][1] == DCC and claims[1] == "VN"
    forged = bytearray(cose)
    forged[-10] ^= 0x01
    assert "error" in call_peer("cwt_peer.py", {**request, "cose": bytes(forged).hex()})
