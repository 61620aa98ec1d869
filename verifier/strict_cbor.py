"""Decode untrusted CBOR strictly: one item, no duplicate keys, bounded integers.

    >>> from verifier.strict_cbor import loads_strict
    >>> loads_strict(bytes.fromhex("a201020304"), malformed="cwt_malformed")
    {1: 2, 3: 4}
    >>> from verifier.errors import CodecError
    >>> try:
    ...     loads_strict(bytes.fromhex("a201020103"), malformed="cwt_malformed")
    ... except CodecError as err:
    ...     print(err.reason)
    duplicate_map_key

The rules, each with its reason code (anything else that cbor2 refuses is
the caller's ``malformed`` reason):

1. The data is exactly one well-formed item (RFC 8949 section 5.1); bytes
   after it are ``trailing_bytes``.
2. No map holds two equal keys (RFC 8949 section 5.6; RFC 9052 section 3
   for COSE headers). Keys compare as the decoded map compares them, so
   ``1``, ``1.0`` and ``true`` are one key: a map that would lose an entry
   when decoded is refused (``duplicate_map_key``).
3. Every integer lies in the range of CBOR's major types 0 and 1,
   [-2**64, 2**64 - 1]: bignums (tags 2 and 3) beyond it are
   ``integer_out_of_range``. Python integers are unbounded; one of more
   than 4,300 digits cannot even be printed.
4. At most :data:`MAX_DEPTH` nested containers (arrays, maps and tags).
5. String references (tags 25 and 256) are refused: a few bytes would
   stand for an unbounded text once printed. Shared values (tags 28 and
   29) are decoded, but the decoded tree may hold no more items than the
   data has bytes (a shared value repeated or in a cycle is a bomb).

cbor2 6.1 and later check rules 2-4 and the string references in its Rust
decoder (``allow_duplicate_keys=False``, ``max_depth``, ``semantic_decoders``
for tags 2, 3, 25 and 256), and the stream's position after one ``decode``
shows rule 1. cbor2 5.x has none of these options: :class:`_Scan` walks the
item's structure in Python first (rules 1-5), then cbor2 decodes it. Which
path runs is found once, on import (:data:`NATIVE`); both report the first
defect in the data's order, so they give the same reason
(tests/verifier/test_strict_cbor.py holds them to it). Shared values are
bounded after decoding, on either path, when a tag 28 may be present
(:func:`items_within`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import cbor2

from verifier.errors import CodecError

#: Reason codes (the same strings as :class:`verifier.result.Reason`).
DUPLICATE_KEY = "duplicate_map_key"
TRAILING_BYTES = "trailing_bytes"
INTEGER_OUT_OF_RANGE = "integer_out_of_range"

#: Cap on nested containers (arrays, maps, tags) in untrusted input.
MAX_DEPTH = 16
#: The integer range of CBOR major types 0 and 1 (RFC 8949 section 3.1).
INT_MIN, INT_MAX = -(2**64), 2**64 - 1

_TAG_POSITIVE_BIGNUM, _TAG_NEGATIVE_BIGNUM = 2, 3
_TAGS_STRINGREF = frozenset({25, 256})


class _Refused(Exception):
    """Raised inside cbor2's semantic decoders; ``reason`` None means malformed."""

    def __init__(self, reason: str | None, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def _bignum_magnitude(value: object) -> int:
    if not isinstance(value, bytes):
        raise _Refused(None, "bignum content is not a byte string")
    n = int.from_bytes(value, "big")
    if n > INT_MAX:
        raise _Refused(INTEGER_OUT_OF_RANGE, "bignum outside the 64-bit integer range")
    return n


def _positive_bignum(value: object, immutable: bool = False) -> int:
    return _bignum_magnitude(value)


def _negative_bignum(value: object, immutable: bool = False) -> int:
    return -1 - _bignum_magnitude(value)


def _refuse_stringref(value: object, immutable: bool = False) -> Any:
    raise _Refused(None, "string references (tags 25, 256) are not accepted")


_SEMANTIC_DECODERS: dict[int, Any] = {
    _TAG_POSITIVE_BIGNUM: _positive_bignum,
    _TAG_NEGATIVE_BIGNUM: _negative_bignum,
    **dict.fromkeys(_TAGS_STRINGREF, _refuse_stringref),
}


def _native_decoder(fp: io.BytesIO, *, allow_duplicate_keys: bool = False) -> Any:
    return cbor2.CBORDecoder(
        fp,
        max_depth=MAX_DEPTH,
        allow_duplicate_keys=allow_duplicate_keys,
        semantic_decoders=_SEMANTIC_DECODERS,
    )


def _native_works() -> bool:
    """cbor2 has the options rules 2-5 need, they act, and a decoder leaves
    its stream right after the item (cbor2 >= 6.1)."""
    try:
        _native_decoder(io.BytesIO(b"\xa2\x01\x00\x01\x00")).decode()
    except TypeError:  # an option cbor2 does not know (5.x, 6.0)
        return False
    except Exception:  # the duplicate key was refused: good
        pass
    else:
        return False
    try:
        _native_decoder(io.BytesIO(bytes.fromhex("c249010000000000000000"))).decode()
    except Exception as err:
        if not isinstance(_refusal(err), _Refused):
            return False
    else:
        return False
    fp = io.BytesIO(b"\x01\x02")  # the stream stops right after the item
    return bool(_native_decoder(fp).decode() == 1 and fp.tell() == 1)


def _refusal(err: BaseException) -> _Refused | None:
    seen: BaseException | None = err
    for _ in range(8):  # cbor2 chains our exception as the cause
        if seen is None or isinstance(seen, _Refused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _decode_native(data: bytes, malformed: str) -> Any:
    fp = io.BytesIO(data)
    try:
        obj = _native_decoder(fp).decode()
    except Exception as err:  # cbor2 raises many exception types on garbage
        raise _classify(err, data, malformed) from None
    if fp.tell() != len(data):
        raise CodecError(TRAILING_BYTES, "bytes left over after the CBOR item")
    return obj


def _classify(err: Exception, data: bytes, malformed: str) -> CodecError:
    refused = _refusal(err)
    if refused is not None:
        return CodecError(refused.reason or malformed, refused.message)
    if isinstance(err, RecursionError):
        return CodecError(malformed, "CBOR nested too deeply")
    if "duplicate map key" in str(err).lower():  # cbor2 6.1-6.3's message
        return CodecError(DUPLICATE_KEY, "a CBOR map holds the same key twice")
    try:  # else: a failure that goes away when duplicates are allowed was one
        _native_decoder(io.BytesIO(data), allow_duplicate_keys=True).decode()
    except Exception:
        return CodecError(malformed, f"malformed CBOR ({type(err).__name__})")
    return CodecError(DUPLICATE_KEY, "a CBOR map holds the same key twice")


# --------------------------------------------------------------------------
# Fallback for cbor2 without the options: a structural scan in Python.


class _Scan:
    """One pass over an item's heads (RFC 8949 section 3), values not built."""

    def __init__(self, data: bytes, malformed: str) -> None:
        self.data = data
        self.malformed = malformed

    def fail(self, message: str, reason: str | None = None) -> CodecError:
        return CodecError(reason or self.malformed, message)

    def head(self, pos: int) -> tuple[int, int | None, int]:
        """(major type, argument or None if indefinite, next position)."""
        data = self.data
        if pos >= len(data):
            raise self.fail("truncated CBOR")
        initial = data[pos]
        major, info = initial >> 5, initial & 31
        pos += 1
        if info < 24:
            return major, info, pos
        if info < 28:
            size = 1 << (info - 24)
            if pos + size > len(data):
                raise self.fail("truncated CBOR")
            return major, int.from_bytes(data[pos : pos + size], "big"), pos + size
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, None, pos
        raise self.fail("reserved or invalid CBOR additional information")

    def string(self, major: int, arg: int | None, pos: int) -> tuple[bytes, int]:
        """The bytes of a (possibly chunked) byte or text string and the end."""
        data = self.data
        if arg is not None:
            end = pos + arg
            if end > len(data):
                raise self.fail("truncated CBOR")
            return data[pos:end], end
        chunks: list[bytes] = []
        while True:
            if pos < len(data) and data[pos] == 0xFF:
                return b"".join(chunks), pos + 1
            chunk_major, chunk_arg, pos = self.head(pos)
            if chunk_major != major or chunk_arg is None:
                raise self.fail("bad chunk in an indefinite-length string")
            chunk, pos = self.string(major, chunk_arg, pos)
            chunks.append(chunk)

    def item(self, pos: int, depth: int) -> int:
        """Check the item at ``pos`` (inside ``depth`` containers); its end."""
        major, arg, pos = self.head(pos)
        if major < 2:
            return pos
        if major < 4:
            raw, end = self.string(major, arg, pos)
            if major == 3:  # decoded where it stands, as cbor2 does
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise self.fail("CBOR text is not UTF-8") from None
            return end
        if major == 7:
            if arg is None:
                raise self.fail("unexpected break in CBOR")
            return pos
        if depth >= MAX_DEPTH:
            raise self.fail("CBOR nested too deeply")
        if major == 6:
            return self.tag(arg, pos, depth + 1)
        data, count = self.data, arg  # a count beyond the data ends at its end: truncated
        keys: set[Any] = set()
        n = 0
        while count is None or n < count:
            if count is None and pos < len(data) and data[pos] == 0xFF:
                return pos + 1
            start = pos
            pos = self.item(pos, depth + 1)
            if major == 5:  # the value first, then the key's check, as cbor2 6 does
                key_end = pos
                pos = self.item(pos, depth + 1)
                key = self.key(start, key_end)
                try:
                    duplicate = key in keys
                    keys.add(key)
                except TypeError:
                    raise self.fail("unhashable CBOR map key") from None
                if duplicate:
                    raise self.fail("a CBOR map holds the same key twice", DUPLICATE_KEY)
            n += 1
        return pos

    def tag(self, number: int | None, pos: int, depth: int) -> int:
        if number in _TAGS_STRINGREF:
            raise self.fail("string references (tags 25, 256) are not accepted")
        if number in (_TAG_POSITIVE_BIGNUM, _TAG_NEGATIVE_BIGNUM):
            major, arg, after = self.head(pos)
            if major != 2:
                self.item(pos, depth)  # its own errors first, as cbor2 decodes it first
                raise self.fail("bignum content is not a byte string")
            magnitude, end = self.string(major, arg, after)
            if int.from_bytes(magnitude, "big") > INT_MAX:
                raise self.fail("bignum outside the 64-bit integer range", INTEGER_OUT_OF_RANGE)
            return end
        return self.item(pos, depth)

    def key(self, start: int, end: int) -> Any:
        """The map key at data[start:end] as the decoded map would hold it."""
        major, arg, pos = self.head(start)
        if major == 0 and arg is not None:
            return arg
        if major == 1 and arg is not None:
            return -1 - arg
        if major in (2, 3) and arg is not None:
            raw = self.data[pos:end]
            if major == 2:
                return raw
            try:
                return raw.decode("utf-8")
            except UnicodeDecodeError:
                raise self.fail("CBOR text key is not UTF-8") from None
        try:  # anything else: cbor2's own (immutable, hashable) map key
            return next(iter(cbor2.loads(b"\xa1" + self.data[start:end] + b"\xf6")))
        except Exception:
            raise self.fail("undecodable CBOR map key") from None


def _decode_fallback(data: bytes, malformed: str) -> Any:
    end = _Scan(data, malformed).item(0, 0)
    try:  # cbor2.loads ignores what follows the item
        obj = cbor2.loads(data)
    except RecursionError:
        raise CodecError(malformed, "CBOR nested too deeply") from None
    except Exception as err:  # cbor2 raises many exception types on garbage
        raise CodecError(malformed, f"malformed CBOR ({type(err).__name__})") from None
    if end != len(data):  # after the item's own errors, as with the native decoder
        raise CodecError(TRAILING_BYTES, "bytes left over after the CBOR item")
    return obj


# --------------------------------------------------------------------------

#: True when cbor2 checks rules 2-5 itself (checked once, on import).
NATIVE = _native_works()


def loads_strict(data: bytes, *, malformed: str) -> Any:
    """Decode one untrusted CBOR item under rules 1-5; ``CodecError`` otherwise.

    ``malformed`` is the reason for CBOR cbor2 cannot decode at all.
    """
    obj = _decode_native(data, malformed) if NATIVE else _decode_fallback(data, malformed)
    if _may_share(data) and not items_within(obj, len(data)):
        raise CodecError(malformed, "CBOR shared values repeated beyond the data's size")
    return obj


def _may_share(data: bytes) -> bool:
    """Whether a tag 28 head (any length) may occur: 0xd8 0x1c, or 0x00 0x1c
    ending 0xd9 / 0xda / 0xdb forms. Rare in real data, so the walk of
    :func:`items_within` is off the hot path."""
    return b"\xd8\x1c" in data or b"\x00\x1c" in data


_CONTAINERS = (list, tuple, Mapping, cbor2.CBORTag)
_LEAVES = frozenset({str, int, bytes, float, bool, type(None)})


def items_within(obj: Any, max_items: int) -> bool:
    """The decoded tree holds at most ``max_items`` items (and no deeper than
    :data:`MAX_DEPTH`).

    Every CBOR item takes at least one byte, so a tree decoded from ``n``
    bytes has at most ``n`` items; more means shared values (tags 28/29)
    repeated or in a cycle: a few bytes that expand exponentially when
    walked. Walks level by level, so scalars cost no Python call.
    """
    level = [obj]
    budget = max_items
    depth = 0
    while level:
        children: list[Any] = []
        for item in level:
            if isinstance(item, Mapping):
                children.extend(item)
                children.extend(item.values())
            elif isinstance(item, list | tuple):
                children.extend(item)
            elif isinstance(item, cbor2.CBORTag):
                children.append(item.value)
            if len(children) > budget:
                return False
        budget -= len(children)
        if children and depth + 1 > MAX_DEPTH:
            return False
        level = [c for c in children if type(c) not in _LEAVES and isinstance(c, _CONTAINERS)]
        depth += 1
    return True
