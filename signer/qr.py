"""QR symbols of an HC1 text, and their PNG and SVG images.

    >>> from signer.qr import make_qr, qr_png, qr_svg
    >>> qr = make_qr("HC1:NCFOXN%TS3DH")
    >>> qr_png(qr)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> qr_svg(qr).startswith(b"<?xml")
    True

hcert 1.x section 4.3 / eHN QR guidelines: error correction level Q (25 %),
a quiet zone of 4 modules. The whole HC1 text is in the QR alphanumeric
alphabet (base45 was designed for it: RFC 9285 section 1), so it is
encoded in alphanumeric mode (5.5 bits per character), never byte mode.

The symbol is the one the ``qrcode`` package builds for the same text
(``make(fit=True)``, one alphanumeric segment; the whole matrix is tested
equal to ``QRCode.modules`` on random texts, levels and versions), built
here in one pass, because ``qrcode`` does it module by module in pure
Python (about 30 ms per HC1 QR):

* the codewords: :func:`alphanumeric_codewords` returns what
  ``util.create_data`` returns (ISO/IEC 18004:2015 sections 7.4-7.6: bit
  stream, pad codewords, Reed-Solomon per block of ``qrcode``'s own block
  table, interleaving), with the bit stream built from a table indexed by
  each pair of character values (one ``bytes.translate``, one memoryview
  cast) and Reed-Solomon as a shift register in one Python integer;
* the placement: per version, ``qrcode`` itself draws the function
  patterns once and its zigzag gives each data bit's position, cut into
  runs of one column evenly spaced in the bit stream (about 100 at an HC1's
  version); per text, one slice assignment per run into a copy of the
  function patterns, then one ``int(..., 2)``, give the unmasked matrix as
  one Python integer;
* the mask: :func:`best_mask`'s section 7.8.3 penalty score of each of the
  8 masks on that integer (each rule is a handful of shifts, ANDs and
  popcounts), picking what ``qrcode`` picks; the chosen mask's bits and
  its format and version information are then XORed/ORed in.

A :class:`QrSymbol` keeps the modules as one string of "0"/"1"; the PNG
(:func:`qr_png`, written directly with zlib), the SVG and the PDF passport's
vector drawing (:mod:`signer.pdf.qr`) are made from it, and
:func:`make_qr` keeps the last few symbols so a record's PNG and PDF share
one encoding. ``.venv/bin/python bench/qr.py --breakdown`` times each step
(docs/benchmarks.md, "QR images").
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

import qrcode
from qrcode import base, util
from qrcode.util import MODE_ALPHA_NUM

from verifier.errors import InputError

QUIET_ZONE = 4
#: Pixels per module in the PNG (a version-17 HC1 QR: 85 modules + quiet zone).
DEFAULT_BOX_SIZE = 4
#: Size of a module in the SVG (millimetres; 0.4 mm = qrcode's SVG size at box_size 4).
SVG_MODULE_MM = 0.4

_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
#: Row padding of the packed matrix: one column that is neither dark nor light.
#: Every penalty window (5 or 6 modules of one colour, the 11 of a finder-like
#: pattern) asks each of its consecutive modules to be dark or light, so a
#: window running past the end of a row fails at that column (it was 10
#: columns, one per module of the longest window: 9.5 % more bits per operation).
_PAD = 1


#: Error correction levels by letter (hcert 1.x section 4.3: Q; the PDF template may ask for H).
LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}


@dataclass(frozen=True, slots=True)
class QrSymbol:
    """One QR symbol: its parameters and its modules, no quiet zone.

    ``dark`` holds the ``size x size`` modules row by row, ``"1"`` dark and
    ``"0"`` light: the same matrix as ``qrcode``'s ``QRCode.modules`` for
    the same text, version, level and mask (tested), in a form the PNG, SVG
    and PDF writers slice and translate without a per-module Python loop.
    """

    version: int
    error_correction: int
    mask_pattern: int
    size: int
    dark: str

    @property
    def rows(self) -> list[str]:
        n = self.size
        return [self.dark[i : i + n] for i in range(0, n * n, n)]

    @property
    def modules(self) -> list[list[bool]]:
        """The matrix as ``qrcode``'s ``QRCode.modules`` (rows of bools, no quiet zone)."""
        return [[m == "1" for m in row] for row in self.rows]

    def get_matrix(self, border: int = QUIET_ZONE) -> list[list[bool]]:
        """The matrix with a quiet zone of ``border`` modules, as ``QRCode.get_matrix``."""
        width = self.size + 2 * border
        edge = [False] * border
        blank = [[False] * width for _ in range(border)]
        return [*blank, *([*edge, *row, *edge] for row in self.modules), *blank]


