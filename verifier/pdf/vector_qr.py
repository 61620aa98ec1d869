"""The QR code of page 1 read from the page's own vector drawing, without rendering.

    >>> from verifier.pdf.vector_qr import qr_from_drawing
    >>> qr_from_drawing(b"BT /F1 9 Tf 10 10 Td (no QR here) Tj ET", (0, 0, 595, 842), [])
    >>> # qr_from_drawing(page_content, media_box, annotation_rects) -> QrFound | None

Passports draw the QR as filled black rectangles on a white square (one
per horizontal run of dark modules, :mod:`signer.pdf.qr`), so the module
grid can be recovered exactly from the content stream and decoded from a
small synthetic image: about a millisecond where rendering the page with
``pdftoppm`` costs 0.3 s. This reads only what it fully understands and
answers None (the caller then renders the page, as before) otherwise:

1. the content uses only path construction (``m l c v y h re``), painting
   (``f F f* S s B B* b b* n``), ``q Q cm w``, the device grey and RGB
   colours, and text (``BT ET Tf Td TD Tm T* Tj TJ ' " Tc Tw TL``); anything
   else (images, forms, shadings, clipping, graphics states, marked
   content, type 3 fonts, other colour spaces, a rotated or skewed
   transformation) gives None;
2. the black and white filled rectangles, in device space, form one grid:
   the dark ones span N x N modules, N = 21..177 (versions 1..40), every
   rectangle on module boundaries; white ones are aligned too or cover the
   whole symbol;
3. nothing else is painted in the symbol or its 4-module quiet zone: no
   text (a conservative box: each byte of a string counts as a glyph up to
   2 em wide), no stroke, no other fill, no annotation rectangle; and the
   quiet zone lies inside the page's media box;
4. zxing-cpp decodes the matrix (a 3-pixel-per-module image with the quiet
   zone). If it cannot, None.

The test suite checks, on passports, that this text equals the one decoded
from the rendered page. Untrusted input: never raises.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Bounds of the interpretation (a passport page: about 3,000 operations).
MAX_OPERATIONS = 100_000
MAX_RECTS = 20_000
QUIET_ZONE = 4
_SCALE = 3
_TOLERANCE = 0.02

_WS = rb"[\x00\t\n\x0c\r ]"
#: unambiguous (one way to match a digit run: no quadratic backtracking on hostile input)
_NUM = rb"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
#: a run of "x y w h re" operations (most of a passport's QR), parsed in bulk
_RECTS = rb"(?:" + (_NUM + _WS + rb"+") * 4 + rb"re(?![^\x00\t\n\x0c\r ()<>\[\]{}/%])" + _WS + rb"*)+"
#: one token with the white space and comments before it (possessive: no backtracking), or
#: white space alone (the end of the content); about half of a page's tokens are white space,
#: so not matching them alone halves the matches
_SPACE = rb"(?:[\x00\t\n\x0c\r ]|%[^\r\n]*)*+"
_TOKEN = re.compile(
    _SPACE + rb"(?:(?P<rects>" + _RECTS + rb")|"
    rb"""
    (?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))
  | (?P<name>/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*)
  | (?P<hex><[0-9A-Fa-f\x00\t\n\x0c\r ]*>)
  | (?P<str>\((?:[^()\\]|\\.)*\))
  | (?P<open>\[)
  | (?P<close>\])
  | (?P<op>[A-Za-z'"*]+|<<|>>|\{|\})
    )?""",
    re.VERBOSE | re.DOTALL,
)

_ALLOWED = frozenset(
    ["m", "l", "c", "v", "y", "h", "re", "f", "F", "f*", "S", "s", "B", "B*", "b", "b*", "n", "q", "Q", "cm", "w", "g", "G", "rg", "RG", "BT", "ET", "Tf", "Td", "TD", "Tm", "T*", "Tj", "TJ", "'", '"', "Tc", "Tw", "TL", "J", "j", "M", "d", "ri", "i"]
)
_PAINT_FILL = frozenset({"f", "F", "f*", "B", "B*", "b", "b*"})
_PAINT_STROKE = frozenset({"S", "s", "B", "B*", "b", "b*"})

Box = tuple[float, float, float, float]


class _Unsure(Exception):
    """The drawing holds something this reader does not model: render instead."""


@dataclass(frozen=True)
class VectorQr:
    texts: tuple[str, ...]
    ec_levels: tuple[str, ...]
    modules: int
    #: the page's text from the same pass (ToUnicode of Identity-H fonts), or
    #: None when a font or string is not one this reader decodes
    page_text: str | None = None


def _mul(a: Sequence[float], b: Sequence[float]) -> tuple[float, ...]:
    """Matrix product a x b of PDF matrices [a b c d e f]."""
    return (
        a[0] * b[0] + a[1] * b[2], a[0] * b[1] + a[1] * b[3],
        a[2] * b[0] + a[3] * b[2], a[2] * b[1] + a[3] * b[3],
        a[4] * b[0] + a[5] * b[2] + b[4], a[4] * b[1] + a[5] * b[3] + b[5],
    )  # fmt: skip


def _apply(m: Sequence[float], x: float, y: float) -> tuple[float, float]:
    return m[0] * x + m[2] * y + m[4], m[1] * x + m[3] * y + m[5]


def _bbox(m: Sequence[float], pts: Sequence[tuple[float, float]]) -> Box:
    tx = [_apply(m, x, y) for x, y in pts]
    xs = [p[0] for p in tx]
    ys = [p[1] for p in tx]
    return min(xs), min(ys), max(xs), max(ys)


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


class _Interpreter:
    def __init__(self) -> None:
        self.ctm: tuple[float, ...] = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        self.stack: list[tuple[tuple[float, ...], str, float]] = []
        self.fill = "black"  # black, white or other
        self.line_width = 1.0
        self.path: list[tuple[float, float]] = []
        self.rects: list[tuple[float, float, float, float]] = []
        self.path_has_lines = False
        # painted: (kind, box); kind: dark, light (axis-aligned rects), other
        self.rect_fills: list[tuple[str, Box]] = []
        self.others: list[Box] = []
        # text state
        self.tm: tuple[float, ...] = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
        self.tlm: tuple[float, ...] = self.tm
        self.font_size = 0.0
        self.leading = 0.0
        self.spacing = {"Tc": 0.0, "Tw": 0.0}
        # text shown: (text object number, font resource name, string token)
        self.font: str | None = None
        self.block = 0
        self.strings: list[tuple[int, str | None, bytes]] = []
        self.ops = 0

    def run(self, content: bytes) -> None:
        operands: list[Any] = []
        array: list[Any] | None = None
        at = 0
        for match in _TOKEN.finditer(content):
            if match.start() != at:  # a byte no token matched: a construct not modelled
                raise _Unsure("unreadable content")
            at = match.end()
            kind = match.lastgroup
            if kind is None:  # white space alone (or nothing: the next byte is no token)
                continue
            if kind == "rects":
                if operands or array is not None:
                    raise _Unsure("operands before a rectangle")
                self.rect_run(match.group(kind))
                continue
            text = match.group(kind)
            if kind == "num":
                value: Any = float(text)
            elif kind == "hex" or kind == "str":
                value = _StringLen(_string_length(kind, text), text)
            elif kind == "name":
                value = text.decode("latin-1")
            elif kind == "open":
                if array is not None:
                    raise _Unsure("nested array")
                array = []
                continue
            elif kind == "close":
                if array is None:
                    raise _Unsure("unbalanced array")
                operands.append(array)
                array = None
                continue
            else:
                if array is not None:
                    raise _Unsure("operator inside an array")
                self.operator(text.decode("latin-1"), operands)
                operands = []
                continue
            if array is not None:
                array.append(value)
            else:
                operands.append(value)
        if at != len(content) or array is not None:
            raise _Unsure("unreadable content")

    def operator(self, op: str, args: list[Any]) -> None:
        self.ops += 1
        if self.ops > MAX_OPERATIONS or op not in _ALLOWED:
            raise _Unsure(op)
        n = [a for a in args if isinstance(a, float)]
        if op == "q":
            self.stack.append((self.ctm, self.fill, self.line_width))
            if len(self.stack) > 64:
                raise _Unsure("q nesting")
        elif op == "Q":
            if not self.stack:
                raise _Unsure("Q without q")
            self.ctm, self.fill, self.line_width = self.stack.pop()
        elif op == "cm":
            self.ctm = _mul(_six(n), self.ctm)
            if abs(self.ctm[1]) > 1e-9 or abs(self.ctm[2]) > 1e-9:
                raise _Unsure("rotated or skewed drawing")
        elif op == "w":
            self.line_width = abs(n[0]) if n else 1.0
        elif op in ("g", "rg"):
            self.fill = _colour(n)
        elif op in ("Tc", "Tw"):
            self.spacing[op] = abs(n[0]) if n else 0.0
        elif op == "re":
            x, y, w, h = _four(n)
            self.rects.append((x, y, x + w, y + h))
        elif op in ("m", "l"):
            self.path += [_two(n)]
            self.path_has_lines = True
        elif op in ("c", "v", "y"):
            pts = list(zip(n[0::2], n[1::2], strict=False))
            if not pts:
                raise _Unsure("curve")
            self.path += pts
            self.path_has_lines = True
        elif op in _PAINT_FILL or op in _PAINT_STROKE or op == "n":
            self.paint(op)
        elif op in ("BT", "ET"):
            self.tm = self.tlm = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
            self.block += 1
        elif op == "Tf":
            self.font_size = abs(n[-1]) if n else 0.0
            names = [a for a in args if isinstance(a, str)]
            self.font = names[0] if names else None
        elif op == "TL":
            self.leading = n[0] if n else 0.0
        elif op in ("Td", "TD"):
            tx, ty = _two(n)
            if op == "TD":
                self.leading = -ty
            self.tlm = self.tm = _mul((1, 0, 0, 1, tx, ty), self.tlm)
        elif op == "Tm":
            self.tlm = self.tm = _six(n)
        elif op == "T*":
            self.tlm = self.tm = _mul((1, 0, 0, 1, 0, -self.leading), self.tlm)
        elif op in ("Tj", "TJ", "'", '"'):
            if op in ("'", '"'):
                self.tlm = self.tm = _mul((1, 0, 0, 1, 0, -self.leading), self.tlm)
            self.show(args)

    def rect_run(self, text: bytes) -> None:
        # only numbers, "re" and PDF white space (_RECTS): NUL is the one white-space byte
        # bytes.split() does not split at; a number has no "e" (no exponent in PDF)
        values = list(map(float, text.replace(b"\x00", b" ").replace(b"re", b" ").split()))
        self.ops += len(values) // 4
        if self.ops > MAX_OPERATIONS:
            raise _Unsure("too many operations")
        it = iter(values)
        self.rects += [(x, y, x + w, y + h) for x, y, w, h in zip(it, it, it, it, strict=True)]

    def show(self, args: list[Any]) -> None:
        """A text showing operator: a conservative box from the text position."""
        glyphs = 0
        shift = 0.0
        for a in args:
            if isinstance(a, _StringLen):
                glyphs += a.length
                self.strings.append((self.block, self.font, a.raw))
            elif isinstance(a, list):
                for item in a:
                    if isinstance(item, _StringLen):
                        glyphs += item.length
                        self.strings.append((self.block, self.font, item.raw))
                    elif isinstance(item, float):
                        shift += abs(item) / 1000
        size = self.font_size
        width = (2.0 * glyphs + shift) * size + glyphs * (self.spacing["Tc"] + self.spacing["Tw"])
        m = _mul(self.tm, self.ctm)
        self.others.append(_bbox(m, [(-size, -size), (width + size, 2 * size)]))
        self.tm = _mul((1, 0, 0, 1, width, 0), self.tm)

    def paint(self, op: str) -> None:
        if self.path or self.rects:
            if self.path_has_lines or self.fill == "other" or op in _PAINT_STROKE:
                corners = [p for r in self.rects for p in ((r[0], r[1]), (r[2], r[3]))]
                box = _bbox(self.ctm, self.path + corners)
            else:
                box = (0.0, 0.0, 0.0, 0.0)  # rectangles only: each one is kept below
            if op in _PAINT_STROKE:
                pad = self.line_width * max(abs(self.ctm[0]), abs(self.ctm[3])) + 1
                self.others.append((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
            if op in _PAINT_FILL:
                if self.path_has_lines or self.fill == "other":
                    self.others.append(box)
                else:
                    kind = "dark" if self.fill == "black" else "light"
                    a, _, _, d, e, f = self.ctm  # axis-aligned: cm refuses skew
                    boxes = [(a * x0 + e, d * y0 + f, a * x1 + e, d * y1 + f)
                             for x0, y0, x1, y1 in self.rects]  # fmt: skip
                    if a < 0 or d < 0 or any(b[2] < b[0] or b[3] < b[1] for b in boxes):
                        boxes = [(min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]),
                                  max(b[1], b[3])) for b in boxes]  # fmt: skip
                    self.rect_fills += [(kind, b) for b in boxes]
                    if len(self.rect_fills) > MAX_RECTS:
                        raise _Unsure("too many rectangles")
        self.path = []
        self.rects = []
        self.path_has_lines = False


class _StringLen:
    __slots__ = ("length", "raw")

    def __init__(self, length: int, raw: bytes) -> None:
        self.length = length
        self.raw = raw


def _string_length(kind: str, text: bytes) -> int:
    if kind == "hex":
        digits = len(text[1:-1].translate(None, b"\x00\t\n\x0c\r "))
        return (digits + 1) // 2
    return len(text) - 2


def _colour(n: list[float]) -> str:
    if n and all(v == 0 for v in n):
        return "black"
    if n and all(v == 1 for v in n):
        return "white"
    return "other"


def _six(n: list[float]) -> tuple[float, ...]:
    if len(n) != 6:
        raise _Unsure("matrix")
    return tuple(n)


def _four(n: list[float]) -> tuple[float, float, float, float]:
    if len(n) != 4:
        raise _Unsure("rectangle")
    return n[0], n[1], n[2], n[3]


def _two(n: list[float]) -> tuple[float, float]:
    if len(n) != 2:
        raise _Unsure("point")
    return n[0], n[1]


def qr_from_drawing(
    content: bytes, media_box: Box, annotation_rects: Sequence[Box], *, fonts_ok: bool = True,
    to_unicode: Mapping[str, Mapping[bytes, str]] | None = None,
) -> VectorQr | None:
    """The QR code drawn as vectors on the page (content streams joined), or None.

    ``fonts_ok`` is False when a font of the page is a type 3 font (its
    glyphs are drawings this reader does not follow).
    """
    if not fonts_ok:
        return None
    try:
        return _read(content, media_box, annotation_rects, to_unicode)
    except (_Unsure, ValueError, OverflowError, ZeroDivisionError, IndexError):
        return None


def _text(it: _Interpreter, to_unicode: Mapping[str, Mapping[bytes, str]] | None) -> str | None:
    """The strings shown, decoded with their fonts' ToUnicode maps (2-byte Identity-H codes);
    one line per text object. None when a string or font is not one of those."""
    if to_unicode is None:
        return None
    lines: list[str] = []
    block = -1
    for number, font, raw in it.strings:
        cmap = to_unicode.get(font or "")
        if cmap is None or not raw.startswith(b"<"):
            return None
        codes = bytes.fromhex(raw[1:-1].decode("ascii"))
        if len(codes) % 2:
            return None
        chars = [cmap.get(codes[i : i + 2]) for i in range(0, len(codes), 2)]
        if None in chars:
            return None
        if number != block:
            lines.append("")
            block = number
        lines[-1] += "".join(chars)  # type: ignore[arg-type]
    return "\n".join(lines)


def _read(
    content: bytes, media_box: Box, annotation_rects: Sequence[Box],
    to_unicode: Mapping[str, Mapping[bytes, str]] | None = None,
) -> VectorQr | None:
    it = _Interpreter()
    it.run(content)
    dark = [box for kind, box in it.rect_fills if kind == "dark" and box[2] > box[0] and box[3] > box[1]]
    if not dark:
        return None
    xs0, ys0, xs1, ys1 = zip(*dark, strict=True)
    x0, y0, x1, y1 = min(xs0), min(ys0), max(xs1), max(ys1)
    module = min(min(map(operator.sub, xs1, xs0)), min(map(operator.sub, ys1, ys0)))
    if module <= 0:
        return None
    n = round((x1 - x0) / module)
    if abs((x1 - x0) / module - n) > _TOLERANCE or abs((y1 - y0) / module - n) > _TOLERANCE:
        return None
    if not 21 <= n <= 177 or (n - 17) % 4:
        return None
    quiet = QUIET_ZONE * module
    region = (x0 - quiet, y0 - quiet, x1 + quiet, y1 + quiet)
    mb = media_box
    if not (mb[0] <= region[0] and mb[1] <= region[1] and region[2] <= mb[2] and region[3] <= mb[3]):
        return None
    if any(_overlaps(region, box) for box in it.others) or any(
        _overlaps(region, box) for box in annotation_rects
    ):
        return None
    # paint the grid in drawing order; rows from the top (PDF y grows upwards)
    grid = [bytearray(b"\xff" * n) for _ in range(n)]
    rx0, ry0, rx1, ry1 = region
    inv = 1.0 / module
    tol = _TOLERANCE
    dark_runs = [b"\x00" * i for i in range(n + 1)]
    light_runs = [b"\xff" * i for i in range(n + 1)]
    for kind, (bx0, by0, bx1, by1) in it.rect_fills:
        if bx0 >= rx1 or rx0 >= bx1 or by0 >= ry1 or ry0 >= by1:
            continue  # elsewhere on the page
        # module columns and rows (from the top: PDF y grows upwards) it covers
        e0 = (bx0 - x0) * inv
        e1 = (y1 - by1) * inv
        e2 = (bx1 - x0) * inv
        e3 = (y1 - by0) * inv
        c0, r0, c1, r1 = round(e0), round(e1), round(e2), round(e3)
        if abs(e0 - c0) > tol or abs(e1 - r0) > tol or abs(e2 - c1) > tol or abs(e3 - r1) > tol:
            if kind == "light" and bx0 <= x0 and by0 <= y0 and bx1 >= x1 and by1 >= y1:
                grid = [bytearray(b"\xff" * n) for _ in range(n)]  # a background under it all
                continue
            return None
        c0 = 0 if c0 < 0 else n if c0 > n else c0
        c1 = 0 if c1 < 0 else n if c1 > n else c1
        if c1 <= c0:
            continue
        fill = (dark_runs if kind == "dark" else light_runs)[c1 - c0]
        for r in range(0 if r0 < 0 else r0, n if r1 > n else r1):
            grid[r][c0:c1] = fill
    found = _decode(grid, n)
    if found is None:
        return None
    return VectorQr(texts=found.texts, ec_levels=found.ec_levels, modules=n,
                    page_text=_text(it, to_unicode))  # fmt: skip


def _decode(grid: list[bytearray], n: int) -> VectorQr | None:
    import zxingcpp

    width = n + 2 * QUIET_ZONE
    pad = b"\xff" * QUIET_ZONE
    blank = b"\xff" * (width * _SCALE)
    rows = [blank] * (QUIET_ZONE * _SCALE)
    for row in grid:  # each module _SCALE x _SCALE grey pixels (no Pillow: 9 ms of import)
        line = pad + row + pad
        scaled = bytearray(width * _SCALE)
        for i in range(_SCALE):
            scaled[i::_SCALE] = line
        rows.extend([bytes(scaled)] * _SCALE)
    rows.extend([blank] * (QUIET_ZONE * _SCALE))
    side = width * _SCALE
    image = memoryview(b"".join(rows)).cast("B", (side, side))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode))
    if len(found) != 1 or not found[0].valid:
        return None
    return VectorQr(texts=(found[0].text,), ec_levels=(str(found[0].ec_level),), modules=n)


def page_qr(data: bytes) -> VectorQr | None:
    """:func:`qr_from_drawing` for page 1 of a PDF (bytes); None when unsure or unreadable.

    Call it after :func:`verifier.pdf.budget.page_work_problem` found the page
    within bounds (it decodes the same streams).
    """
    try:
        content, media_box, annots, fonts_ok, cmaps, appearances = _page_drawing(data)
    except Exception:  # untrusted input: pyHanko raises many types
        return None
    found = qr_from_drawing(content, media_box, annots, fonts_ok=fonts_ok, to_unicode=cmaps)
    if found is None or found.page_text is None:
        return found
    # the annotations' appearances (the signature box) are text a reader sees too
    texts = [found.page_text]
    for stream_content, stream_cmaps in appearances:
        it = _Interpreter()
        try:
            it.run(stream_content)
        except (_Unsure, ValueError, OverflowError, ZeroDivisionError, IndexError):
            texts = []
            break
        text = _text(it, stream_cmaps)
        if text is None:
            texts = []
            break
        texts.append(text)
    page_text = "\n".join(texts) if texts else None
    return VectorQr(texts=found.texts, ec_levels=found.ec_levels, modules=found.modules,
                    page_text=page_text)  # fmt: skip


_BFCHAR = re.compile(rb"beginbfchar(.*?)endbfchar", re.DOTALL)
_BFRANGE = re.compile(rb"beginbfrange(.*?)endbfrange", re.DOTALL)
_HEX = re.compile(rb"<([0-9A-Fa-f]*)>")
MAX_CMAP_BYTES = 1_000_000


@functools.lru_cache(maxsize=32)  # every passport embeds the same two font maps
def parse_to_unicode(cmap: bytes) -> dict[bytes, str] | None:
    """A ToUnicode CMap (ISO 32000-1 section 9.10.3) for 2-byte codes; None if not that.

    The result is shared between calls (cached): read it, never change it.
    """
    if len(cmap) > MAX_CMAP_BYTES:
        return None
    out: dict[bytes, str] = {}
    for block in _BFCHAR.findall(cmap):
        items = _HEX.findall(block)
        if len(items) % 2:
            return None
        for src, dst in zip(items[0::2], items[1::2], strict=True):
            out[bytes.fromhex(src.decode())] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in _BFRANGE.findall(cmap):
        if b"[" in block:
            return None
        items = _HEX.findall(block)
        if len(items) % 3:
            return None
        for lo, hi, dst in zip(items[0::3], items[1::3], items[2::3], strict=True):
            a, b = int(lo, 16), int(hi, 16)
            first = int.from_bytes(bytes.fromhex(dst.decode()), "big")
            if b < a or b - a > 0xFFFF or len(lo) != 4:
                return None
            for i in range(b - a + 1):
                out[(a + i).to_bytes(2, "big")] = chr(first + i)
    if any(len(k) != 2 for k in out):
        return None
    return out


Cmaps = dict[str, dict[bytes, str]]


def _font_cmaps(resources: Any) -> Cmaps | None:
    """ToUnicode maps of a resource dictionary's fonts; None unless all are Identity-H + ToUnicode."""
    from pyhanko.pdf_utils import generic

    from verifier.pdf.budget import _dict

    cmaps: Cmaps = {}
    for name, ref in list(_dict(_dict(resources).get("/Font")).items())[:100]:
        font = _dict(ref)
        to_unicode = font.get("/ToUnicode")
        to_unicode = to_unicode.get_object() if to_unicode is not None else None
        parsed = None
        if (font.get("/Subtype") == "/Type0" and font.get("/Encoding") == "/Identity-H"
                and isinstance(to_unicode, generic.StreamObject)):  # fmt: skip
            parsed = parse_to_unicode(to_unicode.data)
        if parsed is None:
            return None
        cmaps[str(name)] = parsed
    return cmaps


def _page_drawing(
    data: bytes,
) -> tuple[bytes, Box, list[Box], bool, Cmaps | None, list[tuple[bytes, Cmaps | None]]]:
    from pyhanko.pdf_utils import generic

    from verifier.pdf.budget import _array, _dict, _first_page, _inherited, _streams, reader_for

    reader = reader_for(data)
    if reader.encrypted:
        raise _Unsure("encrypted")
    page = _first_page(reader.root["/Pages"].get_object())
    content = b"\n".join(s.data for s in _streams(page.get("/Contents")))
    box = [float(v) for v in _array(_inherited(page, "/MediaBox"))]
    crop = _inherited(page, "/CropBox")
    if crop is not None:
        c = [float(v) for v in _array(crop)]
        box = [max(box[0], c[0]), max(box[1], c[1]), min(box[2], c[2]), min(box[3], c[3])]
    resources = _inherited(page, "/Resources")
    annots: list[Box] = []
    appearances: list[tuple[bytes, Cmaps | None]] = []
    for annot in _array(page.get("/Annots"))[:1000]:
        annot = annot.get_object()
        if not isinstance(annot, generic.DictionaryObject):
            continue
        if "/Rect" not in annot:
            raise _Unsure("annotation without a rectangle")
        r = [float(v) for v in _array(annot["/Rect"])]
        annots.append((min(r[0], r[2]), min(r[1], r[3]), max(r[0], r[2]), max(r[1], r[3])))
        normal = _dict(annot.get("/AP")).get("/N")
        normal = normal.get_object() if normal is not None else None
        if isinstance(normal, generic.StreamObject):
            appearances.append((normal.data, _font_cmaps(normal.get("/Resources", resources))))
        elif normal is not None:
            appearances.append((b"", None))  # appearance states: the text comes from pdftotext
    fonts = _dict(_dict(resources).get("/Font"))
    fonts_ok = all(_dict(f).get("/Subtype") != "/Type3" for f in list(fonts.values())[:100])
    return (content, (box[0], box[1], box[2], box[3]), annots, fonts_ok, _font_cmaps(resources),
            appearances)  # fmt: skip
