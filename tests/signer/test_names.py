"""Names: family/given split and ICAO 9303 Part 3 transliteration."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signer.names import MAX_NAME, icao_transliterate, person_name, split_full_name
from verifier.errors import InputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Vietnamese: every tone and vowel mark drops; Đ/đ -> D; Ơ/Ư -> O/U
        ("Nguyễn", "NGUYEN"),
        ("Thị Thanh Hương", "THI<THANH<HUONG"),
        ("Đặng Văn Đức", "DANG<VAN<DUC"),
        ("đoàn", "DOAN"),
        ("Dương Thị Ưng", "DUONG<THI<UNG"),
        ("Trịnh Ơn Ấu Ẩm Ẫy Ỵ", "TRINH<ON<AU<AM<AY<Y"),
        ("Huỳnh Ngọc Trâm", "HUYNH<NGOC<TRAM"),
        # decomposed input (NFD) gives the same as NFC
        ("Nguye\u0302\u0303n", "NGUYEN"),
        # ICAO 9303 Part 3 table: multi-letter transliterations
        ("Müller", "MUELLER"),
        ("Øberg", "OEBERG"),
        ("Åsa", "AASA"),
        ("Straße", "STRASSE"),
        ("Þór", "THOR"),
        ("Łukasz", "LUKASZ"),
        # punctuation: hyphen/space -> '<', apostrophe dropped, runs collapse
        ("Jiřina-Maria  Alena", "JIRINA<MARIA<ALENA"),
        ("d'Červenková Panklová", "DCERVENKOVA<PANKLOVA"),
        ("O'Neil", "ONEIL"),
        ("Jr.", "JR"),
        # ICAO Cyrillic table
        ("Иванов", "IVANOV"),
        ("Щукина", "SHCHUKINA"),
    ],
)
def test_icao_transliteration(text: str, expected: str) -> None:
    out = icao_transliterate(text)
    assert out == expected
    assert re.fullmatch(r"[A-Z<]*", out)


def test_transliteration_is_cut_at_80() -> None:
    out = icao_transliterate(" ".join(["Nguyễn"] * 30))
    assert len(out) <= MAX_NAME and not out.endswith("<")


def test_issue_example() -> None:
    name = person_name("Nguyễn Thị Thanh Hương", nationality="VN")
    assert (name.fn, name.gn, name.fnt, name.gnt) == ("Nguyễn", "Thị Thanh Hương", "NGUYEN", "THI<THANH<HUONG")


@pytest.mark.parametrize(
    ("full_name", "nationality", "family", "given"),
    [
        ("Trần Văn Đức", "VN", "Trần", "Văn Đức"),
        ("  Lê   Hoàng  Yến ", "VN", "Lê", "Hoàng Yến"),
        ("John Michael Smith", "GB", "Smith", "John Michael"),
        ("Wang Xiaoming", "CN", "Wang", "Xiaoming"),
        ("Kim Min-jun", "KR", "Kim", "Min-jun"),
        # explicit "Family, Given" wins whatever the nationality
        ("Smith, John Michael", "GB", "Smith", "John Michael"),
        ("van der Berg, Anna", "NL", "van der Berg", "Anna"),
        ("Nguyễn Văn, An", "VN", "Nguyễn Văn", "An"),
        # one word: a family name only
        ("Suharto", "ID", "Suharto", ""),
    ],
)
def test_split(full_name: str, nationality: str, family: str, given: str) -> None:
    assert split_full_name(full_name, nationality) == (family, given)


def test_names_are_nfc() -> None:
    name = person_name("Nguye\u0302\u0303n Va\u0306n An", nationality="VN")
    assert name.fn == "Nguyễn" and name.gn == "Văn An"


def test_mononym_has_no_given_name_fields() -> None:
    assert person_name("Suharto", nationality="ID").to_dcc() == {"fn": "Suharto", "fnt": "SUHARTO"}


@pytest.mark.parametrize("bad", ["", "   ", "Σωκράτης", "王小明"])
def test_unusable_names(bad: str) -> None:
    with pytest.raises(InputError):
        person_name(bad, nationality="VN")


def test_overlong_name() -> None:
    with pytest.raises(InputError, match="longer than 80"):
        person_name("X" * 81 + " An", nationality="VN")


@given(st.text(max_size=120))
def test_transliteration_always_icao_shaped(text: str) -> None:
    out = icao_transliterate(text)
    assert re.fullmatch(r"([A-Z]+(<[A-Z]+)*)?", out)
    assert len(out) <= MAX_NAME


@given(st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ ", min_size=1, max_size=60))
def test_vietnamese_names_never_lose_a_word(text: str) -> None:
    words = text.split()
    out = icao_transliterate(" ".join(words))
    if words and len(out) < MAX_NAME:
        assert out.count("<") == len(words) - 1
