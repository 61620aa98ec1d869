"""Person names for the DCC ``nam`` group: split, keep as written, transliterate.

    >>> from signer.names import person_name, icao_transliterate
    >>> person_name("Nguyễn Thị Thanh Hương", nationality="VN").to_dcc()
    {'fn': 'Nguyễn', 'gn': 'Thị Thanh Hương', 'fnt': 'NGUYEN', 'gnt': 'THI<THANH<HUONG'}
    >>> person_name("John Michael Smith", nationality="GB").to_dcc()["fnt"]
    'SMITH'
    >>> person_name("Smith, John Michael", nationality="GB").to_dcc()["gnt"]
    'JOHN<MICHAEL'
    >>> icao_transliterate("Đặng Văn Đức")
    'DANG<VAN<DUC'

**Which part is the family name** (``fn``):

1. A comma splits explicitly: ``"Family, Given names"`` (any nationality;
   use it whenever the default rule would be wrong, e.g. for a foreigner
   whose passport lists the surname separately).
2. Otherwise, for nationalities that write the family name first (``VN``
   and the others in :data:`FAMILY_NAME_FIRST`), the first word is the
   family name and the rest are the given names: "Nguyễn Thị Thanh Hương"
   -> fn "Nguyễn", gn "Thị Thanh Hương" (Vietnamese middle names such as
   "Thị"/"Văn" belong to the given names, as on Vietnamese passports).
3. Otherwise (given names first, e.g. "John Michael Smith"), the last word
   is the family name.

A single word is a family name with no given name (``gn``/``gnt`` omitted).

``fn``/``gn`` keep the name as written (Unicode NFC, whitespace collapsed).
``fnt``/``gnt`` follow ICAO Doc 9303 Part 3, section 6 (as the DCC schema
asks): diacritics dropped (Vietnamese ``Ơ``/``Ư`` -> ``O``/``U``), ``Đ`` -> ``D``,
the multi-letter ICAO transliterations (``Ä`` -> ``AE``, ``ß`` -> ``SS``,
``Þ`` -> ``TH``, ...), the ICAO Cyrillic table, spaces and hyphens -> ``<``,
other punctuation (apostrophes, dots) dropped; only ``A-Z`` and ``<``,
at most 80 characters (schema ``maxLength``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from verifier.errors import InputError

#: Nationalities whose names are written family name first.
FAMILY_NAME_FIRST = frozenset({"VN", "CN", "TW", "HK", "MO", "JP", "KR", "KP", "KH", "HU"})

#: DCC schema 1.3.x: fn, fnt, gn, gnt have maxLength 80.
MAX_NAME = 80

# ICAO 9303 Part 3, 6.A: Latin letters that do not reduce to A-Z by removing
# marks (the "recommended" column).
_LATIN_SPECIAL = {
    "Ä": "AE", "Å": "AA", "Æ": "AE", "Ĳ": "IJ", "Ö": "OE", "Ø": "OE", "Œ": "OE",
    "Ü": "UE", "ß": "SS", "Þ": "TH", "Ð": "D", "Đ": "D", "Ħ": "H", "Ł": "L",
    "Ŀ": "L", "Ŋ": "N", "Ŧ": "T", "ı": "I", "ĸ": "K",
}  # fmt: skip

# ICAO 9303 Part 3, 6.B: Cyrillic.
_CYRILLIC = {
    "А": "A", "Б": "B", "В": "V", "Г": "G", "Д": "D", "Е": "E", "Ё": "E", "Ж": "ZH",
    "З": "Z", "И": "I", "Й": "I", "К": "K", "Л": "L", "М": "M", "Н": "N", "О": "O",
    "П": "P", "Р": "R", "С": "S", "Т": "T", "У": "U", "Ф": "F", "Х": "KH", "Ц": "TS",
    "Ч": "CH", "Ш": "SH", "Щ": "SHCH", "Ъ": "IE", "Ы": "Y", "Ь": "", "Э": "E",
    "Ю": "IU", "Я": "IA", "І": "I", "Ї": "I", "Є": "IE", "Ґ": "G", "Ў": "U",
}  # fmt: skip

_SPECIAL = {**_LATIN_SPECIAL, **_CYRILLIC}
_SEPARATORS = re.compile(r"[\s\-‐‑–—_]+")
_NOT_ICAO = re.compile(r"[^A-Z<]+")
_FILLERS = re.compile(r"<{2,}")
#: Characters no name holds: C0/C1 controls, bidirectional overrides and
#: isolates (they make a verifier display the name reordered) and lone
#: surrogates (whitespace is collapsed by :func:`split_full_name`).
_UNPRINTABLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


@dataclass(frozen=True)
class PersonName:
    """The DCC ``nam`` group (schema ``person_name``)."""

    fn: str
    gn: str
    fnt: str
    gnt: str

    def to_dcc(self) -> dict[str, str]:
        """The ``nam`` object; empty parts are left out."""
        if self.gn:  # keys in CBOR canonical order (length first)
            return {"fn": self.fn, "gn": self.gn, "fnt": self.fnt, "gnt": self.gnt}
        return {"fn": self.fn, "fnt": self.fnt}


@lru_cache(maxsize=65536)
def _word(word: str) -> str:
    """Transliterate one word (no separators) to ``A-Z`` (cached: names repeat)."""
    upper = word.upper()
    if any(ch in _SPECIAL for ch in upper):
        upper = "".join(_SPECIAL.get(ch, ch) for ch in upper)
    decomposed = unicodedata.normalize("NFKD", upper)
    letters = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NOT_ICAO.sub("", letters.upper())


@lru_cache(maxsize=65536)
def icao_transliterate(text: str, *, max_length: int = MAX_NAME) -> str:
    """ICAO 9303 machine-readable form: ``A-Z`` and ``<`` only.

    Words are joined by ``<``; apostrophes and other punctuation vanish
    ("O'Neil" -> "ONEIL"); the result is cut at ``max_length``. Cached:
    family names and given-name sequences repeat a lot.
    """
    words = [_word(w) for w in _SEPARATORS.split(unicodedata.normalize("NFC", text))]
    joined = "<".join(w for w in words if w)
    return _FILLERS.sub("<", joined).strip("<")[:max_length].rstrip("<")


def split_full_name(full_name: str, nationality: str = "VN") -> tuple[str, str]:
    """(family name, given names) as written, per the rules in the module doc."""
    text = " ".join(unicodedata.normalize("NFC", full_name).split())
    if "," in text:
        family, _, given = text.partition(",")
        return family.strip(), " ".join(given.replace(",", " ").split())
    words = text.split(" ")
    if len(words) == 1:
        return text, ""
    if nationality.upper() in FAMILY_NAME_FIRST:
        return words[0], " ".join(words[1:])
    return words[-1], " ".join(words[:-1])


def person_name(full_name: str, *, nationality: str = "VN") -> PersonName:
    """Build the DCC name group; raises :class:`InputError` for an unusable name."""
    return PersonName(*_name_parts(full_name, nationality))


def name_group(full_name: str, *, nationality: str = "VN") -> dict[str, str]:
    """``person_name(full_name, nationality=...).to_dcc()``, without the dataclass
    (the signer's hot path)."""
    fn, gn, fnt, gnt = _name_parts(full_name, nationality)
    if gn:  # keys in CBOR canonical order (length first), as PersonName.to_dcc
        return {"fn": fn, "gn": gn, "fnt": fnt, "gnt": gnt}
    return {"fn": fn, "fnt": fnt}


def _name_parts(full_name: str, nationality: str) -> tuple[str, str, str, str]:
    """(fn, gn, fnt, gnt); raises :class:`InputError` for an unusable name."""
    if not full_name.isprintable() and _UNPRINTABLE.search(full_name):
        # control characters or lone surrogates (JSON "\ud800"): not a name,
        # and a surrogate cannot even be encoded into the CBOR payload
        raise InputError("full name holds control or invalid characters")
    family, given = split_full_name(full_name, nationality)
    if not family:
        raise InputError("full name is empty")
    if len(family) > MAX_NAME:
        raise InputError(f"family name longer than {MAX_NAME} characters")
    if len(given) > MAX_NAME:
        raise InputError(f"given names longer than {MAX_NAME} characters")
    fnt = icao_transliterate(family)
    gnt = icao_transliterate(given) if given else ""
    if not fnt:
        raise InputError("family name has no letters ICAO 9303 can transliterate")
    if given and not gnt:
        raise InputError("given names have no letters ICAO 9303 can transliterate")
    return family, given, fnt, gnt
