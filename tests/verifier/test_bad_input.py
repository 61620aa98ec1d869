"""Bad input: each malformed QR gives a clean invalid verdict with the failing stage.

Never a traceback: the hypothesis tests mutate valid QR texts (ES256 and
PS256) and feed them to the library and to the CLI (``--json``).
"""

from __future__ import annotations

import contextlib
import io
import json
import zlib
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keys.base import kid_of
from keys.software import SoftwareKey
from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.factory import dcc, hc1, make_cose, make_hc1, raw_hc1
from verifier import cli, codec
from verifier.errors import CodecError
from verifier.hc1 import verify_qr_text
from verifier.result import Reason, Stage
from verifier.trust import TrustStore

Pki = pki_fixture.TestPki
B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _assert_clean(v: Any, stage: str, reason: Reason) -> None:
    assert v.valid is False
    assert v.stage_failed == stage, v.errors
    assert reason in v.reasons, v.errors
    assert Reason.INTERNAL not in v.reasons
    json.loads(v.to_json())  # always serialisable


def _cose_array(items: list[Any], tag: int | None = 18) -> str:
    return raw_hc1(cbor2.dumps(items if tag is None else cbor2.CBORTag(tag, items)))


def _deep(n: int) -> bytes:
    return b"\x81" * n + b"\x00"  # n nested one-element arrays


def _signed_claims(key: SoftwareKey, claims: Any) -> str:
    protected = cbor2.dumps({1: int(key.alg), 4: kid_of(key)})
    body = cbor2.dumps(claims)
    sig = key.sign(codec.sig_structure(protected, body))
    return hc1(cbor2.dumps(cbor2.CBORTag(18, [protected, {}, body, sig])))


STRUCTURAL_CASES = {
    "empty": ("", "prefix", Reason.PREFIX_MISSING),
    "garbage": ("hello world", "prefix", Reason.PREFIX_MISSING),
    "lowercase prefix": ("hc1:6BFOXN", "prefix", Reason.PREFIX_MISSING),
    "HC2 prefix": ("HC2:6BFOXN", "prefix", Reason.PREFIX_MISSING),
    "too long": ("HC1:" + "A" * 9000, "prefix", Reason.TOO_LONG),
    "bad base45 chars": ("HC1:abc", "base45", Reason.BASE45_INVALID),
    "base45 dangling char": ("HC1:ABCD", "base45", Reason.BASE45_INVALID),
    "base45 triple overflow": ("HC1:GGW", "base45", Reason.BASE45_INVALID),
    "not zlib": (
        "HC1:" + codec.b45encode(b"\xd2\x84\x40\xa0\x40\x40"),
        "zlib",
        Reason.ZLIB_INVALID,
    ),
    "truncated zlib": (
        "HC1:" + codec.b45encode(zlib.compress(b"x" * 100)[:-4]),
        "zlib",
        Reason.ZLIB_INVALID,
    ),
    "zlib bomb": (
        "HC1:" + codec.b45encode(zlib.compress(b"\0" * 5_000_000, 9)),
        "zlib",
        Reason.ZLIB_TOO_LARGE,
    ),
    "not cbor": (raw_hc1(b"\xff\xff\xff"), "cose", Reason.COSE_MALFORMED),
    "deep cbor": (raw_hc1(_deep(100_000)), "cose", Reason.COSE_MALFORMED),
    "moderately deep cbor": (raw_hc1(_deep(40)), "cose", Reason.COSE_MALFORMED),
    "huge array header": (
        raw_hc1(b"\x9b" + (2**60).to_bytes(8, "big")),
        "cose",
        Reason.COSE_MALFORMED,
    ),
    "huge bstr header": (
        raw_hc1(b"\x5b" + (2**62).to_bytes(8, "big") + b"ab"),
        "cose",
        Reason.COSE_MALFORMED,
    ),
    "wrong tag": (_cose_array([b"", {}, b"", b""], tag=17), "cose", Reason.COSE_WRONG_TAG),
    "three items": (_cose_array([b"", {}, b""]), "cose", Reason.COSE_MALFORMED),
    "map not array": (raw_hc1(cbor2.dumps({1: 2})), "cose", Reason.COSE_MALFORMED),
    "protected not bstr": (_cose_array([{1: -7}, {}, b"", b""]), "cose", Reason.COSE_MALFORMED),
    "protected not map": (
        _cose_array([cbor2.dumps([1]), {}, b"", b""]),
        "cose",
        Reason.COSE_MALFORMED,
    ),
    "unprotected not map": (_cose_array([b"", [], b"", b""]), "cose", Reason.COSE_MALFORMED),
    "payload not bstr": (_cose_array([b"", {}, "text", b""]), "cose", Reason.COSE_MALFORMED),
    "signature not bstr": (_cose_array([b"", {}, b"", 7]), "cose", Reason.COSE_MALFORMED),
    "payload not cbor": (_cose_array([b"", {}, b"\xff", b""]), "cwt", Reason.CWT_MALFORMED),
    "payload not map": (
        _cose_array([b"", {}, cbor2.dumps([1, 2]), b""]),
        "cwt",
        Reason.CWT_MALFORMED,
    ),
    "no hcert": (_cose_array([b"", {}, cbor2.dumps({1: "VN"}), b""]), "cwt", Reason.CWT_NO_HCERT),
    "hcert without v1": (
        _cose_array([b"", {}, cbor2.dumps({-260: {2: {}}}), b""]),
        "cwt",
        Reason.CWT_NO_HCERT,
    ),
    "iat not a number": (
        _cose_array([b"", {}, cbor2.dumps({6: "yesterday", -260: {1: {}}}), b""]),
        "cwt",
        Reason.CWT_MALFORMED,
    ),
}


