"""Name and place normalisation for the registry comparison.

    >>> from signer.cleaning.text import name_key, name_fold
    >>> name_key("  NGUYỄN   Thị  hương ")
    'nguyễn thị hương'
    >>> name_fold("Nguyễn Thị Hương") == name_fold("Nguyen Thi Huong")
    True

``name_key`` is the comparison form (Unicode NFC, whitespace collapsed,
case folded): two names with the same key are the same name.
``name_fold`` also drops the diacritics (tone and vowel marks, đ -> d), so
that names equal only after folding are *probable typos* (issue 4, "Name").
Folding uses one ``str.translate`` table built once from the Unicode
decompositions of the Latin letters, which is several times faster than
decomposing every name with ``unicodedata``.
"""

from __future__ import annotations

import re
import unicodedata


def _build_fold_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in list(range(0x00C0, 0x0250)) + list(range(0x1E00, 0x1F00)):
        ch = chr(cp)
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        if base != ch and base.isascii():
            table[cp] = base.casefold()
    for cp in range(0x0300, 0x0370):  # stray combining marks (text that was not NFC)
        table[cp] = None
    table[ord("đ")] = "d"
    table[ord("Đ")] = "d"
    return table


_FOLD = _build_fold_table()
_INVALID_NAME = re.compile(r"[^\w\s'.\-]|[\d_]")
_PROVINCE_PREFIX = re.compile(r"^(thanh pho|tinh|tp\.?)\s*")
_COMMUNE_ABBREV = (
    (re.compile(r"^p\.\s*"), "phuong "),
    (re.compile(r"^x\.\s*"), "xa "),
    (re.compile(r"^tt\.?\s+"), "thi tran "),
)


def name_key(name: str) -> str:
    """NFC, single spaces, case-folded."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


#: a tone mark on the second vowel of a word-final oa/oe/uy ("hoà", "thuỷ"; not after q)
_OLD_STYLE_TONE = re.compile(r"(?<!q)(o(?=[ae])|u(?=y))([aey])([\u0300\u0301\u0303\u0309\u0323])(?!\w)")


def tone_key(name: str) -> str:
    """:func:`name_key` with the tone mark placed the new way: "Hoà" = "Hòa", "Thuỷ" = "Thủy".

    Both placements are correct Vietnamese spelling (the old style puts the
    mark on the second vowel of a final oa/oe/uy), so they are the same name.
    """
    nfd = unicodedata.normalize("NFD", name_key(name))
    return unicodedata.normalize("NFC", _OLD_STYLE_TONE.sub(r"\1\3\2", nfd))


def fold(text: str) -> str:
    """Case-folded and without diacritics (expects NFC input or stray marks)."""
    return text.casefold().translate(_FOLD)


def name_fold(name: str) -> str:
    """:func:`name_key` without diacritics: equal folds = same letters."""
    return " ".join(name.split()).casefold().translate(_FOLD)


def name_is_valid(name: str) -> bool:
    """Letters (any script), spaces, apostrophes, hyphens and dots only."""
    return _INVALID_NAME.search(name) is None


def place_key(name: str) -> str:
    """Folded province name without "Tỉnh"/"Thành phố"/"TP." in front.

    "Thành phố Hồ Chí Minh", "TP. Hồ Chí Minh" and "ho chi minh" share a key,
    so that the registry's spelling need not match the export's.
    """
    return _PROVINCE_PREFIX.sub("", name_fold(name.replace(",", " ")), count=1)


def commune_key(name: str) -> str:
    """Folded commune name, abbreviations spelt out ("P. Bến Nghé" = "Phường Bến Nghé").

    The kind of commune stays in the key: "Xã An Lạc" and "Phường An Lạc"
    are different places.
    """
    text = name_fold(name.replace(",", " "))
    for pattern, full in _COMMUNE_ABBREV:
        text = pattern.sub(full, text, count=1)
    return text