def make_qr(text: str, *, level: str = "Q") -> QrSymbol:
    """Encode ``text`` (alphanumeric mode, smallest version that fits; level Q by default).

    The symbol ``qrcode`` builds for the same text (``make(fit=True)``, one
    alphanumeric segment), built here in one pass with big-integer
    operations: codewords (:func:`alphanumeric_codewords`), the mask of
    lowest penalty (:func:`best_mask`'s scoring), then the chosen mask and
    the format and version information applied to the placed matrix.

    The last few symbols are kept (keyed by text and level), so a record's
    PNG and PDF passport, made one after the other, share one encoding.
    """
    if not text or not _ALPHANUMERIC.issuperset(text):
        raise InputError("QR text must be non-empty and in the QR alphanumeric alphabet")
    try:
        error_correction = LEVELS[level]
    except KeyError:
        raise InputError(f"unknown QR error correction level {level!r}") from None
    return _encode(text, error_correction)


@lru_cache(maxsize=8)
def _encode(text: str, error_correction: int) -> QrSymbol:
    version = alphanumeric_version(len(text), error_correction)
    data = alphanumeric_codewords(text, version, error_correction)
    layout = _layout(version, error_correction, len(data))
    n, stride = layout.n, layout.stride
    unmasked = _unmasked(layout, data)
    scores = [
        _penalty(unmasked ^ mask, n, stride, layout.full, layout.blocks) for mask in layout.masks
    ]
    mask = scores.index(min(scores))
    final = unmasked ^ layout.masks[mask] | layout.finish[mask]
    bits = format(final, f"0{n * stride}b")[::-1]  # position r * stride + c -> character
    return QrSymbol(
        version=version,
        error_correction=error_correction,
        mask_pattern=mask,
        size=n,
        dark="".join([bits[i : i + n] for i in range(0, n * stride, stride)]),
    )


def alphanumeric_version(length: int, error_correction: int) -> int:
    """Smallest version holding ``length`` characters in one alphanumeric segment.

    ISO/IEC 18004:2015 section 7.4.4: 4 mode bits, a character count of 9,
    11 or 13 bits by version, 11 bits per pair of characters and 6 for an odd
    one; capacities from ``qrcode``'s own table. The same answer as
    ``QRCode.best_fit`` (tested), which writes the whole bit stream to find it.
    """
    pairs, odd = divmod(length, 2)
    for version in range(1, 41):
        count_bits = util.mode_sizes_for_version(version)[MODE_ALPHA_NUM]
        if 4 + count_bits + 11 * pairs + 6 * odd <= util.BIT_LIMIT_TABLE[error_correction][version]:
            return version
    raise InputError(
        f"QR text too long for a QR code at this error correction level ({length} characters)"
    )


# -- codewords ------------------------------------------------------------------

_ALPHABET = util.ALPHA_NUM.decode("ascii")
#: A character (ASCII byte) -> its value 0-44.
_VALUES = bytes.maketrans(_ALPHABET.encode("ascii"), bytes(range(45)))
#: Two character values as one native 16-bit unsigned integer (a memoryview
#: cast to "H" of the values' bytes) -> the pair's 11-bit value 45 a + b as
#: "0"/"1" text (ISO/IEC 18004:2015 7.4.4); "" for the unused indexes.
_PAIR_BITS = [""] * 65536
for _a in range(45):
    for _b in range(45):
        _PAIR_BITS[_a | _b << 8 if sys.byteorder == "little" else _a << 8 | _b] = format(45 * _a + _b, "011b")
