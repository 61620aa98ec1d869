"""verifier.codec: base45 (RFC 9285 vectors), zlib cap, COSE_Sign1 shapes, CWT claims."""

from __future__ import annotations

import zlib

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from verifier import codec
from verifier.errors import CodecError

# RFC 9285 section 4.3 examples.
RFC9285 = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


@pytest.mark.parametrize(("raw", "text"), RFC9285)
def test_base45_rfc_vectors(raw: bytes, text: str) -> None:
    assert codec.b45encode(raw) == text
    assert codec.b45decode(text) == raw


@given(st.binary(max_size=600))
def test_base45_roundtrip(data: bytes) -> None:
    assert codec.b45decode(codec.b45encode(data)) == data


def _b45encode_plain(data: bytes) -> str:
    """RFC 9285 section 4 written out per pair (reference for the vectorised encoder)."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        out += [alphabet[n % 45], alphabet[n // 45 % 45], alphabet[n // 2025]]
    if len(data) % 2:
        out += [alphabet[data[-1] % 45], alphabet[data[-1] // 45]]
    return "".join(out)


def test_base45_encoder_on_every_pair_and_tail() -> None:
    every_pair = b"".join(n.to_bytes(2, "big") for n in range(65536))
    assert codec.b45encode(every_pair) == _b45encode_plain(every_pair)
    for tail in range(256):
        data = every_pair[:1000] + bytes((tail,))
        assert codec.b45encode(data) == _b45encode_plain(data)


@given(st.lists(st.binary(max_size=80), max_size=20), st.sampled_from(["", "HC1:"]))
def test_base45_batch_encoder_equals_one_by_one(chunks: list[bytes], prefix: str) -> None:
    assert codec.b45encode_many(chunks, prefix=prefix) == [prefix + codec.b45encode(c) for c in chunks]


@given(st.binary(max_size=3000))
def test_stored_zlib_is_a_standard_stream(data: bytes) -> None:
    stream = codec.zlib_stored(data)
    assert zlib.decompress(stream) == data
    assert zlib.decompressobj(9).decompress(stream) == data  # smallest window a decoder may demand
    assert codec.decompress(stream) == data  # the verifier's capped inflater
    assert len(stream) == len(data) + 11  # 2 header + 5 block head + data + 4 Adler-32
    assert codec.zlib_compress(data, 0) == stream


def test_stored_zlib_splits_long_data_into_blocks() -> None:
    data = bytes(range(256)) * 600  # 153,600 bytes: 3 blocks of at most 65,535
    stream = codec.zlib_stored(data)
    assert zlib.decompress(stream) == data
    assert len(stream) == len(data) + 2 + 3 * 5 + 4
    assert stream[2] == 0 and stream[2 + 5 + 65535] == 0 and stream[2 + 2 * (5 + 65535)] == 1  # BFINAL last


@pytest.mark.parametrize(
    "text",
    [
        "GGW",  # 65535 + 1: above 16 bits (RFC 9285 section 6)
        "ZZZ",
        ":::",
        "abc",  # lower case is not in the alphabet
        "B",  # dangling single character
        "BB8B",
        "QED8WEX",  # truncated group
        "QED8WEX0\n",
    ],
)
def test_base45_rejects_invalid(text: str) -> None:
    with pytest.raises(CodecError) as info:
        codec.b45decode(text)
    assert info.value.reason == "base45_invalid"


def test_base45_rejects_two_char_group_above_255() -> None:
    # "ZZ" = 35 + 35*45 = 1610 > 255
    with pytest.raises(CodecError):
        codec.b45decode("ZZ")


def test_decompress_caps_output_size() -> None:
    bomb = zlib.compress(b"\0" * (codec.MAX_DECOMPRESSED + 1), 9)
    assert len(bomb) < 1024
    with pytest.raises(CodecError) as info:
        codec.decompress(bomb)
    assert info.value.reason == "zlib_too_large"
    assert codec.decompress(zlib.compress(b"\0" * 1000)) == b"\0" * 1000


@pytest.mark.parametrize("data", [b"", b"\x78\x9c", b"garbage", zlib.compress(b"x" * 100)[:-3]])
def test_decompress_rejects_broken_streams(data: bytes) -> None:
    with pytest.raises(CodecError) as info:
        codec.decompress(data)
    assert info.value.reason == "zlib_invalid"


def test_prefix() -> None:
    assert codec.strip_prefix("HC1:ABC") == "ABC"
    for bad in ("HC2:ABC", "hc1:ABC", " HC1:ABC", ""):
        with pytest.raises(CodecError) as info:
            codec.strip_prefix(bad)
        assert info.value.reason == "prefix_missing"
    with pytest.raises(CodecError):
        codec.strip_prefix("HC1:" + "A" * codec.MAX_QR_TEXT)


def _sign1(**overrides: object) -> bytes:
    parts = {
        "protected": codec.encode_protected(codec.CoseAlgorithm.ES256, b"12345678"),
        "unprotected": {},
        "payload": b"\xa0",
        "signature": b"s" * 64,
    }
    parts.update(overrides)
    return cbor2.dumps(cbor2.CBORTag(18, list(parts.values())))


def test_sign1_roundtrip_tagged_and_untagged() -> None:
    protected = codec.encode_protected(codec.CoseAlgorithm.PS256, b"abcdefgh")
    data = codec.encode_sign1(protected, b"payload", b"sig", {4: b"ignored!"})
    assert data[0] == 0xD2  # tag 18
    s = codec.decode_sign1(data)
    assert (s.alg, s.kid, s.payload, s.signature) == (-37, b"abcdefgh", b"payload", b"sig")
    untagged = cbor2.dumps([protected, {}, b"p", b"s"])
    assert codec.decode_sign1(untagged).payload == b"p"
    cwt_wrapped = cbor2.dumps(cbor2.CBORTag(61, cbor2.loads(data)))
    assert codec.decode_sign1(cwt_wrapped).kid == b"abcdefgh"


def test_sign1_kid_protected_wins_over_unprotected() -> None:
    protected = codec.encode_protected(codec.CoseAlgorithm.ES256, b"PROTECTD")
    s = codec.decode_sign1(codec.encode_sign1(protected, b"", b"", {4: b"UNPROTEC"}))
    assert s.kid == b"PROTECTD"
    bare = codec.encode_protected(codec.CoseAlgorithm.ES256)
    s = codec.decode_sign1(codec.encode_sign1(bare, b"", b"", {4: b"UNPROTEC"}))
    assert s.kid == b"UNPROTEC"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "cose_malformed"),
        (b"\x1d)\x18\xff\xff", "cose_malformed"),  # garbage
        (cbor2.dumps(cbor2.CBORTag(98, [b"", {}, b"", b""])), "cose_wrong_tag"),
        (cbor2.dumps(cbor2.CBORTag(18, [b"", {}, b""])), "cose_malformed"),
        (_sign1(protected="text"), "cose_malformed"),
        (_sign1(protected=cbor2.dumps([1, 2])), "cose_malformed"),
        (_sign1(unprotected=[]), "cose_malformed"),
        (_sign1(payload="text"), "cose_malformed"),
        (_sign1(signature=None), "cose_malformed"),
        (b"\x81" * 2000 + b"\x00", "cose_malformed"),  # deep nesting
        (b"\x9b" + b"\xff" * 8, "cose_malformed"),  # absurd array length
    ],
)
def test_sign1_rejects_bad_shapes(data: bytes, reason: str) -> None:
    with pytest.raises(CodecError) as info:
        codec.decode_sign1(data)
    assert info.value.reason == reason


def test_cbor_depth_limit_below_decoder_limit() -> None:
    nested: object = 0
    for _ in range(codec.MAX_CBOR_DEPTH + 2):
        nested = [nested]
    with pytest.raises(CodecError):
        codec.cbor_loads(cbor2.dumps(nested), reason="cwt_malformed")


def test_cwt_encoding_is_deterministic_and_decodes() -> None:
    dcc = {"ver": "1.3.0", "nam": {"fnt": "NGUYEN"}, "dob": "1985"}
    a = codec.encode_cwt(iss="VN", issued_at=1000, expires_at=2000, dcc=dcc)
    b = codec.encode_cwt(iss="VN", issued_at=1000, expires_at=2000, dcc=dict(reversed(dcc.items())))
    assert a == b
    claims = codec.decode_cwt(a)
    assert (claims.iss, claims.iat, claims.exp, dict(claims.dcc)) == ("VN", 1000, 2000, dcc)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ([1, 2], "cwt_malformed"),
        ({1: "VN"}, "cwt_no_hcert"),
        ({-260: {2: {}}}, "cwt_no_hcert"),
        ({-260: {1: {}}, 4: "tomorrow"}, "cwt_malformed"),
        ({-260: {1: {}}, 6: True}, "cwt_malformed"),
        ({-260: {1: {}}, 1: 7}, "cwt_malformed"),
    ],
)
def test_cwt_rejects_bad_claims(claims: object, reason: str) -> None:
    with pytest.raises(CodecError) as info:
        codec.decode_cwt(cbor2.dumps(claims))
    assert info.value.reason == reason


def test_cwt_accepts_float_dates() -> None:
    claims = codec.decode_cwt(cbor2.dumps({-260: {1: {}}, 4: 2000.5, 6: 1000.0}))
    assert claims.exp == 2000.5 and claims.iat == 1000.0


def test_qr_text_roundtrip() -> None:
    cose = _sign1()
    text = codec.to_qr_text(cose)
    assert text.startswith("HC1:")
    assert set(text[4:]) <= set(codec._B45_ALPHABET)
    assert codec.from_qr_text(text) == cose
