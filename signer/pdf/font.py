"""An embedded, subset TrueType font for the passport (Type0 / CIDFontType2, Identity-H).

    >>> from signer.pdf.font import load_font
    >>> font = load_font("DejaVuSans.ttf", tag="VNDCCA")   # doctest: +SKIP
    >>> font.encode("Nguyễn")                               # doctest: +SKIP
    b'<...>'

The font is subset once per process to a fixed repertoire (Basic Latin,
Latin-1, Latin Extended-A, Vietnamese: ơ ư and U+1EA0..U+1EF9, some
punctuation), not per document: every passport then shares the same font
objects, so they are written once and copied as bytes (ISO 32000-1 sections
9.7.4 CIDFonts, 9.9 embedded font programs, 9.10.3 ToUnicode CMaps).
"""

from __future__ import annotations

import io
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from verifier.errors import ConfigError, InputError

#: Code points every passport font carries (NFC text only).
REPERTOIRE: frozenset[int] = frozenset(
    set(range(0x20, 0x7F))
    | set(range(0xA0, 0x180))
    | {0x1A0, 0x1A1, 0x1AF, 0x1B0}
    | set(range(0x1EA0, 0x1EFA))
    | {0x2013, 0x2014, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2026, 0x2192}
)


@dataclass(frozen=True)
class EmbeddedFont:
    """A subset font ready to be written into a PDF.

    ``objects(first)`` gives the PDF object bodies numbered from ``first``:
    Type0 font, CIDFont, descriptor, FontFile2 stream, ToUnicode stream.
    """

    base_name: str
    glyph_ids: Mapping[int, int]
    widths: Mapping[int, int]  # code point -> advance in 1/1000 em
    ascent: int
    descent: int
    cap_height: int
    bbox: tuple[int, int, int, int]
    font_file: bytes  # the subset TrueType program
    flags: int = 32  # nonsymbolic

    def encode(self, text: str) -> bytes:
        """Text as an Identity-H hex string operand: ``<0041...>``."""
        gids = self.glyph_ids
        try:
            return b"<" + "".join(f"{gids[ord(ch)]:04X}" for ch in text).encode() + b">"
        except KeyError as err:
            ch = chr(err.args[0]) if isinstance(err.args[0], int) else "?"
            raise InputError(
                f"character U+{ord(ch):04X} is not in the passport font repertoire"
            ) from None

    def width(self, text: str, size: float) -> float:
        """Advance width of ``text`` in points."""
        w = self.widths
        return sum(w.get(ord(ch), 600) for ch in text) * size / 1000.0

    def supports(self, text: str) -> bool:
        return all(ord(ch) in self.glyph_ids for ch in text)

    def objects(self, first: int) -> list[bytes]:
        """PDF object bodies (without ``n 0 obj``) for objects first..first+4."""
        _type0, cid, desc, file_, tounicode = range(first, first + 5)
        name = self.base_name.encode("ascii")
        by_gid = sorted((gid, cp) for cp, gid in self.glyph_ids.items())
        w_entries = _w_array([(gid, self.widths[cp]) for gid, cp in by_gid])
        flate = zlib.compress(self.font_file, 9)
        cmap = _to_unicode_cmap(by_gid)
        return [
            b"<< /Type /Font /Subtype /Type0 /BaseFont /" + name
            + b" /Encoding /Identity-H /DescendantFonts [" + f"{cid} 0 R".encode()
            + b"] /ToUnicode " + f"{tounicode} 0 R".encode() + b" >>",
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /" + name
            + b" /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >>"
            + b" /FontDescriptor " + f"{desc} 0 R".encode()
            + b" /CIDToGIDMap /Identity /DW 600 /W [" + w_entries.encode() + b"] >>",
            (
                f"<< /Type /FontDescriptor /FontName /{self.base_name} /Flags {self.flags}"
                f" /FontBBox [{' '.join(map(str, self.bbox))}] /ItalicAngle 0"
                f" /Ascent {self.ascent} /Descent {self.descent} /CapHeight {self.cap_height}"
                f" /StemV 80 /FontFile2 {file_} 0 R >>"
            ).encode(),
            f"<< /Length {len(flate)} /Length1 {len(self.font_file)} /Filter /FlateDecode >>\n"
            "stream\n".encode() + flate + b"\nendstream",
            _stream(cmap),
        ]