del _a, _b
#: Pad codewords 11101100 00010001, alternating (ISO/IEC 18004:2015 section 7.4.10).
_PADDING = bytes([util.PAD0, util.PAD1]) * 1500


@dataclass(frozen=True)
class _Blocks:
    """Error correction blocks of one version and level (qrcode's ``rs_blocks`` table)."""

    #: Data capacity in bits (8 x the data codewords of all blocks).
    data_bits: int
    #: (start, end) of each block's data codewords in the data stream, in order.
    spans: tuple[tuple[int, int], ...]
    #: EC codewords per block (the same for every block of a version and level).
    ec_count: int
    #: Picks the final sequence from data codewords + EC codewords (block after block).
    interleave: itemgetter[Any]


@cache
def _blocks(version: int, error_correction: int) -> _Blocks:
    """Block structure and interleaving order (ISO/IEC 18004:2015 sections 7.5.2, 7.6)."""
    blocks = base.rs_blocks(version, error_correction)
    ec_counts = {b.total_count - b.data_count for b in blocks}
    if len(ec_counts) != 1:  # pragma: no cover - true of every entry of the standard's table
        raise ValueError(f"blocks of version {version} differ in EC codewords: {blocks}")
    (ec_count,) = ec_counts
    spans = []
    start = 0
    for block in blocks:
        spans.append((start, start + block.data_count))
        start += block.data_count
    data_total = start
    # Data: the i-th codeword of every block in turn (shorter blocks run out first);
    # then EC codewords the same way, as qrcode's create_bytes interleaves them.
    order = [s + i for i in range(max(e - s for s, e in spans)) for s, e in spans if s + i < e]
    order += [data_total + k * ec_count + i for i in range(ec_count) for k in range(len(spans))]
    return _Blocks(
        data_bits=8 * data_total,
        spans=tuple(spans),
        ec_count=ec_count,
        interleave=itemgetter(*order),
    )


@cache
def _rs_rows(ec_count: int) -> tuple[int, ...]:
    """Per feedback byte f: f x (generator polynomial without its leading 1), packed.

    The generator of degree ``ec_count`` is the product of (x - a^i) for
    i = 0 .. ec_count - 1 over GF(256) with the polynomial 0x11D (ISO/IEC
    18004:2015 section 7.5.2, Annex A), built from qrcode's own exp/log
    tables. Row f holds the ``ec_count`` coefficients times f, one byte each,
    most significant first, as one Python integer.
    """
    exp, log = base.EXP_TABLE, base.LOG_TABLE

    def mul(a: int, b: int) -> int:
        return 0 if a == 0 or b == 0 else exp[(log[a] + log[b]) % 255]

    generator = [1]
    for i in range(ec_count):  # times (x + a^i)
        root = exp[i]
        generator = [
            hi ^ mul(lo, root) for hi, lo in zip([*generator, 0], [0, *generator], strict=True)
        ]
    tail = generator[1:]
    return tuple(int.from_bytes(bytes(mul(f, g) for g in tail), "big") for f in range(256))


def reed_solomon(data: bytes, ec_count: int) -> bytes:
    """EC codewords of one block: the remainder of data(x) x^ec_count by the generator.

    ISO/IEC 18004:2015 section 7.5.2. The division is a shift register held
    as one Python integer of ``ec_count`` bytes: per data codeword, one
    shift, one mask and one XOR with a precomputed row.
    """
    rows = _rs_rows(ec_count)
    shift = 8 * (ec_count - 1)
    mask = (1 << (8 * ec_count)) - 1
    register = 0
    for codeword in data:
        register = ((register << 8) & mask) ^ rows[(register >> shift) ^ codeword]
    return register.to_bytes(ec_count, "big")


