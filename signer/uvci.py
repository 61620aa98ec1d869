"""Unique Vaccination Certificate Identifiers (UVCI) with their checksum.

    >>> from signer.uvci import checksum_char, is_valid_uvci, new_uvci
    >>> checksum_char("URN:UVCI:01:NL:187/37512422923")
    'Z'
    >>> is_valid_uvci("URN:UVCI:01:NL:187/37512422923#Z")
    True
    >>> uvci = new_uvci(made_at=1780315200)     # 2026-06-01: stamp + random part
    >>> uvci.startswith("URN:UVCI:01:VN:8356U2") and is_valid_uvci(uvci)
    True

Format (eHealth Network, "Guidelines on verifiable vaccination certificates
- basic interoperability elements", Annex 2): ``URN:UVCI:`` + version ``01``
+ ``:`` + issuing country + ``:`` + an opaque unique string + ``#`` + one
checksum character. The checksum is ISO 7812-1 Luhn extended to mod N over
the alphabet ``A-Z 0-9 / :`` (N = 38), computed over the whole string before
``#``, ``URN:UVCI:`` prefix included (schema FAQ "UVCI checksum"; the FAQ's
example ``URN:UVCI:01:NL:187/37512422923#Z`` is a test case here).

Our opaque part is 24 characters from a 32-letter upper-case alphanumeric
alphabet: the first 6 say the second it was made (:data:`STAMP_LENGTH`),
the other 18 are random (``secrets``, 90 bits), so identifiers never collide
in practice and reveal nothing about the person or the health centre.

Why the time first (as ULID and UUIDv7 do): the ledger keeps indexes by
UVCI (certificates and their events). With wholly random UVCIs each new
certificate lands on its own page of each index, and once a ledger holds
some 10,000 certificates a batch of 256 rewrites some 1,000 pages at each
commit (measured at 90,000: 72 ms of SQLite a batch, half of it these
indexes). Made in the same second, a batch's UVCIs sit side by side at the
index's end. The second is no secret: the QR's ``iat`` says when it was
signed. A ledger run stamps the time of the reservation (a run that sets
``--at`` backdates ``iat``, not this stamp); a run without the ledger
(``signer sign``) stamps ``iat``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

from verifier.errors import InputError
from verifier.uvci import LUHN_ALPHABET, checksum_char, is_valid_uvci, with_checksum, with_checksums

__all__ = [
    "LUHN_ALPHABET",
    "check_country",
    "checksum_char",
    "is_valid_uvci",
    "new_uvci",
    "new_uvcis",
    "stamp",
    "with_checksum",
]

UVCI_PREFIX = "URN:UVCI:"
UVCI_VERSION = "01"
#: Alphabet of the opaque part: 32 upper-case alphanumerics (no 0/O,
#: 1/I, so that a UVCI read aloud or typed is unambiguous). 32 divides 256,
#: so mapping each random byte to ``alphabet[byte % 32]`` is unbiased.
OPAQUE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
#: 24 characters x 5 bits: the stamp (30 bits) and 90 random bits.
OPAQUE_LENGTH = 24
_OPAQUE_TABLE = bytes(ord(OPAQUE_ALPHABET[i % 32]) for i in range(256))
#: The opaque part's first characters: the second it was made, since
#: :data:`STAMP_EPOCH`, in base 32 with :data:`STAMP_DIGITS` (30 bits: until 2054).
STAMP_LENGTH = 6
#: The alphabet's letters in ASCII order, so that a later stamp sorts after.
STAMP_DIGITS = "".join(sorted(OPAQUE_ALPHABET))
#: 2020-01-01T00:00:00Z (Unix time).
STAMP_EPOCH = 1577836800
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


def stamp(made_at: float) -> str:
    """The first :data:`STAMP_LENGTH` characters of a UVCI made at
    ``made_at`` (Unix time): its second since :data:`STAMP_EPOCH`, base 32.
    Times outside 2020-2054 are clamped to its ends (the stamp orders
    identifiers; it is not read back)."""
    second = min(max(int(made_at) - STAMP_EPOCH, 0), 32**STAMP_LENGTH - 1)
    return "".join(STAMP_DIGITS[(second >> (5 * i)) & 31] for i in reversed(range(STAMP_LENGTH)))


def new_uvci(country: str = "VN", *, made_at: float) -> str:
    """A fresh UVCI: ``URN:UVCI:01:<country>:<stamp><random>#<check>``."""
    return new_uvcis(1, country, made_at=made_at)[0]


def new_uvcis(count: int, country: str = "VN", *, made_at: float) -> list[str]:
    """``count`` fresh UVCIs (as :func:`new_uvci`) made at ``made_at`` (Unix
    time), with the random bytes of all of them drawn and mapped to letters
    in one call."""
    check_country(country)
    head = f"{UVCI_PREFIX}{UVCI_VERSION}:{country}:"
    if len(head) + OPAQUE_LENGTH + 2 > MAX_LENGTH:
        raise InputError(f"UVCI longer than {MAX_LENGTH} characters")
    width = OPAQUE_LENGTH - STAMP_LENGTH
    drawn = secrets.token_bytes(width * count).translate(_OPAQUE_TABLE)
    first = stamp(made_at).encode("ascii")
    letters = b"".join(_stamped(first, drawn, width))
    return with_checksums(head, letters, OPAQUE_LENGTH)


def _stamped(first: bytes, drawn: bytes, width: int) -> Iterator[bytes]:
    for start in range(0, len(drawn), width):
        yield first
        yield drawn[start : start + width]
