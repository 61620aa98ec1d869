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

import functools
import struct
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any

import cbor2

from verifier.errors import CodecError
from verifier.strict_cbor import MAX_DEPTH, loads_strict

HC1_PREFIX = "HC1:"

#: Cap on the decompressed CWT: a DCC is a few hundred bytes and a QR code
#: holds at most about 3 kB, so anything near this is an attack (zlib bomb).
MAX_DECOMPRESSED = 128 * 1024
#: Cap on the text handed to the decoder (largest QR: 4296 alphanumerics).
MAX_QR_TEXT = 8 * 1024
#: Cap on CBOR nesting (arrays, maps, tags) in untrusted input.
MAX_CBOR_DEPTH = MAX_DEPTH


class CoseHeader(IntEnum):
    """COSE header labels (RFC 9052 section 3.1)."""

    ALG = 1
    CRIT = 2
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


def cbor_loads(data: bytes, *, reason: str) -> Any:
    """Decode one untrusted CBOR item strictly (:mod:`verifier.strict_cbor`):
    no bytes after it, no duplicate map keys, integers within 64 bits, nesting
    bounded. Any failure is a ``CodecError``: its own reason
    (``trailing_bytes``, ``duplicate_map_key``, ``integer_out_of_range``) or
    ``reason`` for CBOR that does not decode at all."""
    return loads_strict(data, malformed=reason)


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


def _tag_at(data: bytes, pos: int) -> tuple[int | None, int]:
    """(tag number, position after its head) of a CBOR tag head at ``pos``,
    or (None, pos) when no tag starts there."""
    if pos >= len(data) or data[pos] >> 5 != 6:
        return None, pos
    info = data[pos] & 31
    if info < 24:
        return info, pos + 1
    if info < 28:
        end = pos + 1 + (1 << (info - 24))
        if end > len(data):
            raise CodecError("cose_malformed", "truncated CBOR tag")
        return int.from_bytes(data[pos + 1 : end], "big"), end
    raise CodecError("cose_malformed", "reserved CBOR additional information in a tag")


def _untag_sign1(data: bytes) -> int:
    """Where the COSE_Sign1 array starts, after its tags.

    Three layouts: tag 18 (RFC 9052 section 4.2), the CWT tag 61 around
    tag 18 (RFC 8392 section 6: tag 61 "MUST prefix a tagged object using
    one of the COSE CBOR tags"), or no tag at all (hcert 1.x, section 3.3:
    issuers send untagged COSE_Sign1 too; the official test vectors have
    them). Anything else, 61 around an untagged array included, is
    ``cose_wrong_tag``.
    """
    tag, pos = _tag_at(data, 0)
    if tag is None:
        return 0
    if tag == CWT_TAG:
        tag, pos = _tag_at(data, pos)
        if tag is None:
            raise CodecError("cose_wrong_tag", "CWT tag 61 around an untagged COSE_Sign1")
    if tag != COSE_SIGN1_TAG:
        raise CodecError("cose_wrong_tag", f"CBOR tag {tag} is not COSE_Sign1 (18)")
    if _tag_at(data, pos)[0] is not None:
        raise CodecError("cose_wrong_tag", "another tag inside the COSE_Sign1 tag")
    return pos


#: Header labels this verifier processes: ``alg`` and ``kid``. A ``crit``
#: header naming any other label makes the message one it must reject
#: (RFC 9052 section 3.1).
PROCESSED_HEADERS = frozenset({int(CoseHeader.ALG), int(CoseHeader.KID)})


def _check_labels(header: Mapping[Any, Any], where: str) -> None:
    """Header labels are integers or text (RFC 9052 section 3: ``label = int / tstr``);
    a ``true`` or ``1.0`` key would otherwise be read as label 1."""
    for label in header:
        if type(label) is not int and type(label) is not str:
            raise CodecError(
                "cose_malformed", f"{where} header has a label that is not int or text"
            )