def alphanumeric_codewords(text: str, version: int, error_correction: int) -> list[int]:
    """Final codeword sequence of ``text`` as one alphanumeric segment.

    ISO/IEC 18004:2015 section 7.4: mode indicator 0010, a character count
    of 9, 11 or 13 bits by version, 11 bits per pair and 6 for an odd last
    character (7.4.4), a terminator of up to 4 zero bits, zeros to a byte
    boundary, pad codewords 0xEC 0x11 (7.4.10); then Reed-Solomon per block
    (7.5) and interleaving (7.6). The same list as qrcode's
    ``util.create_data(version, error_correction, [QRData(text, MODE_ALPHA_NUM)])``
    (tested), in a fraction of the time. One difference: when a block's data
    codewords are all zero, qrcode fails (``ValueError: glog(0)``); the EC
    codewords of an all-zero block are all zero, and that is what we return.
    """
    blocks = _blocks(version, error_correction)
    count_bits = util.length_in_bits(MODE_ALPHA_NUM, version)
    pairs, odd = divmod(len(text), 2)
    length = 4 + count_bits + 11 * pairs + 6 * odd
    if length > blocks.data_bits:
        raise InputError(
            f"QR text too long for version {version} ({length} bits > {blocks.data_bits})"
        )
    if not _ALPHANUMERIC.issuperset(text):
        raise InputError("QR text must be in the QR alphanumeric alphabet")
    # the characters' values by one bytes.translate; each pair of them read as one
    # 16-bit integer that indexes its 11-bit text
    values = text.encode("ascii").translate(_VALUES)
    bits = "".join(map(_PAIR_BITS.__getitem__, memoryview(values)[: 2 * pairs].cast("H")))
    value = (0b0010 << count_bits | len(text)) << 11 * pairs | int(bits or "0", 2)  # mode, count, pairs
    if odd:
        value = value << 6 | values[-1]
    used = (min(length + 4, blocks.data_bits) + 7) // 8  # terminator, then to a byte boundary
    value <<= 8 * used - length
    data = value.to_bytes(used, "big") + _PADDING[: blocks.data_bits // 8 - used]
    ec_count = blocks.ec_count
    ec = b"".join(reed_solomon(data[s:e], ec_count) for s, e in blocks.spans)
    return list(blocks.interleave(data + ec))


# -- mask selection -------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Everything about one version's matrix that does not depend on the data.

    Module (row r, column c) is bit ``r * stride + c`` of a packed matrix
    (dark = 1); columns ``n .. stride - 1`` of each row are padding (0).
    """

    n: int
    stride: int
    #: The matrix as "0"/"1" bytes (MSB first) before the data: function
    #: patterns dark, data and remainder bits light.
    template: bytes
    #: Where the data bits go: ``matrix[to] = bits[frm]`` for each ``(to, frm)``
    #: (runs of one column that are evenly spaced in the bit stream).
    place: tuple[tuple[slice, slice], ...]
    #: Per mask pattern 0-7: the bits it inverts (data region only).
    masks: tuple[int, ...]
    #: All modules of the symbol.
    full: int
    #: Modules that are the top-left corner of a 2x2 block.
    blocks: int
    #: Per mask pattern 0-7: the dark modules of the format information (and
    #: version information, the dark module) once that mask is chosen; light
    #: while masks are scored.
    finish: tuple[int, ...]


@cache
def _layout(version: int, error_correction: int, data_len: int) -> _Layout:
    """Function patterns and data placement of ``version``, as ``qrcode`` builds them.

    Format and version information are light while masks are scored, as in
    ``qrcode``'s ``makeImpl(test=True, ...)``.
    """
    probe: qrcode.QRCode[Any] = qrcode.QRCode(version=version, error_correction=error_correction)
    n = probe.modules_count = version * 4 + 17
    probe.modules = [[None] * n for _ in range(n)]
    probe.setup_position_probe_pattern(0, 0)
    probe.setup_position_probe_pattern(n - 7, 0)
    probe.setup_position_probe_pattern(0, n - 7)
    probe.setup_position_adjust_pattern()
    probe.setup_timing_pattern()
    probe.setup_type_info(True, 0)
    if version >= 7:
        probe.setup_type_number(True)
    modules = probe.modules

    stride = n + _PAD
    nbits = 8 * data_len
    size = n * stride
    dark = {r * stride + c for r, row in enumerate(modules) for c, module in enumerate(row) if module}
    # Data placement: the zigzag of qrcode's map_data (ISO/IEC 18004 7.7.3).
    data_positions: list[tuple[int, int]] = []
    row, inc = n - 1, -1
    for col in range(n - 1, 0, -2):
        if col <= 6:
            col -= 1  # the vertical timing pattern is skipped
        while True:
            for c in (col, col - 1):
                if modules[row][c] is None:
                    data_positions.append((row, c))
            row += inc
            if row < 0 or row >= n:
                row -= inc
                inc = -inc
                break
    template = bytearray(b"0" * size)  # MSB first: position p is character size - 1 - p
    for p in dark:
        template[size - 1 - p] = 0x31
    place = _runs(data_positions[:nbits], size, stride)
    region = bytearray(b"0" * size)
    for r, c in data_positions:
        region[size - 1 - (r * stride + c)] = 0x31
    data_region = int(region, 2)
    masks = []
    for pattern in range(8):
        # Every mask condition repeats every 12 rows and every 12 columns (ISO/IEC
        # 18004:2015 table 10: periods 1, 2, 3, 4 and 6), so the whole grid is one
        # 12 x 12 tile repeated, as one "0"/"1" text (MSB first: each row reversed,
        # after its padding), limited to the data region by one AND.
        flip = util.mask_func(pattern)
        tile = ["".join("1" if flip(r, c) else "0" for c in range(12)) * (n // 12 + 1) for r in range(12)]
        text = "".join("0" * _PAD + tile[r % 12][n - 1 :: -1] for r in range(n - 1, -1, -1))
        masks.append(int(text, 2) & data_region)
    full = sum(((1 << n) - 1) << (r * stride) for r in range(n))
    blocks = sum(((1 << (n - 1)) - 1) << (r * stride) for r in range(n - 1))

    # Format information: row 8 and column 8 (and the dark module at (n - 8, 8));
    # version information: two 6 x 3 blocks (ISO/IEC 18004:2015 sections 7.9, 7.10).
    info = {(8, c) for c in range(n)} | {(r, 8) for r in range(n)}
    info |= {(r, c) for r in range(6) for c in range(n - 11, n - 8)}
    info |= {(r, c) for r in range(n - 11, n - 8) for c in range(6)}
    finish = []
    for pattern in range(8):  # as qrcode's makeImpl(test=False, pattern) draws them
        probe.setup_type_info(False, pattern)
        if version >= 7:
            probe.setup_type_number(False)
        finish.append(
            sum(
                1 << (r * stride + c)
                for r, c in info
                if modules[r][c] and r * stride + c not in dark
            )
        )
    return _Layout(
        n=n,
        stride=stride,
        template=bytes(template),
        place=place,
        masks=tuple(masks),
        full=full,
        blocks=blocks,
        finish=tuple(finish),
    )


def _runs(positions: list[tuple[int, int]], size: int, stride: int) -> tuple[tuple[slice, slice], ...]:
    """Slices placing data bit k at ``positions[k]`` (row, column) of a text of ``size``.

    Module (r, c) is character ``size - 1 - (r * stride + c)`` (MSB first).
    The bits of one column come evenly spaced in the stream (every second
    one where both columns of the zigzag are free, every one beside a
    function pattern) at evenly spaced characters (one row apart), so a few
    hundred slice assignments place the few thousand bits.
    """
    by_column: dict[int, list[tuple[int, int]]] = {}
    for k, (r, c) in enumerate(positions):
        by_column.setdefault(c, []).append((k, size - 1 - (r * stride + c)))
    runs: list[tuple[slice, slice]] = []
    for column in by_column.values():
        start = 0
        while start < len(column):
            end = start + 1
            if end < len(column):
                dk = column[end][0] - column[start][0]
                dp = column[end][1] - column[start][1]
                while (
                    end < len(column)
                    and column[end][0] - column[end - 1][0] == dk
                    and column[end][1] - column[end - 1][1] == dp
                ):
                    end += 1
            else:
                dk = dp = 1
            count = end - start
            k0, p0 = column[start]
            stop = p0 + count * dp
            runs.append((slice(p0, stop if stop >= 0 else None, dp), slice(k0, k0 + count * dk, dk)))
            start = end
    return tuple(runs)


def _unmasked(layout: _Layout, data: list[int]) -> int:
    """The packed matrix (function patterns + data, no mask) for codewords ``data``."""
    nbits = 8 * len(data)
    bits = format(int.from_bytes(bytes(data), "big"), f"0{nbits}b").encode("ascii")
    matrix = bytearray(layout.template)
    for to, frm in layout.place:
        matrix[to] = bits[frm]
    return int(matrix, 2)


def _penalty(a: int, n: int, stride: int, full: int, blocks: int) -> int:
    """Penalty score of a packed matrix (ISO/IEC 18004:2015 section 7.8.3.1).

    N1: each run of >= 5 same-colour modules in a row or column scores
    3 + (run - 5); N2: each 2x2 block of one colour scores 3 (overlapping
    blocks counted); N3: each 1:1:3:1:1 finder-like pattern with 4 light
    modules before or after it (inside the symbol) scores 40; N4: 10 per
    full 5 % by which the dark share departs from 50 %. Scored exactly as
    ``qrcode.util.lost_point`` scores it (tested equal).
    """
    na = a ^ full  # light modules
    score = 0
    shifted = []
    for s in (1, stride):  # rows, then columns (a shift by one row)
        # Each name is the AND of the modules at offsets 0, s, 2s, ... from a
        # position, built by doubling so that N1 and N3 share every shift.
        a1, n1 = a >> s, na >> s
        shifted.append(a1)
        d2, l2 = a & a1, na & n1  # dark dark, light light
        d4, l4 = d2 & (d2 >> 2 * s), l2 & (l2 >> 2 * s)
        # N1: a window of 5 equal modules starts at every position of a run
        # of L >= 5 but its last 4 (L - 4), plus 2 per run: L - 2 = 3 + (L - 5);
        # the runs of windows counted as windows minus windows followed by one.
        # Dark and light windows in one integer: they never share a position, and
        # a dark window is never followed by a light one (nor the reverse), so
        # the counts are those of each colour added.
        u = (d4 & (d4 >> s)) | (l4 & (l4 >> s))
        score += 3 * u.bit_count() - 2 * (u & (u >> s)).bit_count()
        # N3: 1011101 0000 and 0000 1011101 (dark = 1), 11 modules; one starts
        # dark, the other light, so both in one integer count each once.
        x = a & n1  # dark light
        core = x & (d2 >> 2 * s) & (x >> 4 * s) & ((na & a1) >> 5 * s)  # 1011101
        score += 40 * ((core & (l4 >> 7 * s)) | (l4 & (core >> 4 * s))).bit_count()
    # N2: top-left corners of 2x2 one-colour blocks.
    vertical = a ^ shifted[1]
    score += 3 * (~(vertical | (vertical >> 1) | (a ^ shifted[0])) & blocks).bit_count()
    return score + dark_share_penalty(a.bit_count(), n * n)


def dark_share_penalty(dark: int, total: int) -> int:
    """N4: 10 points per full 5 % by which ``dark / total`` departs from 50 %.

    In integers: floor(|100 d / t - 50| / 5) = floor(|20 d - 10 t| / t).
    qrcode computes it in floating point; the two agree for every symbol
    size and dark count (tested exhaustively).
    """
    return abs(20 * dark - 10 * total) // total * 10


def mask_penalties(version: int, error_correction: int, data: list[int]) -> list[int]:
    """Penalty score of each mask pattern 0-7 for the codewords ``data``."""
    layout = _layout(version, error_correction, len(data))
    base = _unmasked(layout, data)
    n, stride, full, blocks = layout.n, layout.stride, layout.full, layout.blocks
    return [_penalty(base ^ mask, n, stride, full, blocks) for mask in layout.masks]


def best_mask(version: int, error_correction: int, data: list[int]) -> int:
    """The mask pattern with the lowest penalty (the first one on a tie, as ``qrcode``)."""
    scores = mask_penalties(version, error_correction, data)
    return scores.index(min(scores))


# -- images ---------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: zlib level of the PNG's image data (with the Up filter, about the size Pillow's level 6 gives).
PNG_ZLIB_LEVEL = 1


def _symbol(qr: QrSymbol | str) -> QrSymbol:
    return make_qr(qr) if isinstance(qr, str) else qr


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(qr: QrSymbol | str, *, box_size: int = DEFAULT_BOX_SIZE) -> bytes:
    """PNG bytes: black on white, greyscale 1 bit per pixel, quiet zone of 4 modules.

    The same pixels as qrcode's PIL image at this box size (tested). Written
    directly (PNG, ISO/IEC 15948: IHDR, one IDAT, IEND). Each module row
    becomes one scanline; with a box size that is a multiple of 4 a module
    is whole hex digits (``str.translate`` then ``bytes.fromhex``). The
    ``box_size - 1`` copies of a scanline are written with the "Up" filter
    (section 9.2: all zero bytes), so zlib's fastest level gives about the
    size of Pillow's level 6, in a quarter of the time.
    """
    if box_size < 1:
        raise ValueError("box_size must be at least 1")
    symbol = _symbol(qr)
    side = symbol.size + 2 * QUIET_ZONE
    width = side * box_size
    row_bytes = (width + 7) // 8
    quiet = "0" * QUIET_ZONE
    repeat = b"\2" + b"\0" * row_bytes  # filter Up: the same as the scanline above
    copies = repeat * (box_size - 1)
    blank = (b"\0" + b"\xff" * row_bytes + copies) * QUIET_ZONE  # padding bits are ignored
    if box_size % 4 == 0:
        # the whole image as one hex text: the module rows joined by "|", one
        # translate (one character each at box size 4: CPython's fast path), then
        # each "|" becomes the row's padding digits, its copies and the next
        # row's filter byte 0; one fromhex
        digits = str.maketrans({"0": "f" * (box_size // 4), "1": "0" * (box_size // 4)})
        end = "0" * (2 * row_bytes - width // 4) + copies.hex()
        text = quiet + (quiet + "|" + quiet).join(symbol.rows) + quiet
        image = bytes.fromhex("00" + text.translate(digits).replace("|", end + "00") + end)
    else:
        pixels = {"0": "1" * box_size, "1": "0" * box_size}.__getitem__
        pad = "0" * (8 * row_bytes - width)
        image = b"".join(
            [
                b"\0" + int("".join(map(pixels, quiet + row + quiet)) + pad, 2).to_bytes(row_bytes, "big")
                + copies
                for row in symbol.rows
            ]
        )
    raw = blank + image + blank
    header = struct.pack(">IIBBBBB", width, width, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"".join(
        [
            _PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(raw, PNG_ZLIB_LEVEL)),
            _chunk(b"IEND", b""),
        ]
    )


_DARK_RUN = re.compile("1+")


def qr_svg(qr: QrSymbol | str) -> bytes:
    """SVG bytes: one path, one rectangle per horizontal run of dark modules.

    The viewBox is in modules (quiet zone included); the printed size is
    ``SVG_MODULE_MM`` per module, as qrcode's ``SvgPathImage`` at box_size 4.
    """
    symbol = _symbol(qr)
    size = symbol.size + 2 * QUIET_ZONE
    path = "".join(
        f"M{m.start() + QUIET_ZONE} {y}h{m.end() - m.start()}v1h-{m.end() - m.start()}z"
        for y, row in enumerate(symbol.rows, start=QUIET_ZONE)
        for m in _DARK_RUN.finditer(row)
    )
    mm = f"{size * SVG_MODULE_MM:.1f}mm"
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{mm}" height="{mm}"'
        f' viewBox="0 0 {size} {size}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path d="{path}" fill="#000"/></svg>\n'
    ).encode("ascii")
