"""verify_qr_text / verify_qr_image: each check of issue 2 on its own."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import cbor2
import pytest
import zxingcpp
from cryptography.hazmat.primitives.asymmetric import ec
from PIL import Image

from keys.software import SoftwareKey
from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.factory import (
    TEST_DCC,
    dcc,
    hc1,
    leaf_with_ekus,
    make_cose,
    make_hc1,
    pem,
    write,
)
from verifier.hc1 import verify_cose, verify_qr_image, verify_qr_text
from verifier.result import Reason, Verdict
from verifier.trust import TrustStore, load_trust

T = NOW.timestamp()


def test_valid_es256(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW)
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert v.valid, v.errors
    assert v.stage_failed is None and v.errors == ()
    assert dict(v.checks) == {
        "qr": None,
        "prefix": True,
        "base45": True,
        "zlib": True,
        "cose": True,
        "cwt": True,
        "signature": True,
        "expiry": True,
        "key_usage": True,
        "schema": True,
    }
    assert v.payload is not None and v.payload["hcert"]["nam"]["gnt"] == "THI<THANH<HUONG"
    assert v.payload["iss"] == "VN" and v.qr_text == text


def test_valid_ps256(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    v = verify_qr_text(make_hc1(test_pki.dsc_rsa, now=NOW), dsc_trust, now=NOW)
    assert v.valid, v.errors


@pytest.mark.parametrize(
    ("kid_protected", "kid_unprotected", "valid", "reason"),
    [
        (True, None, True, None),  # protected only
        (None, "right", True, None),  # unprotected only (hcert 3.3.1 allows it)
        (True, "wrong", True, None),  # protected wins
        ("wrong", "right", False, Reason.UNKNOWN_KID),  # protected wins even when wrong
        (None, None, False, Reason.KID_MISSING),
    ],
)
def test_kid_protected_or_unprotected(
    test_pki: pki_fixture.TestPki,
    dsc_trust: TrustStore,
    kid_protected: object,
    kid_unprotected: object,
    valid: bool,
    reason: Reason | None,
) -> None:
    from keys.base import kid_of

    right, wrong = kid_of(test_pki.dsc_ec), b"\x00" * 8
    kp = {True: True, None: None, "wrong": wrong}[kid_protected]  # type: ignore[index]
    ku = {None: None, "right": right, "wrong": wrong}[kid_unprotected]  # type: ignore[index]
    v = verify_qr_text(
        make_hc1(test_pki.dsc_ec, now=NOW, kid_protected=kp, kid_unprotected=ku), dsc_trust, now=NOW
    )
    assert v.valid is valid
    if reason:
        assert v.reasons == (reason,) and v.stage_failed == "signature"
        assert v.checks["key_usage"] is None  # no DSC identified


@pytest.mark.parametrize(
    ("iat", "exp", "now", "ok", "reason"),
    [
        (T - 10, T + 10, T, True, None),
        (T, T + 10, T, True, None),  # now == iat: inclusive
        (T - 10, T, T, True, None),  # now == exp: inclusive
        (T - 10.5, T + 0.25, T, True, None),  # float dates
        (T - 10, T - 0.5, T, False, Reason.EXPIRED),
        (T + 0.5, T + 10, T, False, Reason.NOT_YET_VALID),
    ],
)
def test_expiry_bounds(
    test_pki: pki_fixture.TestPki,
    dsc_trust: TrustStore,
    iat: float,
    exp: float,
    now: float,
    ok: bool,
    reason: Reason | None,
) -> None:
    when = dt.datetime.fromtimestamp(now, dt.UTC)
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, iat=iat, exp=exp), dsc_trust, now=when)
    assert v.checks["expiry"] is ok
    assert v.checks["signature"] is True and v.checks["schema"] is True
    if reason:
        assert v.reasons == (reason,) and v.stage_failed == "expiry"


def test_missing_exp_and_iat(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    cose = make_cose(test_pki.dsc_ec, now=NOW, claims={1: "VN", -260: {1: dcc()}})
    v = verify_qr_text(hc1(cose), dsc_trust, now=NOW)
    assert set(v.reasons) == {Reason.EXP_MISSING, Reason.IAT_MISSING}
    assert v.checks["signature"] is True


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_dates(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore, bad: float) -> None:
    for kw in ({"exp": bad}, {"iat": bad}):
        v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, **kw), dsc_trust, now=NOW)  # type: ignore[arg-type]
        assert not v.valid and v.checks["expiry"] is False
        assert Reason.TIME_INVALID in v.reasons or Reason.EXPIRED in v.reasons
        assert Reason.INTERNAL not in v.reasons
    nan = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, exp=float("nan")), dsc_trust, now=NOW)
    assert nan.reasons == (Reason.TIME_INVALID,)
    nan.to_json()


def test_human_texts_cover_every_reason() -> None:
    from verifier.human import _REASONS

    assert set(_REASONS) == set(Reason)


def test_naive_now_is_utc(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW, iat=T, exp=T)
    assert verify_qr_text(text, dsc_trust, now=NOW.replace(tzinfo=None)).valid


def test_key_usage_wrong_type(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    # dsc_test_only carries only the test EKU (1.1): it may not sign a vaccination.
    v = verify_qr_text(make_hc1(test_pki.dsc_test_only, now=NOW), dsc_trust, now=NOW)
    assert v.checks["signature"] is True and v.checks["key_usage"] is False
    assert v.reasons == (Reason.WRONG_CERTIFICATE_TYPE,) and v.stage_failed == "key_usage"
    ok = verify_qr_text(
        make_hc1(test_pki.dsc_test_only, now=NOW, payload=TEST_DCC), dsc_trust, now=NOW
    )
    assert ok.valid, ok.errors


@pytest.mark.parametrize(
    ("ekus", "group", "ok"),
    [
        (None, "v", True),  # no EKU: any type
        (["1.3.6.1.4.1.0.1847.2021.1.2"], "v", True),  # legacy vaccination OID
        (["1.3.6.1.4.1.0.1847.2021.1.1"], "v", False),  # legacy test OID
        (["1.3.6.1.4.1.1847.2021.1.3"], "t", False),  # recovery only
        (["1.3.6.1.5.5.7.3.4"], "t", True),  # no DCC EKU among others: any type
    ],
)
def test_key_usage_eku_forms(
    test_pki: pki_fixture.TestPki, tmp_path: Path, ekus: list[str] | None, group: str, ok: bool
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = leaf_with_ekus(test_pki.csca, test_pki.csca_key, key, now=NOW, ekus=ekus)
    signer = SoftwareKey(private_key=key, certificate=cert)
    trust = load_trust([write(tmp_path / "d.pem", pem(cert))], now=NOW)
    payload = dcc() if group == "v" else TEST_DCC
    v = verify_qr_text(make_hc1(signer, now=NOW, payload=payload), trust, now=NOW)
    assert v.checks["signature"] is True and v.checks["key_usage"] is ok


def test_schema_invalid_reported_alone(
    test_pki: pki_fixture.TestPki, dsc_trust: TrustStore
) -> None:
    bad = dcc(dob="02/01/1990")
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, payload=bad), dsc_trust, now=NOW)
    assert v.checks["signature"] is True and v.checks["expiry"] is True
    assert v.checks["schema"] is False and v.reasons == (Reason.SCHEMA_INVALID,)


def test_no_certificate_group(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    payload = {k: val for k, val in dcc().items() if k != "v"}
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, payload=payload), dsc_trust, now=NOW)
    assert v.checks["key_usage"] is False and v.checks["schema"] is False
    assert Reason.NO_CERTIFICATE_TYPE in v.reasons


def test_all_semantic_failures_reported_together(
    test_pki: pki_fixture.TestPki, dsc_trust: TrustStore
) -> None:
    text = make_hc1(test_pki.dsc_test_only, now=NOW, exp=T - 5, payload=dcc(ver=3))
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert v.checks["signature"] is True
    assert [e.stage for e in v.errors] == ["expiry", "key_usage", "schema"]
    assert v.stage_failed == "expiry"


@pytest.mark.parametrize("tag", [None, 18])
def test_untagged_and_tagged_cose(
    test_pki: pki_fixture.TestPki, dsc_trust: TrustStore, tag: int | None
) -> None:
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, tag=tag), dsc_trust, now=NOW)
    assert v.valid, v.errors


def test_cwt_tag_around_cose(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    inner = cbor2.loads(make_cose(test_pki.dsc_ec, now=NOW))
    v = verify_qr_text(hc1(cbor2.dumps(cbor2.CBORTag(61, inner))), dsc_trust, now=NOW)
    assert v.valid, v.errors


def test_verify_cose_entry_point(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    v = verify_cose(make_cose(test_pki.dsc_ec, now=NOW), dsc_trust, now=NOW)
    assert v.valid and v.checks["prefix"] is None and v.qr_text is None


def _png(text: str) -> bytes:
    img = zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode), scale=4
    )
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG") if not isinstance(img, Image.Image) else img.save(
        buf, "PNG"
    )
    return buf.getvalue()


def test_image_roundtrip(
    test_pki: pki_fixture.TestPki, dsc_trust: TrustStore, tmp_path: Path
) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW)
    png = _png(text)
    v = verify_qr_image(png, dsc_trust, now=NOW)
    assert v.valid and v.checks["qr"] is True and v.qr_text == text
    path = tmp_path / "qr.png"
    path.write_bytes(png)
    assert verify_qr_image(path, dsc_trust, now=NOW).valid


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not an image at all", Reason.IMAGE_UNREADABLE),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, Reason.IMAGE_UNREADABLE),
        (None, Reason.NO_QR_CODE),  # a blank white PNG
    ],
)
def test_image_failures(dsc_trust: TrustStore, data: bytes | None, reason: Reason) -> None:
    if data is None:
        buf = io.BytesIO()
        Image.new("L", (200, 200), 255).save(buf, "PNG")
        data = buf.getvalue()
    v = verify_qr_image(data, dsc_trust, now=NOW)
    assert not v.valid and v.stage_failed == "qr" and v.reasons == (reason,)
    assert v.checks["qr"] is False and v.checks["prefix"] is None


def test_image_missing_file(dsc_trust: TrustStore, tmp_path: Path) -> None:
    v = verify_qr_image(tmp_path / "nope.png", dsc_trust, now=NOW)
    assert v.reasons == (Reason.IMAGE_UNREADABLE,)


def test_verdict_json_contract(test_pki: pki_fixture.TestPki, dsc_trust: TrustStore) -> None:
    import json

    v: Verdict = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, exp=T - 1), dsc_trust, now=NOW)
    obj = json.loads(v.to_json())
    assert list(obj) == ["valid", "stage_failed", "errors", "checks", "payload", "qr_text"]
    assert obj["valid"] is False and obj["stage_failed"] == "expiry"
    assert obj["errors"] == [
        {"stage": "expiry", "reason": "expired", "message": "certificate expired"}
    ]
    assert list(obj["checks"]) == [
        "qr",
        "prefix",
        "base45",
        "zlib",
        "cose",
        "cwt",
        "signature",
        "expiry",
        "key_usage",
        "schema",
    ]
    assert set(obj["payload"]) == {"iss", "iat", "exp", "hcert"}
    assert obj["payload"]["hcert"]["nam"]["fn"] == "Nguyễn"
