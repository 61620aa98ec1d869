"""keys.tsa: the RFC 3161 responder as a pure function, and its HTTP server's refusals.

Keys and certificates are made here (test CSCA of tests/fixtures/pki.py); nothing is committed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import http.client
import threading
from collections.abc import Iterator

import pytest
from asn1crypto import tsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from keys.certs import new_private_key
from keys.tsa import TSA_POLICY, TimeStampAuthority, make_server, make_tsa_certificate
from signer.pdf.tsa import split_response
from tests.fixtures import pki as pki_fixtures
from tests.fixtures.pki import NOW


@pytest.fixture(scope="module")
def authority(test_pki: pki_fixtures.TestPki) -> TimeStampAuthority:
    key = new_private_key("ec-p256")
    cert = make_tsa_certificate(test_pki.csca, test_pki.csca_key, key.public_key(), now=NOW)  # type: ignore[arg-type]
    return TimeStampAuthority(key=key, certificate=cert, chain=(test_pki.csca,))


def _req(alg: str = "sha256", digest: bytes | None = None, **extra: object) -> bytes:
    size = {"sha1": 20, "sha256": 32, "sha512": 64}[alg]
    req = tsp.TimeStampReq({
        "version": "v1",
        "message_imprint": {"hash_algorithm": {"algorithm": alg},
                            "hashed_message": digest if digest is not None else bytes(size)},
        **extra,
    })
    der: bytes = req.dump()
    return der


def test_certificate_profile(authority: TimeStampAuthority) -> None:
    from cryptography import x509

    cert = authority.certificate
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign


def test_granted_token(authority: TimeStampAuthority) -> None:
    digest = hashlib.sha256(b"signature value").digest()
    resp = tsp.TimeStampResp.load(
        authority.respond(_req(digest=digest, nonce=12345, cert_req=True), now=NOW, serial=7)
    )
    assert resp["status"]["status"].native == "granted"
    signed = resp["time_stamp_token"]["content"]
    info = signed["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == NOW
    assert info["nonce"].native == 12345 and info["serial_number"].native == 7
    assert info["policy"].native == TSA_POLICY
    assert info["message_imprint"]["hashed_message"].native == digest
    assert len(signed["certificates"]) == 1
    # without certReq the certificate is left out; sha512 imprints are fine
    resp = tsp.TimeStampResp.load(authority.respond(_req("sha512"), now=NOW))
    assert resp["status"]["status"].native == "granted"
    assert resp["time_stamp_token"]["content"]["certificates"].native is None


@pytest.mark.parametrize(("request_der", "fail"), [
    (b"garbage", "bad_data_format"),
    (_req("sha1"), "bad_alg"),
    (_req(digest=b"short"), "bad_data_format"),
    (_req(req_policy="1.2.3.4"), "unaccepted_policy"),
])
def test_rejections(authority: TimeStampAuthority, request_der: bytes, fail: str) -> None:
    status, token = split_response(authority.respond(request_der, now=NOW))
    assert status["status"].native == "rejection" and token is None
    assert fail in status["fail_info"].native


@pytest.fixture()
def server(authority: TimeStampAuthority) -> Iterator[int]:
    srv = make_server(authority, clock=lambda: NOW + dt.timedelta(seconds=1))
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def test_http_content_types(server: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("POST", "/", _req(), {"Content-Type": "text/plain"})
    assert conn.getresponse().status == 415
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("GET", "/")
    assert conn.getresponse().status == 405
    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=10)
    conn.request("POST", "/", _req(), {"Content-Type": "application/timestamp-query"})
    reply = conn.getresponse()
    assert reply.status == 200 and reply.getheader("Content-Type") == "application/timestamp-reply"
    resp = tsp.TimeStampResp.load(reply.read())
    info = resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == NOW + dt.timedelta(seconds=1)
