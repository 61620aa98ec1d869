"""keys.tsa.respond never raises: a negative nonce is echoed, and outside the TSA
certificate's validity the answer is a rejection, not a token no validator accepts."""

from __future__ import annotations

import datetime as dt

import pytest
from asn1crypto import core, tsp

from keys.certs import new_private_key
from keys.tsa import TimeStampAuthority, _int, make_tsa_certificate
from signer.pdf.tsa import split_response
from tests.fixtures import pki as pki_fixtures
from tests.fixtures.pki import NOW


@pytest.fixture(scope="module")
def authority(test_pki: pki_fixtures.TestPki) -> TimeStampAuthority:
    key = new_private_key("ec-p256")
    cert = make_tsa_certificate(test_pki.csca, test_pki.csca_key, key.public_key(), now=NOW, days=30)  # type: ignore[arg-type]
    return TimeStampAuthority(key=key, certificate=cert, chain=(test_pki.csca,))


def _req(nonce: int) -> bytes:
    der: bytes = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": bytes(32)},
        "nonce": nonce,
    }).dump()
    return der


@pytest.mark.parametrize("n", [0, 1, 127, 128, 255, 256, -1, -128, -129, -256, -32769, 2**70, -(2**70)])
def test_der_integers_match_asn1crypto(n: int) -> None:
    assert _int(n) == core.Integer(n).dump()


@pytest.mark.parametrize("nonce", [-1, -5, -(2**63)])
def test_negative_nonce_is_echoed(authority: TimeStampAuthority, nonce: int) -> None:
    resp = tsp.TimeStampResp.load(authority.respond(_req(nonce), now=NOW))
    assert resp["status"]["status"].native == "granted"
    info = resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["nonce"].native == nonce


@pytest.mark.parametrize("when", [NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=31)])
def test_no_token_outside_the_certificate_validity(authority: TimeStampAuthority, when: dt.datetime) -> None:
    status, token = split_response(authority.respond(_req(1), now=when))
    assert status["status"].native == "rejection" and token is None
    assert "time_not_available" in status["fail_info"].native
