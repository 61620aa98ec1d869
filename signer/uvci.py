"""Unique Vaccination Certificate Identifiers (UVCI) with their checksum.

    >>> from signer.uvci import checksum_char, is_valid_uvci, new_uvci
    >>> checksum_char("URN:UVCI:01:NL:187/37512422923")
    'Z'
    >>> is_valid_uvci("URN:UVCI:01:NL:187/37512422923#Z")
    True
    >>> uvci = new_uvci()                       # random opaque part, e.g.
    >>> uvci.startswith("URN:UVCI:01:VN:") and is_valid_uvci(uvci)
    True

Format (eHealth Network, "Guidelines on verifiable vaccination certificates
- basic interoperability elements", Annex 2): ``URN:UVCI:`` + version ``01``
+ ``:`` + issuing country + ``:`` + an opaque unique string + ``#`` + one
checksum character. The checksum is ISO 7812-1 Luhn extended to mod N over
the alphabet ``A-Z 0-9 / :`` (N = 38), computed over the whole string before
``#``, ``URN:UVCI:`` prefix included (schema FAQ "UVCI checksum"; the FAQ's
example ``URN:UVCI:01:NL:187/37512422923#Z`` is a test case here).

Our opaque part is random (``secrets``): 24 characters from a 32-letter
upper-case alphanumeric alphabet (120 random bits), so identifiers never collide in practice and reveal nothing about
the person, the health centre or the issuance order.
"""

from __future__ import annotations

import re
import secrets

from verifier.errors import InputError
from verifier.uvci import LUHN_ALPHABET, checksum_char, is_valid_uvci, with_checksum, with_checksums

__all__ = [
    "LUHN_ALPHABET",
    "check_country",
    "checksum_char",
    "is_valid_uvci",
    "new_uvci",
    "new_uvcis",
    "with_checksum",
]

UVCI_PREFIX = "URN:UVCI:"
UVCI_VERSION = "01"
#: Alphabet of the random opaque part: 32 upper-case alphanumerics (no 0/O,
#: 1/I, so that a UVCI read aloud or typed is unambiguous). 32 divides 256,
#: so mapping each random byte to ``alphabet[byte % 32]`` is unbiased.
OPAQUE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: 24 characters x 5 bits = 120 random bits.
OPAQUE_LENGTH = 24
_OPAQUE_TABLE = bytes(ord(OPAQUE_ALPHABET[i % 32]) for i in range(256))
#: certificate_id maxLength in the DCC schema 1.3.x.
MAX_LENGTH = 80

_COUNTRY = re.compile(r"[A-Z]{2}")
#: Countries already found well-formed (new_uvci runs once per certificate).
_CHECKED_COUNTRIES: set[str] = set()


def check_country(country: str) -> None:
    """Raise :class:`InputError` unless ``country`` can head a UVCI (ISO 3166-1 alpha-2)."""
    if country not in _CHECKED_COUNTRIES:
        if not _COUNTRY.fullmatch(country):
            raise InputError(f"UVCI country must be ISO 3166-1 alpha-2, got {country!r}")
        _CHECKED_COUNTRIES.add(country)


def new_uvci(country: str = "VN") -> str:
    """A fresh random UVCI: ``URN:UVCI:01:<country>:<opaque>#<check>``."""
    return new_uvcis(1, country)[0]


def new_uvcis(count: int, country: str = "VN") -> list[str]:
    """``count`` fresh random UVCIs (as :func:`new_uvci`), with the random
    bytes of all of them drawn and mapped to letters in one call."""
    check_country(country)
    head = f"{UVCI_PREFIX}{UVCI_VERSION}:{country}:"
    if len(head) + OPAQUE_LENGTH + 2 > MAX_LENGTH:
        raise InputError(f"UVCI longer than {MAX_LENGTH} characters")
    letters = secrets.token_bytes(OPAQUE_LENGTH * count).translate(_OPAQUE_TABLE)
    return with_checksums(head, letters, OPAQUE_LENGTH)
