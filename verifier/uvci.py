"""UVCI check character (Luhn mod N), shared by the signer, the PKI and verifiers.

    >>> from verifier.uvci import checksum_char, is_valid_uvci
    >>> checksum_char("URN:UVCI:01:NL:187/37512422923")
    'Z'
    >>> is_valid_uvci("URN:UVCI:01:NL:187/37512422923#Z")
    True

eHealth Network "Guidelines on verifiable vaccination certificates - basic
interoperability elements", Annex 2: ISO 7812-1 Luhn extended to mod N over
the alphabet ``A-Z 0-9 / :`` (N = 38), computed over the whole string before
``#``, ``URN:UVCI:`` prefix included. Issuing UVCIs is :mod:`signer.uvci`.
"""

from __future__ import annotations

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


def checksum_char(text: str) -> str:
    """Luhn mod N check character over ``text`` (the UVCI without ``#c``).

    Raises :class:`InputError` if ``text`` holds a character outside
    :data:`LUHN_ALPHABET`.
    """
    return LUHN_ALPHABET[-_luhn_total(text) % _N]


def _luhn_total(text: str) -> int:
    """Sum of the Luhn mod N addends of ``text``, whose last character has factor 2."""
    # From the right: the last character gets factor 2, then 1, 2, 1, ...
    # Fast path: per-character addends by bytes.translate, summed in C.
    if text.isascii():
        raw = text.encode("ascii")
        factor2 = raw[-1::-2].translate(_ADD2_TABLE)
        factor1 = raw[-2::-2].translate(_ADD1_TABLE)
        if _NOT_IN_ALPHABET not in factor2 and _NOT_IN_ALPHABET not in factor1:
            return sum(factor2) + sum(factor1)
    try:
        return sum(map(_ADD2.__getitem__, text[-1::-2])) + sum(map(_ADD1.__getitem__, text[-2::-2]))
    except KeyError as err:
        raise InputError(f"UVCI contains {err.args[0]!r}, not allowed in a checksum") from None


def with_checksum(text: str) -> str:
    """``text`` + ``#`` + its check character."""
    return f"{text}#{checksum_char(text)}"


def with_checksums(head: str, parts: bytes, part_length: int) -> list[str]:
    """``[with_checksum(head + part) for part in parts]`` for ``parts``: the
    concatenation of ASCII strings of one even ``part_length``, all from
    :data:`LUHN_ALPHABET` (for issuing UVCIs in batches; others raise
    :class:`InputError`).

    With parts of even length the factor of each character (2 for the last,
    then 1, 2, ...) depends only on its parity in ``parts``, and ``head``
    adds the same amount to every sum: the addends of all parts are looked
    up by two ``translate`` calls.
    """
    if part_length < 2 or part_length % 2 or len(parts) % part_length:
        raise InputError("UVCI parts must have one even length")
    factor1 = parts[0::2].translate(_ADD1_TABLE)
    factor2 = parts[1::2].translate(_ADD2_TABLE)
    if _NOT_IN_ALPHABET in factor1 or _NOT_IN_ALPHABET in factor2:
        raise InputError("UVCI part holds a character not allowed in a checksum")
    base = _luhn_total(head)  # an even-length part keeps the head's factors as if it were alone
    text = parts.decode("ascii")
    half = part_length // 2
    out = []
    for start in range(0, len(factor1), half):
        total = base + sum(factor1[start : start + half]) + sum(factor2[start : start + half])
        part = text[2 * start : 2 * start + part_length]
        out.append(f"{head}{part}#{LUHN_ALPHABET[-total % _N]}")
    return out


def is_valid_uvci(uvci: str) -> bool:
    """True for a UVCI that ends in ``#`` + a correct check character; never raises."""
    if len(uvci) < 3 or uvci[-2] != "#":
        return False
    body = uvci[:-2]
    if any(ch not in _CODE for ch in body):
        return False
    return checksum_char(body) == uvci[-1]
