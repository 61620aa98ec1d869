"""Pure encode/decode for EU DCC "HC1:" texts: base45, zlib, COSE_Sign1, CWT.

Bytes in, values out: no clock, no keys, no I/O. Both the signer and the
verifier use these functions, so the verifier package stays standalone.

    >>> from verifier import codec
    >>> codec.b45encode(b"ietf!")
    'QED8WEX0'
    >>> codec.b45decode("QED8WEX0")
    b'ietf!'

References: RFC 9285 (base45), RFC 9052 (COSE), RFC 8392 (CWT), eHealth
Network "Electronic Health Certificate Container Format" (hcert) 1.x.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import cbor2

from verifier.errors import CodecError

HC1_PREFIX = "HC1:"

#: Cap on the decompressed CWT: a DCC is a few hundred bytes and a QR code
#: holds at most about 3 kB, so anything near this is an attack (zlib bomb).
MAX_DECOMPRESSED = 128 * 1024
#: Cap on the text handed to the decoder (largest QR: 4296 alphanumerics).
MAX_QR_TEXT = 8 * 1024
#: Cap on CBOR nesting in untrusted input.
MAX_CBOR_DEPTH = 16


class CoseHeader(IntEnum):
    """COSE header labels (RFC 9052 section 3.1)."""

    ALG = 1
    KID = 4
    X5CHAIN = 33


class CoseAlgorithm(IntEnum):
    """COSE algorithm identifiers (IANA COSE Algorithms registry)."""

    ES256 = -7
    ES384 = -35
    ES512 = -36
    PS256 = -37


class CwtClaim(IntEnum):
    """CWT claim keys (RFC 8392) and the hcert claim (-260)."""

    ISS = 1
    EXP = 4
    NBF = 5
    IAT = 6
    HCERT = -260


#: Key of the EU DCC v1 payload inside the hcert claim map.
HCERT_EU_DCC_V1 = 1

COSE_SIGN1_TAG = 18
CWT_TAG = 61

# --------------------------------------------------------------------------
# base45 (RFC 9285), vectorised with C-level bytes operations: pure-Python
# per-character loops cost more than the ECDSA signature itself, and a
# 65536-entry table of str objects is cache-hostile in a signing loop.

_B45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _table(f: Any) -> bytes:
    return bytes(f(i) for i in range(256))


# Encoding, per byte pair (a, b), n = 256 a + b = c + 45 d + 2025 e: split
# 256 a = ca + 45 da + 2025 ea and b = cb + 45 db (256-entry tables), then add
# the columns with carries. Each column sum fits a byte (c: <= 88, d: <= 50,
# e: <= 32), so the sums of all pairs are computed at once as big integers
# with one byte per pair, without carries between bytes.
_ENC_CA = _table(lambda a: (256 * a) % 45)
_ENC_DA = _table(lambda a: (256 * a) // 45 % 45)
_ENC_EA = _table(lambda a: (256 * a) // 2025)
_ENC_CB = _table(lambda b: b % 45)
_ENC_DB = _table(lambda b: b // 45)
_ENC_CARRY = _table(lambda s: s // 45 if s < 135 else 0)
_ENC_DIGIT = _table(lambda s: ord(_B45_ALPHABET[s % 45]))  # column sum -> its digit
# Latin-1 byte -> base45 digit value, 255 for anything outside the alphabet.
_DEC_VALUES = _table(lambda c: _B45_ALPHABET.index(chr(c)) if chr(c) in _B45_ALPHABET else 255)


_from_le = int.from_bytes


def _b45_digits(data: bytes) -> bytearray:
    """The base45 digits (ASCII) of the byte pairs of ``data``; an odd last byte is ignored.

    Each digit column is the sum of its byte columns, added as little-endian
    big integers (one byte per pair, no carry crosses pairs); the three
    columns are interleaved and mapped to digits (sum mod 45) by one
    ``translate`` over the whole output.
    """
    m = len(data) >> 1
    hi = data[0 : 2 * m : 2]
    lo = data[1 : 2 * m : 2]
    c = (_from_le(hi.translate(_ENC_CA), "little") + _from_le(lo.translate(_ENC_CB), "little")).to_bytes(
        m, "little"
    )
    d = (
        _from_le(hi.translate(_ENC_DA), "little")
        + _from_le(lo.translate(_ENC_DB), "little")
        + _from_le(c.translate(_ENC_CARRY), "little")
    ).to_bytes(m, "little")
    e = (_from_le(hi.translate(_ENC_EA), "little") + _from_le(d.translate(_ENC_CARRY), "little")).to_bytes(
        m, "little"
    )
    sums = bytearray(3 * m)
    sums[0::3] = c
    sums[1::3] = d
    sums[2::3] = e
    return sums.translate(_ENC_DIGIT)


def _b45_last(byte: int) -> bytes:
    """The two digits of an odd last byte."""
    return bytes((byte % 45, byte // 45)).translate(_ENC_DIGIT)


def b45encode(data: bytes) -> str:
    """Encode bytes as base45 (RFC 9285), without a Python loop per byte pair."""
    out = _b45_digits(data)
    if len(data) & 1:
        out += _b45_last(data[-1])
    return out.decode("ascii")


def b45encode_many(chunks: Sequence[bytes], *, prefix: str = "") -> list[str]:
    """``[prefix + b45encode(c) for c in chunks]``, with the digits of all
    chunks computed in one pass (the signer encodes its batches so: the
    per-call work of :func:`b45encode` is paid once per batch)."""
    evens = b"".join([c if not len(c) & 1 else c[:-1] for c in chunks])
    digits = _b45_digits(evens).decode("ascii")
    out = []
    start = 0
    for chunk in chunks:
        end = start + 3 * (len(chunk) >> 1)
        if len(chunk) & 1:
            out.append(prefix + digits[start:end] + _b45_last(chunk[-1]).decode("ascii"))
        else:
            out.append(prefix + digits[start:end])
        start = end
    return out


_E_BELOW_32 = bytes(range(32))


def _b45_invalid() -> CodecError:
    return CodecError("base45_invalid", "not valid base45 (RFC 9285)")


def b45decode(text: str) -> bytes:
    """Decode base45; raises :class:`CodecError` (reason ``base45``) if invalid.

    Vectorised with C-level bytes operations (no Python loop per triple):
    digit values via ``bytes.translate``, the triples' three digit columns
    placed in the low bytes of 16-bit big-endian lanes of three big
    integers, ``n = c + 45 d + 2025 e`` computed once on those integers, and
    the result's bytes are the output pairs in order. A triple is valid when
    n <= 65535, i.e. e <= 31, or e == 32 and c + 45 d <= 735 (checked on the
    few triples with e == 32), so no lane overflows into its neighbour.
    """
    try:
        values = text.encode("latin-1").translate(_DEC_VALUES)
    except UnicodeEncodeError:
        raise _b45_invalid() from None
    if b"\xff" in values:
        raise _b45_invalid()
    m, rest = divmod(len(values), 3)
    if rest == 1:
        raise CodecError("base45_invalid", "base45 text has a dangling character")
    full = 3 * m
    col_c = values[0:full:3]
    col_d = values[1:full:3]
    col_e = values[2:full:3]
    high_e = col_e.translate(None, _E_BELOW_32)  # the e digits above 31
    if high_e:
        if high_e.count(32) != len(high_e):
            raise _b45_invalid()
        i = col_e.find(32)
        while i >= 0:
            if col_c[i] + 45 * col_d[i] > 735:
                raise _b45_invalid()
            i = col_e.find(32, i + 1)
    lanes = bytearray(2 * m)
    lanes[1::2] = col_c
    total = int.from_bytes(lanes, "big")
    lanes[1::2] = col_d
    total += 45 * int.from_bytes(lanes, "big")
    lanes[1::2] = col_e
    total += 2025 * int.from_bytes(lanes, "big")
    out = total.to_bytes(2 * m, "big")
    if rest == 2:
        last = values[full] + 45 * values[full + 1]
        if last > 255:
            raise _b45_invalid()
        out += bytes((last,))
    return out


# --------------------------------------------------------------------------
# HC1 text <-> COSE bytes


#: Deflate parameters for :func:`to_qr_text`: level 9 with a 2 KiB window
#: (wbits 11) and memLevel 4 instead of 32 KiB / 8. A COSE for a QR code is
#: well under 2 KiB, so the output is as small as with the defaults (measured
#: on the example records), and the compressor allocates about 20 KiB instead
#: of about 270 KiB per call (large allocations can go through mmap and page
#: faults in a signing loop). The result is a standard zlib stream.
ZLIB_LEVEL, ZLIB_WBITS, ZLIB_MEMLEVEL = 9, 11, 4


def zlib_compress(data: bytes, level: int = ZLIB_LEVEL) -> bytes:
    """A zlib stream (RFC 1950) of ``data`` at ``level`` (0 = stored blocks,
    :func:`zlib_stored`), with the small window and memLevel above."""
    if level == 0:
        return zlib_stored(data)
    deflate = zlib.compressobj(level, zlib.DEFLATED, ZLIB_WBITS, ZLIB_MEMLEVEL)
    return deflate.compress(data) + deflate.flush()


#: RFC 1950 header of :func:`zlib_stored`: CM 8 (deflate), CINFO 0 (a
#: 256-byte window: stored blocks refer back to nothing, so every inflater
#: accepts it whatever window it allows), FLEVEL 0, FCHECK so that the
#: header is a multiple of 31.
_STORED_HEADER = bytes((0x08, 0x1D))
_MAX_STORED = 0xFFFF  # RFC 1951 section 3.2.4: LEN is 16 bits


def zlib_stored(data: bytes) -> bytes:
    """A zlib stream of ``data`` in stored (uncompressed) deflate blocks.

    RFC 1950 header + RFC 1951 section 3.2.4 blocks (BTYPE 00: header byte,
    LEN, NLEN, the bytes; BFINAL on the last) + Adler-32 of ``data``; what
    ``zlib`` writes at level 0, made without setting up a compressor (about
    a tenth of its cost for a QR-sized COSE; tests/test_codec.py inflates
    it with ``zlib`` and checks the layout).
    """
    n = len(data)
    adler = zlib.adler32(data).to_bytes(4, "big")
    if n <= _MAX_STORED:  # one block: every COSE that fits a QR code
        return b"".join((_STORED_HEADER, _stored_block_head(n, final=True), data, adler))
    parts = [_STORED_HEADER]
    for start in range(0, n, _MAX_STORED):
        block = data[start : start + _MAX_STORED]
        parts += (_stored_block_head(len(block), final=start + _MAX_STORED >= n), block)
    parts.append(adler)
    return b"".join(parts)


def _stored_block_head(length: int, *, final: bool) -> bytes:
    return struct.pack("<BHH", 1 if final else 0, length, length ^ 0xFFFF)


def to_qr_text(cose: bytes, *, level: int = ZLIB_LEVEL) -> str:
    """COSE_Sign1 bytes -> zlib (``level``) -> base45 -> ``HC1:`` text."""
    return HC1_PREFIX + b45encode(zlib_compress(cose, level))


def strip_prefix(text: str) -> str:
    """Remove the ``HC1:`` context identifier; raises CodecError if absent."""
    if len(text) > MAX_QR_TEXT:
        raise CodecError("too_long", f"QR text longer than {MAX_QR_TEXT} characters")
    if not text.startswith(HC1_PREFIX):
        raise CodecError("prefix_missing", "text does not start with the HC1: prefix")
    return text[len(HC1_PREFIX) :]


def decompress(data: bytes, *, limit: int = MAX_DECOMPRESSED) -> bytes:
    """zlib-inflate with a cap on the output size (zlib bomb guard).

    hcert 1.x section 3.2 makes compression mandatory for QR transport; an
    uncompressed COSE (first byte 0xD2 or 0x84) is reported as such.
    """
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit)
    except zlib.error as err:
        raise CodecError("zlib_invalid", f"not a valid zlib stream ({err})") from None
    if d.unconsumed_tail:
        raise CodecError("zlib_too_large", f"decompressed data exceeds {limit} bytes")
    if not d.eof:
        raise CodecError("zlib_invalid", "truncated zlib stream")
    return out


def from_qr_text(text: str) -> bytes:
    """``HC1:`` text -> COSE bytes (prefix, base45 and zlib stages in one)."""
    return decompress(b45decode(strip_prefix(text)))


# --------------------------------------------------------------------------
# CBOR on untrusted input


_CBOR_CONTAINERS = (list, tuple, dict, cbor2.CBORTag)
#: Exact types of decoded scalars, never containers: skipped without the
#: (slower) isinstance checks against every container type.
_CBOR_LEAVES = frozenset({str, int, bytes, float, bool, type(None)})


def _depth_ok(obj: Any, depth: int = 0, max_items: int | None = None) -> bool:
    """No item nested deeper than MAX_CBOR_DEPTH (the root is at ``depth``).

    Walks level by level, so scalars cost no Python call: this runs on every
    verified QR (three times) and is on the verifier's hot path.

    ``max_items`` bounds the items walked: every CBOR item takes at least one
    byte, so a tree decoded from ``n`` bytes has at most ``n`` items. More
    means shared values (tags 28/29) repeated or in a cycle: a few bytes
    that expand exponentially when walked (a memory and CPU bomb).
    """
    level = [obj]
    budget = -1 if max_items is None else max_items
    while level:
        if depth > MAX_CBOR_DEPTH:
            return False
        children: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item)
                children.extend(item.values())
            elif isinstance(item, list | tuple):
                children.extend(item)
            elif isinstance(item, cbor2.CBORTag):
                children.append(item.value)
            if budget >= 0 and len(children) > budget:
                return False
        budget = -1 if budget < 0 else budget - len(children)
        if children and depth + 1 > MAX_CBOR_DEPTH:
            return False
        level = [
            c for c in children if type(c) not in _CBOR_LEAVES and isinstance(c, _CBOR_CONTAINERS)
        ]
        depth += 1
    return True


def cbor_loads(data: bytes, *, reason: str) -> Any:
    """Decode untrusted CBOR; any failure becomes ``CodecError(reason)``."""
    try:
        obj = cbor2.loads(data)
    except RecursionError:
        raise CodecError(reason, "CBOR nested too deeply") from None
    except Exception as err:  # cbor2 raises many exception types on garbage
        raise CodecError(reason, f"malformed CBOR ({type(err).__name__})") from None
    if not _depth_ok(obj, max_items=len(data)):
        raise CodecError(reason, "CBOR nested too deeply or with repeated shared values")
    return obj


# --------------------------------------------------------------------------
# COSE_Sign1 (RFC 9052 section 4.2)


@dataclass(frozen=True)
class Sign1:
    """A decoded COSE_Sign1 structure."""

    protected_bytes: bytes
    protected: Mapping[Any, Any]
    unprotected: Mapping[Any, Any]
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> Any:
        """Algorithm from the protected header (never the unprotected one)."""
        return self.protected.get(CoseHeader.ALG)

    @property
    def kid(self) -> bytes | None:
        """kid from the protected header, else the unprotected one (hcert 1.x 3.3.1)."""
        for header in (self.protected, self.unprotected):
            kid = header.get(CoseHeader.KID)
            if isinstance(kid, bytes):
                return kid
        return None


def encode_protected(alg: int, kid: bytes | None = None, **extra: Any) -> bytes:
    """Deterministically encoded protected header map."""
    header: dict[int, Any] = {CoseHeader.ALG: int(alg)}
    if kid is not None:
        header[CoseHeader.KID] = kid
    for name, value in extra.items():
        header[CoseHeader[name.upper()]] = value
    return cbor2.dumps({int(k): v for k, v in header.items()}, canonical=True)


def cbor_bstr(data: bytes) -> bytes:
    """CBOR byte string (major type 2): shortest length header + the bytes."""
    n = len(data)
    if n < 24:
        return bytes((0x40 | n,)) + data
    if n < 0x100:
        return bytes((0x58, n)) + data
    if n < 0x10000:
        return struct.pack(">BH", 0x59, n) + data
    if n < 0x100000000:
        return struct.pack(">BI", 0x5A, n) + data
    return struct.pack(">BQ", 0x5B, n) + data


#: Array(4) + text(10) "Signature1" (RFC 9052 section 4.4).
_SIGNATURE1 = b"\x84\x6aSignature1"


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The ``Signature1`` structure that is actually signed (RFC 9052 4.4).

    Equals ``cbor2.dumps(["Signature1", protected, external_aad, payload])``,
    assembled directly (cbor2's per-call set-up costs more than the encoding).
    """
    return _SIGNATURE1 + cbor_bstr(protected) + cbor_bstr(external_aad) + cbor_bstr(payload)


