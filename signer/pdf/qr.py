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


def qr_drawing(
    matrix: QrMatrix, *, x: float, y: float, size: float, quiet_zone: int = 4
) -> bytes:
    """PDF content operators drawing the QR with its lower-left corner at (x, y).

    ``size`` is the side including the quiet zone (white background drawn too).
    Module units: one coordinate system scaled to the module size, moved down
    one row after each row's rectangles are filled, so each rectangle's
    operator depends only on its run and comes from a shared table.
    """
    n = matrix.size
    module = size / (n + 2 * quiet_zone)
    ops = [
        b"q 1 g %.2f %.2f %.2f %.2f re f 0 g" % (x, y, size, size),
        b"%.5f 0 0 %.5f %.3f %.3f cm 1 0 0 1 0 %d cm"
        % (module, module, x + quiet_zone * module, y + quiet_zone * module, n - 1),
    ]
    rect = _SPAN_OPS.__getitem__
    runs = _RUN.finditer
    next_row = b"1 0 0 1 0 -1 cm"
    fill_next_row = b"f " + next_row
    for row in matrix.rows:
        rects = b"".join(map(rect, map(_SPAN, runs(row))))
        ops.append(rects + fill_next_row if rects else next_row)
    ops.append(b"Q")
    return b"\n".join(ops)
