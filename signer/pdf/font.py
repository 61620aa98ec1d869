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

import base64
import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

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

    def __post_init__(self) -> None:
        # per character: its hex glyph id (for str.translate) and its advance
        object.__setattr__(self, "_hex", {cp: f"{gid:04X}" for cp, gid in self.glyph_ids.items()})
        object.__setattr__(self, "_advance", _Advances({chr(cp): w for cp, w in self.widths.items()}))

    def hex_text(self, text: str) -> str:
        """Text as the hex digits of its Identity-H glyph ids (4 per character)."""
        digits = text.translate(self._hex)  # type: ignore[attr-defined]
        if len(digits) != 4 * len(text):  # a character without a glyph was left as itself
            ch = next(ch for ch in text if ord(ch) not in self.glyph_ids)
            raise InputError(f"character U+{ord(ch):04X} is not in the passport font repertoire")
        return digits

    def encode(self, text: str) -> bytes:
        """Text as an Identity-H hex string operand: ``<0041...>``."""
        return b"<" + self.hex_text(text).encode() + b">"

    def width(self, text: str, size: float) -> float:
        """Advance width of ``text`` in points."""
        return sum(map(self._advance.__getitem__, text)) * size / 1000.0  # type: ignore[attr-defined]

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


class _Advances(dict[str, int]):
    """Character -> advance in 1/1000 em; 600 (the /DW) for one the font lacks."""

    def __missing__(self, ch: str) -> int:
        return 600


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


#: Bumped when what :func:`subset_font` makes changes (invalidates the file cache).
_CACHE_FORMAT = 2  # 2: the subset keeps the source font's timestamp


def font_cache_dir() -> Path | None:
    """Where subset fonts are kept between processes: ``$VNDCC_FONT_CACHE``
    (empty: no cache), else ``$XDG_CACHE_HOME/vn-dcc/fonts`` or ``~/.cache/vn-dcc/fonts``."""
    chosen = os.environ.get("VNDCC_FONT_CACHE")
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vn-dcc" / "fonts"


@lru_cache(maxsize=8)
def load_font(file_name: str, *, tag: str) -> EmbeddedFont:
    """Subset ``templates/fonts/<file_name>`` to :data:`REPERTOIRE` (cached per process,
    and on disk between processes: :func:`font_cache_dir`).

    Subsetting needs ``fontTools.subset``, whose import and run cost about
    0.3 s per process start; a later process with the same font file, the
    same repertoire and the same fontTools version reads the result (the
    subset font and its metrics, checked by SHA-256) instead. A cache that
    cannot be read or written is ignored.
    """
    try:
        raw = resources.files("templates").joinpath("fonts", file_name).read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot load font templates/fonts/{file_name}: {err}") from None
    import fontTools  # the package alone (its version): the subsetter only on a cache miss

    key = hashlib.sha256(
        repr((_CACHE_FORMAT, fontTools.version, sorted(REPERTOIRE), file_name)).encode() + raw
    ).hexdigest()[:32]
    folder = font_cache_dir()
    path = folder / f"{key}.json" if folder is not None else None
    font = _read_cached(path, tag) if path is not None else None
    if font is None:
        font = subset_font(raw, file_name, tag=tag)
        if path is not None:
            _write_cached(path, font)
    return font


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else: the cache's glyph table decides
    which letters a signed passport shows, so a file others could write is not used."""
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def _read_cached(path: Path, tag: str) -> EmbeddedFont | None:
    """The cached font, or None for a missing, damaged, foreign or loosely protected entry.
    The SHA-256 catches damage; ownership and modes (:func:`_private`, of the folder and of
    the file, opened without following a link) keep out other users' writes."""
    try:
        if not _private(os.stat(path.parent)):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            if not _private(os.fstat(fh.fileno())):
                return None
            entry = json.loads(fh.read(4 * 1024 * 1024))
        if not isinstance(entry, dict) or _entry_digest(entry) != entry["sha256"]:
            return None
        if not isinstance(entry["ps_name"], str) or not _PS_NAME.fullmatch(entry["ps_name"]):
            return None  # it goes into /BaseFont: a PDF name of plain characters only
        font_file = base64.b64decode(entry["font_file"], validate=True)
        bbox = tuple(int(v) for v in entry["bbox"])
        if len(bbox) != 4:
            return None
        return EmbeddedFont(
            base_name=f"{tag}+{entry['ps_name']}",
            glyph_ids={int(cp): int(gid) for cp, gid in entry["glyph_ids"]},
            widths={int(cp): int(w) for cp, w in entry["widths"]},
            ascent=int(entry["ascent"]),
            descent=int(entry["descent"]),
            cap_height=int(entry["cap_height"]),
            bbox=(bbox[0], bbox[1], bbox[2], bbox[3]),
            font_file=font_file,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None


#: A PostScript font name as it may appear in a PDF name object (the subset's own are).
_PS_NAME = re.compile(r"[A-Za-z0-9_.-]{1,63}")


def _entry_digest(entry: dict[str, Any]) -> str:
    """SHA-256 of a cache entry's fields (all but its own ``sha256``): a damaged entry is not used."""
    fields = {k: v for k, v in entry.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def _write_cached(path: Path, font: EmbeddedFont) -> None:
    entry = {
        "ps_name": font.base_name.split("+", 1)[1],
        "glyph_ids": sorted(font.glyph_ids.items()),
        "widths": sorted(font.widths.items()),
        "ascent": font.ascent,
        "descent": font.descent,
        "cap_height": font.cap_height,
        "bbox": list(font.bbox),
        "font_file": base64.b64encode(font.font_file).decode("ascii"),
    }
    entry["sha256"] = _entry_digest(entry)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private(os.stat(path.parent)):
            return  # a folder others can write to is not used (nor written to)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            json.dump(entry, fh)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def subset_font(raw: bytes, file_name: str, *, tag: str) -> EmbeddedFont:
    """Subset the TrueType font ``raw`` (``templates/fonts/<file_name>``) to :data:`REPERTOIRE`."""
    from fontTools import subset  # imported lazily: only the signer needs it
    from fontTools.ttLib import TTFont

    try:
        # the source font's own timestamp, not the time of this run: the same subset in
        # every process, so the same PDF bytes (and the file cache's entries) for the same input
        font = TTFont(io.BytesIO(raw), recalcTimestamp=False)
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
    # Tables the subsetter drops anyway are removed before it runs: left in,
    # it decompiles GSUB/GPOS first (0.1 s of the 0.15 s per font); the
    # subset font is the same, byte for byte (tests/pdf/test_render.py).
    for table in opts.drop_tables:
        if table in font:
            del font[table]
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
