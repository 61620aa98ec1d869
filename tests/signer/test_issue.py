"""HC1 issuance: structure, expiry, gate; independent checks with `cwt` and our verifier.

``cwt`` runs in its own venv (tests/interop/peer.py): it needs an older cbor2.

The same signing test runs with a software key and a SoftHSM2 token, for
ES256 and PS256 (issue 2, "Independent checks in the tests").
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from keys.base import SigningKey, kid_of
from keys.certs import make_dsc, new_private_key
from keys.software import SoftwareKey
from signer.issue import Hc1Issuer, cwt_payload, issue_hc1
from signer.uvci import is_valid_uvci, with_checksum
from tests.fixtures.pki import TestPki as Pki
from tests.interop.peer import call_peer
from verifier import codec
from verifier.hc1 import verify_qr_text
from verifier.trust import load_trust

from .conftest import stamp

ISSUER = "Ministry of Health of Viet Nam"
_B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def b45decode_independent(text: str) -> bytes:
    """RFC 9285 section 4.2, written out plainly (independent of verifier.codec)."""
    out = bytearray()
    for i in range(0, len(text), 3):
        chunk = [_B45.index(c) for c in text[i : i + 3]]
        n = sum(v * 45**k for k, v in enumerate(chunk))
        out += n.to_bytes(2 if len(chunk) == 3 else 1, "big")
    return bytes(out)


def cose_of(hc1: str) -> bytes:
    assert hc1.startswith("HC1:")
    return zlib.decompress(b45decode_independent(hc1[4:]))


KEYS = ["software-es256", "software-ps256", "softhsm-es256", "softhsm-ps256"]


@pytest.fixture(params=KEYS)
def signing_key(request: pytest.FixtureRequest, test_pki: Pki) -> SigningKey:
    kind = request.param
    if kind == "software-es256":
        return test_pki.dsc_ec
    if kind == "software-ps256":
        return test_pki.dsc_rsa
    key: SigningKey = request.getfixturevalue(f"softhsm_{kind.split('-')[1]}_key")
    return key


def test_signed_hc1_verifies_independently(
    signing_key: SigningKey, example_records: list[Any], now: dt.datetime, tmp_path: Path
) -> None:
    rec = example_records[0]
    issued = issue_hc1(rec, signing_key, now=now, issuer_name=ISSUER)
    cose = cose_of(issued.hc1)

    # structure: tag 18, protected {alg, kid}, empty unprotected
    obj = cbor2.loads(cose)
    assert isinstance(obj, cbor2.CBORTag) and obj.tag == 18
    protected = cbor2.loads(obj.value[0])
    assert protected == {1: int(signing_key.alg), 4: kid_of(signing_key)}
    assert obj.value[1] == {}
    assert issued.kid == kid_of(signing_key)

    # 1. the PyPI `cwt` package verifies the COSE signature with the DSC
    pem = signing_key.certificate.public_bytes(Encoding.PEM)
    reply = call_peer("cwt_peer.py", {"op": "verify_dsc", "dsc_pem": pem.decode(), "cose": cose.hex()})
    assert "error" not in reply, reply
    claims = cbor2.loads(bytes.fromhex(reply["payload"]))
    assert claims[1] == "VN" and claims[6] == issued.iat and claims[4] == issued.exp
    assert claims[-260][1] == dict(issued.dcc)
    assert claims[-260][1]["v"][0]["ci"] == issued.uvci and is_valid_uvci(issued.uvci)

    # 2. this project's verifier, trusting the DSC file
    dsc_file = tmp_path / "dsc.pem"
    dsc_file.write_bytes(pem)
    trust = load_trust([dsc_file], now=now, state_dir=tmp_path / "state")
    verdict = verify_qr_text(issued.hc1, trust, now=now)
    assert verdict.valid, verdict.errors
    assert all(verdict.checks[c] for c in ("signature", "expiry", "key_usage", "schema"))


def test_cwt_rejects_a_tampered_payload(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    issued = issue_hc1(example_records[0], test_pki.dsc_ec, now=now, issuer_name=ISSUER)
    obj = cbor2.loads(cose_of(issued.hc1))
    items = list(obj.value)
    items[2] = items[2].replace(b"NGUYEN", b"NGUYEX")
    forged = cbor2.dumps(cbor2.CBORTag(18, items))
    pem = test_pki.dsc_ec.certificate.public_bytes(Encoding.PEM).decode()
    reply = call_peer("cwt_peer.py", {"op": "verify_dsc", "dsc_pem": pem, "cose": forged.hex()})
    assert reply.get("error", "").startswith("VerifyError"), reply


def test_fast_cbor_matches_the_codec(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    for rec in example_records:
        issued = issuer.issue(rec, now=now)
        cose = codec.from_qr_text(issued.hc1)
        sign1 = codec.decode_sign1(cose)
        assert sign1.payload == codec.encode_cwt(
            iss="VN", issued_at=issued.iat, expires_at=issued.exp, dcc=issued.dcc
        )
        assert sign1.payload == cwt_payload(iss="VN", issued_at=issued.iat, expires_at=issued.exp, dcc=issued.dcc)
        assert sign1.protected_bytes == codec.encode_protected(-7, issued.kid)
        assert cose == codec.encode_sign1(sign1.protected_bytes, sign1.payload, sign1.signature)


def test_no_citizen_id_in_the_qr(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    for rec in example_records:
        issued = issuer.issue(rec, now=now)
        cose = codec.from_qr_text(issued.hc1)
        decoded = repr(cbor2.loads(codec.decode_sign1(cose).payload))
        assert rec.id_number and rec.id_number not in decoded
        assert rec.id_number.encode() not in cose
        for dose in rec.doses:  # nor lots or sites
            assert dose.lot not in decoded and dose.site not in decoded


def test_validity_default_and_configurable(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    rec = example_records[0]
    issued = issue_hc1(rec, test_pki.dsc_ec, now=now, issuer_name=ISSUER)
    assert issued.iat == int(now.timestamp())
    assert issued.exp == issued.iat + 365 * 86400 and not issued.exp_clamped
    short = issue_hc1(rec, test_pki.dsc_ec, now=now, issuer_name=ISSUER, validity_days=30)
    assert short.exp == short.iat + 30 * 86400


def test_exp_clamped_to_dsc_expiry(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    k = new_private_key("ec-p256")
    cert = make_dsc(test_pki.csca, test_pki.csca_key, k.public_key(), name="Short DSC", now=now, days=90)  # type: ignore[arg-type]
    key = SoftwareKey(private_key=k, certificate=cert)
    issued = issue_hc1(example_records[0], key, now=now, issuer_name=ISSUER)
    assert issued.exp_clamped
    assert issued.exp == int(cert.not_valid_after_utc.timestamp())
    claims = codec.decode_cwt(codec.decode_sign1(codec.from_qr_text(issued.hc1)).payload)
    assert claims.exp == issued.exp


def test_dsc_not_valid_at_signing_time(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    from verifier.errors import ConfigError

    after = test_pki.dsc_ec.certificate.not_valid_after_utc + dt.timedelta(seconds=1)
    before = test_pki.dsc_ec.certificate.not_valid_before_utc - dt.timedelta(seconds=1)
    for when in (after, before):
        with pytest.raises(ConfigError, match="not valid at the signing time"):
            issue_hc1(example_records[0], test_pki.dsc_ec, now=when, issuer_name=ISSUER)
    with pytest.raises(ConfigError, match="timezone-aware"):
        issue_hc1(example_records[0], test_pki.dsc_ec, now=now.replace(tzinfo=None), issuer_name=ISSUER)


def test_unverified_records_need_the_override(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    from verifier.errors import InputError

    unstamped = replace(example_records[0], verified="")
    edited = replace(example_records[0], full_name="Nguyễn Thị Thanh Hưng")  # stale stamp
    for rec in (unstamped, edited):
        with pytest.raises(InputError, match="verification stamp"):
            issue_hc1(rec, test_pki.dsc_ec, now=now, issuer_name=ISSUER)
        assert issue_hc1(rec, test_pki.dsc_ec, now=now, issuer_name=ISSUER, allow_unverified=True).hc1
    assert stamp(edited).verified != example_records[0].verified


def test_uvci_unique_per_certificate(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    uvcis = {issuer.issue(example_records[0], now=now).uvci for _ in range(200)}
    assert len(uvcis) == 200


def test_dose_in_the_future_is_refused(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    from verifier.errors import InputError

    rec = example_records[0]
    late = replace(rec.doses[-1], date="2026-06-02")
    rec = stamp(replace(rec, doses=(*rec.doses[:-1], late)))
    # 2026-06-01 12:00 UTC is 19:00 in Viet Nam: 2026-06-02 is still tomorrow there
    with pytest.raises(InputError, match="in the future"):
        issue_hc1(rec, test_pki.dsc_ec, now=now, issuer_name=ISSUER)
    assert issue_hc1(rec, test_pki.dsc_ec, now=now + dt.timedelta(hours=5), issuer_name=ISSUER).hc1


_AUDIT: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _AUDIT is not None and event in ("open", "os.listdir", "os.scandir"):
        _AUDIT.append(f"{event} {args[0]!r}")


def test_hot_path_does_no_file_io(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    """Schema, vaccine table and key material are loaded once, not per record."""
    global _AUDIT
    import sys

    issue_hc1(example_records[0], test_pki.dsc_ec, now=now, issuer_name=ISSUER)  # warm up
    sys.addaudithook(_audit)  # hooks cannot be removed: it records only while _AUDIT is a list
    _AUDIT = []
    try:
        for rec in example_records * 5:
            issue_hc1(rec, test_pki.dsc_ec, now=now, issuer_name=ISSUER)
        seen = list(_AUDIT)
    finally:
        _AUDIT = None
    assert seen == []


def test_only_hcert_algorithms(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    from verifier.errors import ConfigError

    k = new_private_key("ec-p384")
    cert = make_dsc(test_pki.csca, test_pki.csca_key, k.public_key(), name="P-384 DSC", now=now)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ES256 or PS256 only"):
        issue_hc1(example_records[0], SoftwareKey(private_key=k, certificate=cert), now=now, issuer_name=ISSUER)


def test_qr_zlib_stream_is_stored_by_default_and_compressed_on_request(
    test_pki: Pki, example_records: list[Any], now: dt.datetime, tmp_path: Path
) -> None:
    """Default deflate level 0: one stored block (RFC 1951 3.2.4) any inflater
    reads; level 9 gives a Huffman-coded stream the verifier reads too."""
    from verifier.errors import ConfigError

    stored = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    best = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER, deflate_level=9)
    trust = _dsc_trust(test_pki, now, tmp_path)
    sizes = [0, 0]
    for rec in example_records:
        issued = stored.issue(rec, now=now)
        stream = b45decode_independent(issued.hc1[4:])
        cose = zlib.decompress(stream)  # stdlib zlib
        assert codec.from_qr_text(issued.hc1) == cose  # and the verifier's capped inflater
        assert stream[0] & 0x0F == 8 and int.from_bytes(stream[:2], "big") % 31 == 0  # RFC 1950 header
        n = len(cose)
        assert stream[2:7] == bytes((1, n & 0xFF, n >> 8, ~n & 0xFF, (~n >> 8) & 0xFF))  # BFINAL, stored
        assert stream[7 : 7 + n] == cose and len(stream) == n + 11
        assert stream[-4:] == zlib.adler32(cose).to_bytes(4, "big")
        compressed = best.issue(rec, now=now)
        small = b45decode_independent(compressed.hc1[4:])
        assert len(small) <= len(stream)  # zlib falls back to a stored block when that is smaller
        sizes[0] += len(stream)
        sizes[1] += len(small)
        assert verify_qr_text(compressed.hc1, trust, now=now).valid
    assert sizes[1] < sizes[0]
    # repetitive content shrinks at level 9, and level 0 is exactly stored
    text = codec.to_qr_text(b"NGUYEN<THI<THANH<HUONG " * 40, level=9)
    assert len(b45decode_independent(text[4:])) < 100
    assert zlib.decompress(b45decode_independent(codec.to_qr_text(b"x" * 70000, level=0)[4:])) == b"x" * 70000
    for level in (-1, 10):
        with pytest.raises(ConfigError, match="deflate level"):
            Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER, deflate_level=level)


def _dsc_trust(test_pki: Pki, now: dt.datetime, tmp_path: Path) -> Any:
    path = tmp_path / "dsc.pem"
    path.write_bytes(test_pki.dsc_ec.certificate.public_bytes(Encoding.PEM))
    return load_trust([path], now=now, state_dir=tmp_path / "state")


def test_issue_many_keeps_order_and_reports_each_bad_record(
    test_pki: Pki, example_records: list[Any], now: dt.datetime, tmp_path: Path
) -> None:
    """One result per record, in order: good records signed, each bad one its
    own InputError; the batch gives what signing one by one gives."""
    from verifier.errors import InputError

    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    trust = _dsc_trust(test_pki, now, tmp_path)
    good = example_records[:3]
    bad_vaccine = stamp(replace(good[0], doses=(replace(good[0].doses[0], vaccine="Unknown"),)))
    unstamped = replace(good[1], verified="")
    bad_dob = stamp(replace(good[2], date_of_birth="1985-02-30"))
    batch = [good[0], bad_vaccine, good[1], unstamped, bad_dob, good[2]]
    results = issuer.issue_many(batch, now=now)
    assert [type(r).__name__ for r in results] == ["Issued", "InputError", "Issued", "InputError", "InputError", "Issued"]
    assert "unknown vaccine" in str(results[1]) and "verification stamp" in str(results[3])
    assert "real date" in str(results[4])
    for rec, res in zip(batch, results, strict=True):
        if isinstance(res, InputError):
            continue
        assert res.record_id == rec.record_id
        assert verify_qr_text(res.hc1, trust, now=now).valid
        one = issuer.issue(rec, now=now, uvci=res.uvci)  # same record, same UVCI, one by one
        assert codec.decode_sign1(codec.from_qr_text(one.hc1)).payload == codec.decode_sign1(
            codec.from_qr_text(res.hc1)
        ).payload
        assert one.dcc == res.dcc and (one.iat, one.exp, one.kid) == (res.iat, res.exp, res.kid)
    assert issuer.issue_many([], now=now) == []
    # given UVCIs are used; None means a fresh one
    given = with_checksum("URN:UVCI:01:VN:GIVEN0000000000000000000")
    a, b = issuer.issue_many(good[:2], now=now, uvcis=[given, None])
    assert not isinstance(a, InputError) and not isinstance(b, InputError)
    assert a.uvci == given and b.uvci != given and is_valid_uvci(b.uvci)
    from verifier.errors import ConfigError

    with pytest.raises(ConfigError, match="one UVCI"):
        issuer.issue_many(good[:2], now=now, uvcis=[given])


def test_issue_many_stops_on_a_key_failure(test_pki: Pki, example_records: list[Any], now: dt.datetime) -> None:
    """A key backend failure is not a bad record: the whole batch raises."""
    from verifier.errors import KeyBackendError

    class Broken:
        alg = test_pki.dsc_ec.alg
        certificate = test_pki.dsc_ec.certificate
        chain = test_pki.dsc_ec.chain

        def sign(self, data: bytes) -> bytes:
            raise KeyBackendError("token removed")

    issuer = Hc1Issuer(Broken(), issuer_name=ISSUER)  # type: ignore[arg-type]
    with pytest.raises(KeyBackendError, match="token removed"):
        issuer.issue_many(example_records[:3], now=now)
