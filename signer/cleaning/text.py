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
_PLACE_PREFIX = re.compile(
    r"^(thanh pho|tinh|tp\.?|thi xa|quan|huyen|phuong|xa|thi tran|p\.|x\.|tt\.?)\s+"
)


def name_key(name: str) -> str:
    """NFC, single spaces, case-folded."""
    return " ".join(unicodedata.normalize("NFC", name).split()).casefold()


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
    """Folded place name without its administrative prefix ("Tỉnh", "Phường", ...).

    "Thành phố Hồ Chí Minh", "TP. Hồ Chí Minh" and "ho chi minh" share a key,
    so that the registry's spelling of a commune need not match the export's.
    """
    text = name_fold(name.replace(",", " "))
    return _PLACE_PREFIX.sub("", text, count=1)
