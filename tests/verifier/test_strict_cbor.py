"""verifier.strict_cbor and the output side of issue 8 (points 4 and 5).

* cbor2's own options (cbor2 >= 6.1) and the Python scan (cbor2 5) agree on
  generated and mutated CBOR: same value or same reason;
* duplicate keys compare as values, trailing bytes are found however many;
* a verdict's JSON never fails (huge integers, odd keys, lone surrogates),
  and immutable mappings / tuples (cbor2 6 tag contents) are shown as JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from verifier import codec, strict_cbor
from verifier.errors import CodecError
from verifier.hc1 import qr_text_from_file
from verifier.result import Reason, Stage, Verdict

MALFORMED = "cwt_malformed"

needs_native = pytest.mark.skipif(
    not strict_cbor.NATIVE, reason="cbor2 has no allow_duplicate_keys / semantic_decoders (< 6.1)"
)


def _outcome(decode: Any, data: bytes) -> tuple[str, Any]:
    try:
        value = decode(data, MALFORMED)
    except CodecError as err:
        return "error", err.reason
    if strict_cbor._may_share(data) and not strict_cbor.items_within(value, len(data)):
        return "error", MALFORMED
    return "ok", repr(value)


def _both(data: bytes) -> tuple[tuple[str, Any], tuple[str, Any]]:
    return _outcome(strict_cbor._decode_native, data), _outcome(strict_cbor._decode_fallback, data)


def test_reason_codes_are_verdict_reasons() -> None:
    for code in (strict_cbor.DUPLICATE_KEY, strict_cbor.TRAILING_BYTES, strict_cbor.INTEGER_OUT_OF_RANGE):
        assert Reason(code)
    assert codec.MAX_CBOR_DEPTH == strict_cbor.MAX_DEPTH


@pytest.mark.parametrize(
    ("hex_data", "reason"),
    [
        ("a201000100", "duplicate_map_key"),  # {1: 0, 1: 0}
        ("a2010018010a", "duplicate_map_key"),  # 1 and 1 written long
        ("a201f5f93c0000", "duplicate_map_key"),  # 1 and 1.0
        ("a2f500010a", "duplicate_map_key"),  # true and 1
        ("a2616101616101", "duplicate_map_key"),  # "a" twice
        ("a28201020082010201", "duplicate_map_key"),  # [1, 2] twice
        ("81a2010001f6", "duplicate_map_key"),  # nested
        ("bf01000100ff", "duplicate_map_key"),  # indefinite-length map
        ("0100", "trailing_bytes"),
        ("c249010000000000000000", "integer_out_of_range"),  # 2**64
        ("c349010000000000000000", "integer_out_of_range"),  # -2**64 - 1
        ("a1c24901000000000000000000", "integer_out_of_range"),  # as a key
        ("d901008263616263d81900", MALFORMED),  # 256(["abc", 25(0)]): string references
        ("9f" * 17 + "ff" * 17, MALFORMED),  # 17 nested arrays
        ("", MALFORMED),
        ("a1", MALFORMED),
        ("5f01ff", MALFORMED),  # a chunk that is no byte string
    ],
)
@pytest.mark.parametrize("path", ["native", "python-scan"])
def test_rules(hex_data: str, reason: str, path: str) -> None:
    if path == "native" and not strict_cbor.NATIVE:
        pytest.skip("cbor2 < 6.1")
    decode = strict_cbor._decode_native if path == "native" else strict_cbor._decode_fallback
    with pytest.raises(CodecError) as info:
        decode(bytes.fromhex(hex_data), MALFORMED)
    assert info.value.reason == reason


@pytest.mark.parametrize("path", ["native", "python-scan"])
@pytest.mark.parametrize(
    ("hex_data", "value"),
    [
        ("1bffffffffffffffff", 2**64 - 1),
        ("3bffffffffffffffff", -(2**64)),
        ("c24100", 0),
        ("c2540000000000000000000000000000000000000001", 1),  # leading zeros: in range
        ("c348ffffffffffffffff", -(2**64)),
        ("d81c8163616263", ["abc"]),  # a shareable value, not referred to
        ("5f41014102ff", b"\x01\x02"),
        ("a2010002f5", {1: 0, 2: True}),
    ],
)
def test_accepted(hex_data: str, value: Any, path: str) -> None:
    if path == "native" and not strict_cbor.NATIVE:
        pytest.skip("cbor2 < 6.1")
    decode = strict_cbor._decode_native if path == "native" else strict_cbor._decode_fallback
    assert decode(bytes.fromhex(hex_data), MALFORMED) == value


@pytest.mark.parametrize("extra", [1, 4095, 4096, 5000, 70000])
def test_trailing_bytes_found_however_many(extra: int) -> None:
    data = cbor2.dumps({"a": [1, 2, b"x" * 300]})
    for path in (strict_cbor._decode_native, strict_cbor._decode_fallback):
        if path is strict_cbor._decode_native and not strict_cbor.NATIVE:
            continue
        with pytest.raises(CodecError) as info:
            path(data + b"\x00" * extra, MALFORMED)
        assert info.value.reason == "trailing_bytes"


# --------------------------------------------------------------------------
# The two paths agree (hypothesis): generated CBOR, then mutated bytes.

_leaves = (
    st.integers(min_value=-(2**66), max_value=2**66)
    | st.text(max_size=4)
    | st.binary(max_size=4)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False, width=16)
)
_values = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.integers(-3, 3) | st.text(max_size=2), inner, max_size=4)
    | st.builds(cbor2.CBORTag, st.sampled_from([6, 99, 55799, 1000]), inner),
    max_leaves=20,
)


@needs_native
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_values, st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3), st.integers(0, 3))
def test_native_and_python_scan_agree(value: Any, edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(cbor2.dumps(value))
    for pos, byte in edits:
        if data:
            data[pos % len(data)] = byte
    if cut and data:
        data = data[: -(cut % len(data)) or None]
    native, scan = _both(bytes(data))
    assert native == scan, bytes(data).hex()


@needs_native
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_leaves, _leaves), min_size=1, max_size=5))
def test_maps_with_any_keys_agree(pairs: list[tuple[Any, Any]]) -> None:
    """Maps written pair by pair (repeats allowed): duplicates found alike."""
    try:
        body = b"".join(cbor2.dumps(k) + cbor2.dumps(v) for k, v in pairs)
    except Exception:
        return
    data = bytes([0xA0 | len(pairs)]) + body
    native, scan = _both(data)
    assert native == scan, data.hex()


# --------------------------------------------------------------------------
# decode_sign1 with another set of processed labels; JSON and text output.


def test_crit_may_name_labels_the_caller_processes() -> None:
    protected = cbor2.dumps({1: -7, 2: [33], 33: b"chain"})
    cose = codec.encode_sign1(protected, b"\xa0", b"sig")
    with pytest.raises(CodecError) as info:
        codec.decode_sign1(cose)
    assert info.value.reason == "crit_unsupported"
    assert codec.decode_sign1(cose, processed=frozenset({1, 33})).alg == -7


def _verdict(payload: Any, qr_text: str | None = "HC1:x") -> Verdict:
    checks = {s: True for s in Stage}
    checks[Stage.SCHEMA] = False
    return Verdict.build(checks=checks, errors=(), payload={"hcert": payload}, qr_text=qr_text)


def test_json_never_fails_on_odd_payloads() -> None:
    huge = 10**5000
    odd = {
        huge: huge,
        (1, huge): [huge, float("nan")],
        cbor2.CBORTag(99, huge): b"\x00",
        "frozen": cbor2.loads(cbor2.dumps(cbor2.CBORTag(99, {"a": [1, {"b": 2}]}))),
    }
    shown = json.loads(_verdict(odd).to_json())["payload"]["hcert"]
    assert shown[hex(huge)] == hex(huge)
    assert isinstance(shown["frozen"], str)  # a CBORTag: shown as text
    tag_contents = cbor2.loads(cbor2.dumps(cbor2.CBORTag(99, {"a": [1, {"b": 2}]}))).value
    assert json.loads(_verdict(tag_contents).to_json())["payload"]["hcert"] == {"a": [1, {"b": 2}]}


def test_json_of_a_text_with_lone_surrogates() -> None:
    """A QR text given on the command line as undecodable bytes (surrogateescape)."""
    text = _verdict({}, qr_text="HC1:\udcff").to_json()
    text.encode("utf-8")  # printable on any UTF-8 stdout
    assert json.loads(text)["qr_text"] == "HC1:\udcff"


def test_cli_prints_json_for_undecodable_argv_bytes(dsc_pem: str) -> None:
    from verifier import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["qr", "--trust", dsc_pem, "--json", "HC1:\udcff"])
    assert (code, err.getvalue()) == (1, "")
    assert json.loads(out.getvalue())["errors"][0]["reason"] == "base45_invalid"


@pytest.mark.parametrize("text", [" HC1:6BF", "HC1:6BF ", "\tHC1:6BF"])
def test_cli_text_is_not_stripped(dsc_pem: str, text: str) -> None:
    from verifier import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["qr", "--trust", dsc_pem, "--json", text])
    assert code == 1
    assert json.loads(out.getvalue())["qr_text"] == text


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"HC1:AB\n", "HC1:AB"),
        (b"HC1:AB\r\n", "HC1:AB"),
        (b"HC1:AB", "HC1:AB"),
        (b"HC1:AB\n\n", "HC1:AB\n"),
        (b"HC1:AB\r", "HC1:AB\r"),
        (b"HC1:AB \n", "HC1:AB "),
        (b" HC1:AB\n", " HC1:AB"),
        (b"\xef\xbb\xbfHC1:AB\n", "HC1:AB"),
        (b"HC1:\xff\n", "HC1:\ufffd"),
    ],
)
def test_qr_text_from_file(data: bytes, text: str) -> None:
    assert qr_text_from_file(data) == text


@pytest.mark.parametrize("path", ["native", "python-scan"])
def test_shared_value_cycle_inside_a_map_is_refused_quickly(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """28([29(0) x 2000]) under a key: an array holding itself 2000 times.
    The top-level form of this bomb (tests/verifier/test_review_regressions.py)
    no longer reaches the decoder: a top-level tag 28 is cose_wrong_tag."""
    if path == "native" and not strict_cbor.NATIVE:
        pytest.skip("cbor2 < 6.1")
    monkeypatch.setattr(strict_cbor, "NATIVE", path == "native")
    bomb = b"\xd8\x1c\x99\x07\xd0" + b"\xd8\x1d\x00" * 2000
    with pytest.raises(CodecError) as info:
        strict_cbor.loads_strict(b"\xa1\x01" + bomb, malformed=MALFORMED)
    assert info.value.reason == MALFORMED
