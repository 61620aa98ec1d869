"""Suggestions across the registry (issue 9, point 8): name + date of birth + sex anywhere, one-edit IDs, only when unique."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from signer.cleaning.checks import check_record, with_registry
from signer.cleaning.registry import open_registry
from signer.cleaning.run import _suggest, one_edit_apart
from tests.cleaning.test_checks import CLEAN, TODAY

REGISTRY = (
    "Số định danh,Họ và tên,Ngày sinh,Giới tính,Tỉnh/Thành phố,Xã/Phường\n"
    "079185001234,Nguyễn Thị Thanh Hương,1985-03-14,Nữ,Hà Nội,Phường Hàng Bạc\n"  # lives far from where she was vaccinated
    "001062004567,Trần Văn Đức,1962-02-01,Nam,Hà Nội,Phường Hàng Bạc\n"
    "001062009999,Trần Văn Đức,1962-02-01,Nam,Cần Thơ,Phường 2\n"  # a namesake born the same day
    "001162004567,Trần Thị Đức,1962-02-01,Nữ,Hà Nội,Phường Hàng Bạc\n"
    "079185007777,Nguyễn Thị Thanh Lan,1985-03-14,Nữ,Hồ Chí Minh,Phường Bến Nghé\n"
    "079186007777,Nguyễn Thị Thanh Lan,1986-03-14,Nữ,Hồ Chí Minh,Phường Bến Nghé\n"
)


@pytest.fixture()
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "registry.csv"
    path.write_text(REGISTRY, "utf-8")
    with open_registry(str(path), state_dir=tmp_path / "state") as reg:
        yield reg


def _suggestion(registry, **changes: str) -> str:  # type: ignore[no-untyped-def]
    rec = replace(CLEAN, **changes)
    codes = check_record(rec, today=TODAY)
    found = registry.lookup([rec.id_number]).get(rec.id_number) if rec.id_number.isdigit() else None
    if rec.id_number.isdigit() and len(rec.id_number) in (9, 12):
        codes = with_registry(rec, codes, found)
    return _suggest(rec, codes, registry)


def test_found_outside_the_vaccination_commune(registry) -> None:  # type: ignore[no-untyped-def]
    # vaccinated in Hồ Chí Minh City, registered in Hà Nội: the commune-only search missed her
    assert _suggestion(registry, id_number="") == "079185001234"
    assert _suggestion(registry, id_number="N/A") == "079185001234"
    assert _suggestion(registry, id_number="79185001234") == "079185001234"  # the spreadsheet's lost zero
    assert _suggestion(registry, id_number="079185009876") == "079185001234"  # not found, unique person


def test_several_namesakes_one_edit_away_decides(registry) -> None:  # type: ignore[no-untyped-def]
    duc = dict(full_name="Trần Văn Đức", date_of_birth="1962-02-01", sex="M", province="Hà Nội", commune="Xã Khác")
    assert _suggestion(registry, **duc, id_number="") == ""  # two men of that name born that day: no guess
    assert _suggestion(registry, **duc, id_number="001062004576") == "001062004567"  # two digits swapped
    assert _suggestion(registry, **duc, id_number="00106200999") == "001062009999"  # a digit dropped
    # the ID of a woman born that day (another name): the man one digit away
    assert _suggestion(registry, **duc, id_number="001162004567") == "001062004567"  # a woman's ID: one digit off


def test_same_commune_breaks_a_tie(registry) -> None:  # type: ignore[no-untyped-def]
    duc = dict(full_name="Tran Van Duc", date_of_birth="1962", sex="M", province="Thành phố Cần Thơ", commune="Phường 2")
    assert _suggestion(registry, **duc, id_number="") == "001062009999"


@pytest.mark.parametrize(
    ("a", "b", "near"),
    [("001062004567", "001062004568", True), ("001062004576", "001062004567", True),
     ("00106200456", "001062004567", True), ("0010620045677", "001062004567", True),
     ("001062004567", "001062004567", False), ("001062004567", "001062005577", False),
     ("0010620045", "001062004567", False), ("0791850O1234", "079185001234", True)],
)  # fmt: skip
def test_one_edit_apart(a: str, b: str, near: bool) -> None:
    assert one_edit_apart(a, b) is near


def test_a_wrong_name_or_date_alone_is_not_a_wrong_id(registry) -> None:  # type: ignore[no-untyped-def]
    # The ID is known and the registry's person has the record's date of birth and sex: the name is
    # what is wrong, even if someone else has that name and date (3 wrong suggestions in 100,000).
    assert _suggestion(registry, full_name="Nguyễn Thị Thanh Lan") == ""
    # another name and another date: probably someone else's ID
    assert _suggestion(registry, full_name="Nguyễn Thị Thanh Lan", date_of_birth="1986-03-14",
                       id_number="079185001234") == "079186007777"  # fmt: skip
