"""UVCI checksum (eHN UVCI guidelines, Annex 2: Luhn mod N) and generation."""

from __future__ import annotations

import re

import pytest

from signer.uvci import (
    LUHN_ALPHABET,
    OPAQUE_ALPHABET,
    STAMP_EPOCH,
    STAMP_LENGTH,
    checksum_char,
    is_valid_uvci,
    new_uvci,
    new_uvcis,
    stamp,
    with_checksum,
)
from verifier.errors import InputError
from verifier.uvci import with_checksums

#: Known-good UVCIs: the DCC schema FAQ example (NL) and UVCIs from the
#: official EU DCC test data (tests/vectors/eu-dcc: AT, DK, FR) whose
#: issuers append the checksum.
KNOWN = [
    "URN:UVCI:01:NL:187/37512422923#Z",
    "URN:UVCI:01:AT:10807843F94AEE0EE5093FBC254BD813#B",
    "URN:UVCI:01:DK:0EF88044F7935DF2B4A938A38C14C97C#C",
    "URN:UVCI:01:FR:GGD81AAH16A0#6",
    "URN:UVCI:01:FR:GGD81AAH16A4#Y",
    "URN:UVCI:01:FR:476R6WUM8B9U#0",
]


@pytest.mark.parametrize("uvci", KNOWN)
def test_known_values(uvci: str) -> None:
    assert checksum_char(uvci[:-2]) == uvci[-1]
    assert is_valid_uvci(uvci)
    assert with_checksum(uvci[:-2]) == uvci


def test_alphabet_is_the_annex_one() -> None:
    assert LUHN_ALPHABET == "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:"


@pytest.mark.parametrize("uvci", KNOWN)
def test_single_substitution_is_detected(uvci: str) -> None:
    body = uvci[:-2]
    for i, ch in enumerate(body):
        for other in "A7:":
            if other != ch:
                assert not is_valid_uvci(body[:i] + other + body[i + 1 :] + uvci[-2:])


def test_adjacent_transposition_is_detected() -> None:
    # Luhn's one blind spot: swapping the first and last code points ("A" and ":").
    body = "URN:UVCI:01:VN:ABCDEFGH23456789"
    good = with_checksum(body)
    for i in range(len(body) - 1):
        if body[i] != body[i + 1] and {body[i], body[i + 1]} != {"A", ":"}:
            swapped = body[:i] + body[i + 1] + body[i] + body[i + 2 :]
            assert not is_valid_uvci(swapped + good[-2:])


@pytest.mark.parametrize("bad", ["", "#", "A#", "URN:UVCI:01:NL:187/37512422923", "URN:uvci:01:NL:1#Z", "X#?"])
def test_malformed_is_invalid(bad: str) -> None:
    assert not is_valid_uvci(bad)


def test_checksum_refuses_foreign_characters() -> None:
    with pytest.raises(InputError):
        checksum_char("URN:UVCI:01:VN:abc")


T = 1780315200  # 2026-06-01T12:00:00Z


def test_new_uvci_format_and_uniqueness() -> None:
    made = {new_uvci(made_at=T) for _ in range(5000)}
    assert len(made) == 5000
    for uvci in list(made)[:200]:
        assert re.fullmatch(r"URN:UVCI:01:VN:[A-Z2-9]{24}#[A-Z0-9/:]", uvci)
        assert is_valid_uvci(uvci)
        assert len(uvci) <= 80
    assert new_uvci("DE", made_at=T).startswith("URN:UVCI:01:DE:")
    with pytest.raises(InputError):
        new_uvci("vn", made_at=T)


def test_batch_uvcis_carry_the_same_check_character_as_one_by_one() -> None:
    for country in ("VN", "NL", "DE"):
        batch = new_uvcis(2000, country, made_at=T)
        assert len(set(batch)) == 2000
        assert all(u.startswith(f"URN:UVCI:01:{country}:") and u[-1] == checksum_char(u[:-2]) for u in batch)
    assert new_uvcis(0, made_at=T) == []
    # the FAQ example split at every even length: the head's parity is handled
    example = "URN:UVCI:01:NL:187/37512422923"
    for tail in (2, 4, 6, 10):
        head, part = example[:-tail], example[-tail:]
        assert with_checksums(head, part.encode() * 3, tail) == [example + "#Z"] * 3


@pytest.mark.parametrize(("parts", "length"), [(b"ab", 2), (b"ABC", 3), (b"ABC", 2), (b"", 0)])
def test_batch_checksum_refuses_bad_parts(parts: bytes, length: int) -> None:
    with pytest.raises(InputError):
        with_checksums("URN:UVCI:01:VN:", parts, length)


def test_the_stamp_orders_uvcis_by_the_second_they_were_made() -> None:
    """The first 6 characters: the second since 2020 in base 32, digits before
    letters (ASCII order), so that a later UVCI sorts after an earlier one
    (the ledger's indexes by UVCI take a batch's new rows side by side)."""
    assert stamp(STAMP_EPOCH) == "222222"
    assert stamp(STAMP_EPOCH + 1) == "222223"
    assert stamp(STAMP_EPOCH + 8) == "22222A"  # past the digits: a letter, which sorts after
    assert stamp(STAMP_EPOCH + 32) == "222232"
    assert stamp(T) == "8356U2" and stamp(T + 0.9) == stamp(T)
    seconds = [STAMP_EPOCH + s for s in (0, 1, 7, 8, 31, 32, 1023, 1024, 10**6, T - STAMP_EPOCH, 2**30 - 1)]
    stamps = [stamp(s) for s in seconds]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(len(x) == STAMP_LENGTH and set(x) <= set(OPAQUE_ALPHABET) for x in stamps)
    # outside 2020-2054: clamped to the ends, never a wrong length
    assert stamp(0) == "222222" and stamp(STAMP_EPOCH + 2**30 + 5) == "ZZZZZZ"
    early, late = new_uvcis(300, made_at=T), new_uvcis(300, made_at=T + 1)
    assert max(early) < min(late)
    assert {u[15:21] for u in early} == {"8356U2"}
    # the rest is random: 18 characters, 90 bits
    assert len({u[21:39] for u in early}) == 300