def encode_sign1(
    protected: bytes,
    payload: bytes,
    signature: bytes,
    unprotected: Mapping[int, Any] | None = None,
) -> bytes:
    """Tagged (18) COSE_Sign1 bytes."""
    return cbor2.dumps(
        cbor2.CBORTag(COSE_SIGN1_TAG, [protected, dict(unprotected or {}), payload, signature])
    )


def decode_sign1(data: bytes) -> Sign1:
    """Parse COSE_Sign1 bytes; raises ``CodecError`` with reason ``cose_*``.

    Accepts the tagged form (18), the untagged array and a CWT tag (61)
    around either, as the hcert spec's verifiers do.
    """
    obj = cbor_loads(data, reason="cose_malformed")
    if isinstance(obj, cbor2.CBORTag) and obj.tag == CWT_TAG:
        obj = obj.value
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise CodecError("cose_wrong_tag", f"CBOR tag {obj.tag} is not COSE_Sign1 (18)")
        obj = obj.value
    if not isinstance(obj, list) or len(obj) != 4:
        raise CodecError("cose_malformed", "COSE_Sign1 must be an array of four items")
    protected_bytes, unprotected, payload, signature = obj
    if not isinstance(protected_bytes, bytes):
        raise CodecError("cose_malformed", "protected header is not a byte string")
    if not isinstance(unprotected, dict):
        raise CodecError("cose_malformed", "unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise CodecError("cose_malformed", "payload is not a byte string")
    if not isinstance(signature, bytes):
        raise CodecError("cose_malformed", "signature is not a byte string")
    protected: Any = {}
    if protected_bytes:
        protected = cbor_loads(protected_bytes, reason="cose_malformed")
        if not isinstance(protected, dict):
            raise CodecError("cose_malformed", "protected header is not a map")
    return Sign1(
        protected_bytes=protected_bytes,
        protected=protected,
        unprotected=unprotected,
        payload=payload,
        signature=signature,
    )


# --------------------------------------------------------------------------
# CWT claims with the hcert payload


def encode_cwt(*, iss: str, issued_at: int, expires_at: int, dcc: Mapping[str, Any]) -> bytes:
    """CWT claims set holding one EU DCC v1 payload (hcert 1.x section 2.6)."""
    claims = {
        int(CwtClaim.ISS): iss,
        int(CwtClaim.EXP): int(expires_at),
        int(CwtClaim.IAT): int(issued_at),
        int(CwtClaim.HCERT): {HCERT_EU_DCC_V1: dcc},
    }
    return cbor2.dumps(claims, canonical=True)


@dataclass(frozen=True)
class Claims:
    """The CWT claims a verifier looks at."""

    iss: str | None
    iat: int | float | None
    exp: int | float | None
    dcc: Mapping[str, Any]


def decode_cwt(payload: bytes) -> Claims:
    """Parse a CWT payload; raises ``CodecError`` with reason ``cwt_*``."""
    claims = cbor_loads(payload, reason="cwt_malformed")
    if not isinstance(claims, dict):
        raise CodecError("cwt_malformed", "CWT payload is not a map")
    hcert = claims.get(int(CwtClaim.HCERT))
    if not isinstance(hcert, dict):
        raise CodecError("cwt_no_hcert", "CWT has no hcert claim (-260)")
    dcc = hcert.get(HCERT_EU_DCC_V1)
    if not isinstance(dcc, dict):
        raise CodecError("cwt_no_hcert", "hcert claim has no EU DCC v1 payload (key 1)")
    iss = claims.get(int(CwtClaim.ISS))
    iat = claims.get(int(CwtClaim.IAT))
    exp = claims.get(int(CwtClaim.EXP))
    for name, value in (("iat", iat), ("exp", exp)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise CodecError("cwt_malformed", f"CWT {name} is not a number")
    if iss is not None and not isinstance(iss, str):
        raise CodecError("cwt_malformed", "CWT iss is not a text string")
    return Claims(iss=iss, iat=iat, exp=exp, dcc=dcc)