def _w_array(widths: list[tuple[int, int]]) -> str:
    """CIDFont /W entries (ISO 32000-1 section 9.7.4.3): runs of consecutive CIDs."""
    parts: list[str] = []
    run: list[int] = []
    start = prev = -2
    for gid, width in widths:
        if gid != prev + 1 and run:
            parts.append(f"{start} [{' '.join(map(str, run))}]")
            run = []
        if not run:
            start = gid
        run.append(width)
        prev = gid
    if run:
        parts.append(f"{start} [{' '.join(map(str, run))}]")
    return " ".join(parts)


def _stream(data: bytes) -> bytes:
    flate = zlib.compress(data, 9)
    return (
        f"<< /Length {len(flate)} /Filter /FlateDecode >>\nstream\n".encode()
        + flate
        + b"\nendstream"
    )


def _utf16_hex(cp: int) -> str:
    return chr(cp).encode("utf-16-be").hex().upper()


def _to_unicode_cmap(by_gid: list[tuple[int, int]]) -> bytes:
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    for start in range(0, len(by_gid), 100):
        chunk = by_gid[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines.extend(f"<{gid:04X}> <{_utf16_hex(cp)}>" for gid, cp in chunk)
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


@lru_cache(maxsize=8)
def load_font(file_name: str, *, tag: str) -> EmbeddedFont:
    """Subset ``templates/fonts/<file_name>`` to :data:`REPERTOIRE` (cached per process)."""
    from fontTools import subset  # imported lazily: only the signer needs it
    from fontTools.ttLib import TTFont

    try:
        raw = resources.files("templates").joinpath("fonts", file_name).read_bytes()
        font = TTFont(io.BytesIO(raw))
    except (OSError, ValueError) as err:
        raise ConfigError(f"cannot load font templates/fonts/{file_name}: {err}") from None
    available = set(font.getBestCmap())
    missing = sorted(REPERTOIRE - available)
    if missing:
        raise ConfigError(
            f"font {file_name} lacks {len(missing)} characters of the passport repertoire"
        )
    opts = subset.Options()
    opts.hinting = False
    opts.layout_features = []
    opts.notdef_outline = True
    opts.glyph_names = False
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    opts.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "MATH"]
    subsetter = subset.Subsetter(opts)
    subsetter.populate(unicodes=REPERTOIRE)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    font_file = out.getvalue()
    font = TTFont(io.BytesIO(font_file))
    order = font.getGlyphOrder()
    gid_of = {name: i for i, name in enumerate(order)}
    cmap = font.getBestCmap()
    units = font["head"].unitsPerEm
    hmtx = font["hmtx"]
    scale = 1000.0 / units
    glyph_ids = {cp: gid_of[name] for cp, name in cmap.items() if cp in REPERTOIRE}
    widths = {cp: round(hmtx[cmap[cp]][0] * scale) for cp in glyph_ids}
    head = font["head"]
    os2 = font["OS/2"]
    ps_name = str(font["name"].getDebugName(6) or file_name.rsplit(".", 1)[0])
    return EmbeddedFont(
        base_name=f"{tag}+{ps_name}",
        glyph_ids=glyph_ids,
        widths=widths,
        ascent=round(font["hhea"].ascent * scale),
        descent=round(font["hhea"].descent * scale),
        cap_height=round(getattr(os2, "sCapHeight", 700) * scale),
        bbox=(
            round(head.xMin * scale),
            round(head.yMin * scale),
            round(head.xMax * scale),
            round(head.yMax * scale),
        ),
        font_file=font_file,
    )


def nfc(text: str) -> str:
    """Unicode NFC: Vietnamese letters as the precomposed code points the font carries."""
    return unicodedata.normalize("NFC", text)
