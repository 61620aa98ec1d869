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

#: Luhn mod N alphabet of the UVCI guidelines (Annex 2): index = code point.
LUHN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"
_CODE = {c: i for i, c in enumerate(LUHN_ALPHABET)}
_N = len(LUHN_ALPHABET)
# Per-character addends, "digits" summed in base N: factor 1 and factor 2.
_ADD1 = {c: (i // _N) + (i % _N) for c, i in _CODE.items()}
_ADD2 = {c: (2 * i // _N) + (2 * i % _N) for c, i in _CODE.items()}
# The same addends as bytes.translate tables (ASCII byte -> addend, 255 if
# the character is not in the alphabet).
_NOT_IN_ALPHABET = 255
_ADD1_TABLE = bytes(_ADD1.get(chr(b), _NOT_IN_ALPHABET) for b in range(256))
_ADD2_TABLE = bytes(_ADD2.get(chr(b), _NOT_IN_ALPHABET) for b in range(256))

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


def checksum_char(text: str) -> str:
    """Luhn mod N check character over ``text`` (the UVCI without ``#c``).

    Raises :class:`InputError` if ``text`` holds a character outside
    :data:`LUHN_ALPHABET`.
    """
    # From the right: the last character gets factor 2, then 1, 2, 1, ...
    # Fast path: per-character addends by bytes.translate, summed in C.
    if text.isascii():
        raw = text.encode("ascii")
        factor2 = raw[-1::-2].translate(_ADD2_TABLE)
        factor1 = raw[-2::-2].translate(_ADD1_TABLE)
        if _NOT_IN_ALPHABET not in factor2 and _NOT_IN_ALPHABET not in factor1:
            return LUHN_ALPHABET[(_N - (sum(factor2) + sum(factor1)) % _N) % _N]
    try:
        total = sum(map(_ADD2.__getitem__, text[-1::-2])) + sum(
            map(_ADD1.__getitem__, text[-2::-2])
        )
    except KeyError as err:
        raise InputError(f"UVCI contains {err.args[0]!r}, not allowed in a checksum") from None
    return LUHN_ALPHABET[(_N - total % _N) % _N]


def with_checksum(text: str) -> str:
    """``text`` + ``#`` + its check character."""
    return f"{text}#{checksum_char(text)}"


def is_valid_uvci(uvci: str) -> bool:
    """True for a UVCI that ends in ``#`` + a correct check character; never raises."""
    if len(uvci) < 3 or uvci[-2] != "#":
        return False
    body = uvci[:-2]
    if any(ch not in _CODE for ch in body):
        return False
    return checksum_char(body) == uvci[-1]


def new_uvci(country: str = "VN") -> str:
    """A fresh random UVCI: ``URN:UVCI:01:<country>:<opaque>#<check>``."""
    if country not in _CHECKED_COUNTRIES:
        if not _COUNTRY.fullmatch(country):
            raise InputError(f"UVCI country must be ISO 3166-1 alpha-2, got {country!r}")
        _CHECKED_COUNTRIES.add(country)
    opaque = secrets.token_bytes(OPAQUE_LENGTH).translate(_OPAQUE_TABLE).decode("ascii")
    uvci = with_checksum(f"{UVCI_PREFIX}{UVCI_VERSION}:{country}:{opaque}")
    if len(uvci) > MAX_LENGTH:
        raise InputError(f"UVCI longer than {MAX_LENGTH} characters")
    return uvci