@pytest.mark.parametrize("case", sorted(STRUCTURAL_CASES))
def test_structural_failures(case: str, dsc_trust: TrustStore) -> None:
    text, stage, reason = STRUCTURAL_CASES[case]
    v = verify_qr_text(text, dsc_trust, now=NOW)
    _assert_clean(v, stage, reason)
    order = ["prefix", "base45", "zlib", "cose", "cwt"]
    for earlier in order[: order.index(stage)]:
        assert v.checks[earlier] is True
    for later in [*order[order.index(stage) + 1 :], "signature", "expiry", "key_usage", "schema"]:
        assert v.checks[later] is None
    assert v.payload is None


def test_non_text_input_is_clean(dsc_trust: TrustStore) -> None:
    v = verify_qr_text(b"HC1:xyz", dsc_trust, now=NOW)  # type: ignore[arg-type]
    _assert_clean(v, "prefix", Reason.PREFIX_MISSING)


def test_internal_error_is_a_verdict(
    dsc_trust: TrustStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside a check still gives a verdict (and CLI exit 2), never a traceback."""
    from verifier import hc1

    def broken(*_: object) -> None:
        raise ZeroDivisionError

    monkeypatch.setattr(hc1.codec, "b45decode", broken)
    v = verify_qr_text("HC1:ABC", dsc_trust, now=NOW)
    assert v.reasons == (Reason.INTERNAL,) and v.stage_failed == "qr" and not v.valid
    assert cli.exit_code(v) == 2
    json.loads(v.to_json())


def test_unknown_alg(test_pki: Pki, dsc_trust: TrustStore) -> None:
    for alg in (-8, -35, 999, "ES256"):
        v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, alg=alg), dsc_trust, now=NOW)  # type: ignore[arg-type]
        _assert_clean(v, "signature", Reason.UNSUPPORTED_ALG)


def test_alg_does_not_fit_key(test_pki: Pki, dsc_trust: TrustStore) -> None:
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW, alg=-37), dsc_trust, now=NOW)
    _assert_clean(v, "signature", Reason.BAD_SIGNATURE)


def test_unknown_kid(test_pki: Pki, dsc_trust: TrustStore) -> None:
    v = verify_qr_text(
        make_hc1(test_pki.dsc_ec, now=NOW, kid_protected=b"12345678"), dsc_trust, now=NOW
    )
    _assert_clean(v, "signature", Reason.UNKNOWN_KID)
    assert v.checks["expiry"] is True and v.checks["schema"] is True  # still evaluated


def test_wrong_key(test_pki: Pki, dsc_trust: TrustStore) -> None:
    # Signed by another key but claiming the EC DSC's kid.
    other = SoftwareKey(
        private_key=ec.generate_private_key(ec.SECP256R1()), certificate=test_pki.dsc_ec.certificate
    )
    v = verify_qr_text(make_hc1(other, now=NOW), dsc_trust, now=NOW)
    _assert_clean(v, "signature", Reason.BAD_SIGNATURE)


def test_tampered_payload(test_pki: Pki, dsc_trust: TrustStore) -> None:
    cose = cbor2.loads(make_cose(test_pki.dsc_ec, now=NOW))
    protected, unprotected, body, sig = cose.value
    claims = cbor2.loads(body)
    claims[-260][1]["nam"]["fn"] = "Lê"
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(claims), sig]))
    v = verify_qr_text(hc1(forged), dsc_trust, now=NOW)
    _assert_clean(v, "signature", Reason.BAD_SIGNATURE)
    assert v.payload is not None and v.payload["hcert"]["nam"]["fn"] == "Lê"


@pytest.mark.parametrize("cut", [0, 1, 63, 65])
def test_bad_signature_lengths(test_pki: Pki, dsc_trust: TrustStore, cut: int) -> None:
    cose = cbor2.loads(make_cose(test_pki.dsc_ec, now=NOW))
    protected, unprotected, body, sig = cose.value
    sig = (sig + b"\x00")[:cut]
    v = verify_qr_text(
        hc1(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, body, sig]))), dsc_trust, now=NOW
    )
    _assert_clean(v, "signature", Reason.BAD_SIGNATURE)


def test_odd_payload_types_are_clean(test_pki: Pki, dsc_trust: TrustStore) -> None:
    """A signed payload with bytes, tags, floats and non-text keys: schema fails, JSON still works."""
    weird = dcc(nam={b"fn": b"\x00\x01", 7: float("nan")}, extra=cbor2.CBORTag(99, [1]))
    v = verify_qr_text(
        _signed_claims(test_pki.dsc_ec, {6: 1, 4: 2**40, -260: {1: weird}}), dsc_trust, now=NOW
    )
    _assert_clean(v, "schema", Reason.SCHEMA_INVALID)
    assert v.checks["signature"] is True


# --------------------------------------------------------------------------
# Property tests


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_base45_roundtrip(data: bytes) -> None:
    assert codec.b45decode(codec.b45encode(data)) == data


@settings(max_examples=500, deadline=None)
@given(st.text(st.one_of(st.sampled_from(B45), st.characters()), max_size=40))
def test_base45_decode_is_strict(text: str) -> None:
    """RFC 9285 is a bijection: text either fails cleanly or is the encoding of what it decodes to."""
    try:
        data = codec.b45decode(text)
    except CodecError:
        return
    assert codec.b45encode(data) == text


# Mutated valid QR texts


@st.composite
def mutations(draw: st.DrawFn, text: str) -> str:
    chars = st.one_of(st.sampled_from(B45), st.characters())
    kind = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "swap", "dup"]))
    i = draw(st.integers(0, len(text) - 1))
    if kind == "replace":
        return text[:i] + draw(chars) + text[i + 1 :]
    if kind == "delete":
        j = draw(st.integers(i + 1, min(len(text), i + 8)))
        return text[:i] + text[j:]
    if kind == "insert":
        return text[:i] + draw(st.text(chars, min_size=1, max_size=5)) + text[i:]
    if kind == "truncate":
        return text[:i]
    if kind == "swap":
        j = draw(st.integers(0, len(text) - 1))
        s = list(text)
        s[i], s[j] = s[j], s[i]
        return "".join(s)
    return text[:i] + text[i : i + 20] + text[i:]


_ORIGINALS: dict[int, str] = {}


def _original(key: SoftwareKey) -> str:
    """One valid QR per key: data generation must not depend on a fresh random signature."""
    if id(key) not in _ORIGINALS:
        _ORIGINALS[id(key)] = make_hc1(key, now=NOW)
    return _ORIGINALS[id(key)]


_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("which", ["dsc_ec", "dsc_rsa"])
@_SETTINGS
@given(data=st.data())
def test_mutated_qr_gives_clean_verdict(
    test_pki: Pki, dsc_trust: TrustStore, which: str, data: st.DataObject
) -> None:
    original = _original(getattr(test_pki, which))
    text = data.draw(mutations(original))
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert Reason.INTERNAL not in v.reasons
    json.loads(v.to_json())
    if v.valid:
        # Only an equivalent encoding (e.g. another zlib header level) may stay valid.
        assert codec.from_qr_text(text) == codec.from_qr_text(original)
    else:
        assert v.stage_failed is not None and v.errors
        assert all(e.stage in set(Stage) for e in v.errors)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_qr_cli_json(test_pki: Pki, dsc_pem: str, data: st.DataObject) -> None:
    text = data.draw(mutations(_original(test_pki.dsc_ec)))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["qr", "--trust", dsc_pem, "--json", "--at", NOW.isoformat(), "--", text])
    obj = json.loads(out.getvalue())
    assert code == (0 if obj["valid"] else 1), err.getvalue()
    assert err.getvalue() == ""
    assert set(obj) == {"valid", "stage_failed", "errors", "checks", "payload", "qr_text"}


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "set", "delete", "insert", "truncate"]))
    i = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        return data[:i] + bytes([data[i] ^ (1 << draw(st.integers(0, 7)))]) + data[i + 1 :]
    if kind == "set":
        return data[:i] + bytes([draw(st.integers(0, 255))]) + data[i + 1 :]
    if kind == "delete":
        return data[:i] + data[i + draw(st.integers(1, 4)) :]
    if kind == "insert":
        return data[:i] + draw(st.binary(min_size=1, max_size=9)) + data[i:]
    return data[:i]


_COSES: dict[int, bytes] = {}


@pytest.mark.parametrize("which", ["dsc_ec", "dsc_rsa"])
@_SETTINGS
@given(data=st.data())
def test_mutated_cose_gives_clean_verdict(
    test_pki: Pki, dsc_trust: TrustStore, which: str, data: st.DataObject
) -> None:
    """Mutations below the text layer reach the CBOR, COSE, CWT and signature checks."""
    key = getattr(test_pki, which)
    if id(key) not in _COSES:
        _COSES[id(key)] = make_cose(key, now=NOW)
    original = _COSES[id(key)]
    mutated = data.draw(byte_mutations(original))
    v = verify_qr_text(hc1(mutated), dsc_trust, now=NOW)
    assert Reason.INTERNAL not in v.reasons, v.errors
    assert v.checks["zlib"] is True
    json.loads(v.to_json())
    if v.valid:
        # Only unsigned parts (e.g. the unprotected header) may have changed.
        a, b = codec.decode_sign1(original), codec.decode_sign1(mutated)
        assert (a.protected_bytes, a.payload, a.signature) == (
            b.protected_bytes,
            b.payload,
            b.signature,
        )