def _check_crit(
    protected: Mapping[Any, Any], unprotected: Mapping[Any, Any], processed: frozenset[int]
) -> None:
    """RFC 9052 section 3.1, ``crit`` (label 2): in the protected header only,
    a non-empty array of labels, each present in the protected header and
    each one the verifier processes."""
    if CoseHeader.CRIT in unprotected:
        raise CodecError("crit_malformed", "crit header in the unprotected bucket")
    crit = protected.get(CoseHeader.CRIT)
    if crit is None:
        return
    if not isinstance(crit, list | tuple) or not crit:
        raise CodecError("crit_malformed", "crit header is not a non-empty array of labels")
    for label in crit:
        if type(label) is not int and type(label) is not str:
            raise CodecError("crit_malformed", "crit header names something that is not a label")
        if label not in processed:
            raise CodecError(
                "crit_unsupported", f"crit header names label {_short(label)}, not processed here"
            )
        if label not in protected:
            raise CodecError(
                "crit_malformed",
                f"crit header names label {label}, absent from the protected header",
            )


def _short(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decode_protected(protected_bytes: bytes) -> Mapping[Any, Any]:
    """The protected header map (an empty byte string is an empty map), read-only."""
    if not protected_bytes:
        return MappingProxyType({})
    protected = cbor_loads(protected_bytes, reason="cose_malformed")
    if not isinstance(protected, Mapping):
        raise CodecError("cose_malformed", "protected header is not a map")
    _check_labels(protected, "protected")
    return MappingProxyType(protected) if isinstance(protected, dict) else protected


#: Protected headers up to this size (alg + kid: 13 bytes; with x5chain they
#: are larger and not cached) are decoded once per distinct header: every QR
#: of one DSC carries the same bytes. Failures are not cached (lru_cache
#: keeps only returned values), and the bound keeps the cache small whatever
#: an attacker sends.
_CACHED_PROTECTED_SIZE = 64
_protected_header = functools.lru_cache(maxsize=256)(_decode_protected)


def decode_sign1(data: bytes, *, processed: frozenset[int] = PROCESSED_HEADERS) -> Sign1:
    """Parse COSE_Sign1 bytes; raises ``CodecError`` with reason ``cose_*``,
    ``crit_*`` or one of :func:`cbor_loads`'.

    The tag layout is checked on the bytes (:func:`_untag_sign1`), so the
    array is decoded as a top-level item: lists and dicts with cbor2 5 and
    6 alike (cbor2 6 decodes the contents of tags as tuples and immutable
    mappings). ``processed``: the header labels the caller acts on, for
    ``crit``.
    """
    start = _untag_sign1(data)
    obj = cbor_loads(data[start:] if start else data, reason="cose_malformed")
    if not isinstance(obj, list | tuple) or len(obj) != 4:
        raise CodecError("cose_malformed", "COSE_Sign1 must be an array of four items")
    protected_bytes, unprotected, payload, signature = obj
    if not isinstance(protected_bytes, bytes):
        raise CodecError("cose_malformed", "protected header is not a byte string")
    if not isinstance(unprotected, Mapping):
        raise CodecError("cose_malformed", "unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise CodecError("cose_malformed", "payload is not a byte string")
    if not isinstance(signature, bytes):
        raise CodecError("cose_malformed", "signature is not a byte string")
    if len(protected_bytes) <= _CACHED_PROTECTED_SIZE:
        protected = _protected_header(protected_bytes)  # an issuer's headers repeat
    else:
        protected = _decode_protected(protected_bytes)
    _check_labels(unprotected, "unprotected")
    _check_crit(protected, unprotected, processed)
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


def _check_claim_keys(claims: Mapping[Any, Any], where: str) -> None:
    """Claim keys are integers or text (RFC 8392 section 3): a ``true`` or
    ``4.0`` key would otherwise be read as claim 1 or 4."""
    for key in claims:
        if type(key) is not int and type(key) is not str:
            raise CodecError("cwt_malformed", f"{where}: a key that is not int or text")


def decode_cwt(payload: bytes) -> Claims:
    """Parse a CWT payload; raises ``CodecError`` with reason ``cwt_*`` or one
    of :func:`cbor_loads`'. Claim keys are integers or text (RFC 8392 section 3)."""
    claims = cbor_loads(payload, reason="cwt_malformed")
    if not isinstance(claims, Mapping):
        raise CodecError("cwt_malformed", "CWT payload is not a map")
    _check_claim_keys(claims, "CWT claims")
    hcert = claims.get(int(CwtClaim.HCERT))
    if not isinstance(hcert, Mapping):
        raise CodecError("cwt_no_hcert", "CWT has no hcert claim (-260)")
    _check_claim_keys(hcert, "hcert claim")
    dcc = hcert.get(HCERT_EU_DCC_V1)
    if not isinstance(dcc, Mapping):
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
