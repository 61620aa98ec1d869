"""The HC1 QR code as a module matrix and as PDF vector drawing operators.

    >>> from signer.pdf.qr import qr_matrix, qr_drawing
    >>> m = qr_matrix("HC1:NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH-R6IOO6+IDOEZAF-")  # doctest: +SKIP
    >>> ops = qr_drawing(m, x=100, y=100, size=216, quiet_zone=4)          # doctest: +SKIP

hcert 1.x section 4 asks for a QR code with error correction level Q; the
matrix is :func:`signer.qr.make_qr`'s, the same symbol as the record's PNG
(and ``qrcode``'s), encoded once per record: ``make_qr`` keeps the last few
symbols, so the PNG made after the PDF reuses this one. Dark modules are
drawn as filled rectangles, one per horizontal run, so the QR stays sharp
at any print resolution and costs no raster image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from signer.qr import make_qr

_RUN = re.compile(rb"\x00+")
#: make_qr's modules ("1" dark, "0" light) -> QrMatrix bytes (0 dark, 255 light).
_TO_BYTES = bytes.maketrans(b"01", b"\xff\x00")


@dataclass(frozen=True)
class QrMatrix:
    """Square module matrix, row-major, ``0`` = dark, ``255`` = light, no quiet zone."""

    size: int
    rows: tuple[bytes, ...]
    ec_level: str


def qr_matrix(text: str, *, ec_level: str = "Q") -> QrMatrix:
    """Encode ``text`` (alphanumeric HC1) as a QR code at the given EC level."""
    symbol = make_qr(text, level=ec_level)
    n = symbol.size
    data = symbol.dark.encode("ascii").translate(_TO_BYTES)
    return QrMatrix(size=n, rows=tuple(data[i : i + n] for i in range(0, n * n, n)), ec_level=ec_level)


class _SpanOps(dict[tuple[int, int], bytes]):
    """(start, end) of a run of dark modules -> its rectangle operator, made on first use."""

    def __missing__(self, span: tuple[int, int]) -> bytes:
        ops = self[span] = b"%d 0 %d 1 re " % (span[0], span[1] - span[0])
        return ops


#: Shared by all QR codes (at most one entry per run a row of 177 modules can hold).
_SPAN_OPS = _SpanOps()
_SPAN = re.Match.span
_NEXT_ROW = b"1 0 0 1 0 -1 cm"
_FILL_NEXT_ROW = b"f " + _NEXT_ROW
#: A dark module is written as its column + 33 (never an ASCII white-space byte, at most
#: 209), a light one as a space, the row end as 0xFE (see qr_drawing).
_COLUMN_BASE = 33
_ROW_END = 0xFE
#: dark module (0) -> 0xFF, light (255) -> 0
_DARK_ONES = bytes.maketrans(b"\x00\xff", b"\xff\x00")
#: Beyond this many tokens the table starts again (it holds a few thousand in practice).
_MAX_TOKENS = 200_000


class _TokenOps(dict[bytes, bytes]):
    """A token of :func:`qr_drawing` -> its operators, made on first use.

    A token is a run of dark modules written as their columns + 33 (so the
    bytes say where the run starts and how long it is), possibly running
    through row ends (0xFE) into the next row's first run; each row end
    becomes the row's fill and the move one row down.
    """

    def __missing__(self, token: bytes) -> bytes:
        if len(self) >= _MAX_TOKENS:
            self.clear()
        parts = []
        for i, run in enumerate(token.split(bytes((_ROW_END,)))):
            if i:
                parts.append(_FILL_NEXT_ROW + b"\n")
            if run:
                parts.append(b"%d 0 %d 1 re " % (run[0] - _COLUMN_BASE, len(run)))
        ops = self[token] = b"".join(parts)
        return ops


_TOKEN_OPS = _TokenOps()


@cache
def _columns(n: int) -> int:
    """Each module's column + 33 and a row end 0xFE after each row, XOR spaces, as one integer."""
    columns = (bytes(range(_COLUMN_BASE, n + _COLUMN_BASE)) + bytes((_ROW_END,))) * n
    return int.from_bytes(columns, "big") ^ _spaces(n)


@cache
def _spaces(n: int) -> int:
    return int.from_bytes(b" " * (n + 1) * n, "big")


def qr_drawing(
    matrix: QrMatrix, *, x: float, y: float, size: float, quiet_zone: int = 4
) -> bytes:
    """PDF content operators drawing the QR with its lower-left corner at (x, y).

    ``size`` is the side including the quiet zone (white background drawn too).
    Module units: one coordinate system scaled to the module size, moved down
    one row after each row's rectangles are filled, so each rectangle's
    operator depends only on its run and comes from a shared table.

    The runs are found in one pass over the whole matrix: each dark module
    becomes its column + 33 and each light one a space (one AND and one XOR
    of two integers), so one ``bytes.split()`` returns every run as bytes
    that are their own table key (the same operators as
    :func:`drawing_by_rows`, tested). A matrix
    with a row without any dark module (the row end alone could not tell
    it) is drawn row by row.
    """
    n = matrix.size
    rows = matrix.rows
    if not all(b"\x00" in row for row in rows):
        return drawing_by_rows(matrix, x=x, y=y, size=size, quiet_zone=quiet_zone)
    dark = (b"\x00".join(rows) + b"\x00").translate(_DARK_ONES)  # the row ends stay
    tokens = ((int.from_bytes(dark, "big") & _columns(n)) ^ _spaces(n)).to_bytes(len(dark), "big")
    return b"".join(
        [
            _header(n, x=x, y=y, size=size, quiet_zone=quiet_zone),
            b"".join(map(_TOKEN_OPS.__getitem__, tokens.split())),
            b"Q",
        ]
    )


def _header(n: int, *, x: float, y: float, size: float, quiet_zone: int) -> bytes:
    module = size / (n + 2 * quiet_zone)
    return (
        b"q 1 g %.2f %.2f %.2f %.2f re f 0 g\n" % (x, y, size, size)
        + b"%.5f 0 0 %.5f %.3f %.3f cm 1 0 0 1 0 %d cm\n"
        % (module, module, x + quiet_zone * module, y + quiet_zone * module, n - 1)
    )


def drawing_by_rows(
    matrix: QrMatrix, *, x: float, y: float, size: float, quiet_zone: int = 4
) -> bytes:
    """:func:`qr_drawing`, one row at a time (one regex scan and one table
    lookup per run of dark modules)."""
    n = matrix.size
    ops = [_header(n, x=x, y=y, size=size, quiet_zone=quiet_zone)[:-1]]
    rect = _SPAN_OPS.__getitem__
    runs = _RUN.finditer
    for row in matrix.rows:
        rects = b"".join(map(rect, map(_SPAN, runs(row))))
        ops.append(rects + _FILL_NEXT_ROW if rects else _NEXT_ROW)
    ops.append(b"Q")
    return b"\n".join(ops)
