"""Every reason code of the pure checks, on hand-made records (issue 4 checklist)."""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

from signer.cleaning.checks import (
    RegistryEntry,
    check_record,
    compare_with_registry,
    dates_agree,
    parse_partial_date,
)
from signer.cleaning.tables import load_tables, vaccine_key
from signer.cleaning.text import commune_key, name_fold, name_is_valid, name_key, place_key
from signer.records import Dose, Record

TODAY = dt.date(2026, 6, 1)
AZ1 = Dose("2021-08-02", "AstraZeneca", "ABV5811", 1, 2, "Trạm Y tế Phường Bến Nghé")
AZ2 = Dose("2021-10-25", "AstraZeneca", "ABX1504", 2, 2, "Trạm Y tế Phường Bến Nghé")
PF3 = Dose("2022-03-01", "Pfizer", "FK5618", 3, 3, "Trạm Y tế Phường Bến Nghé")
CLEAN = Record(
    record_id="HCM-1",
    full_name="Nguyễn Thị Thanh Hương",
    date_of_birth="1985-03-14",
    sex="F",
    nationality="VN",
    id_number="079185001234",
    doses=(AZ1, AZ2, PF3),
    province="Thành phố Hồ Chí Minh",
    commune="Phường Bến Nghé",
)
REG = RegistryEntry("079185001234", "Nguyễn Thị Thanh Hương", "1985-03-14", "F", "Hồ Chí Minh", "Phường Bến Nghé")


def codes(rec: Record) -> tuple[str, ...]:
    return check_record(rec, today=TODAY)


def test_clean_record_has_no_code() -> None:
    assert codes(CLEAN) == ()
    assert compare_with_registry(CLEAN, REG) == ()


CASES = {
    "id_missing": dict(id_number=""),
    "id_wrong_length": dict(id_number="79185001234"),  # 11 digits: a spreadsheet dropped the leading 0
    "id_invalid_characters": dict(id_number="0791850O1234"),  # letter O for zero
    "id_separators": dict(id_number="079 185 001234"),
    "cccd_province_unknown": dict(id_number="003185001234"),
    "cccd_sex_mismatch": dict(id_number="079085001234"),  # 0 = male, 1900s
    "cccd_birth_year_mismatch": dict(id_number="079186001234"),
    "passport_format": dict(nationality="US", id_number="AB-12"),
    "name_missing": dict(full_name=""),
    "name_invalid": dict(full_name="Nguyễn Thị Hương2"),
    "sex_missing": dict(sex=""),
    "dob_missing": dict(date_of_birth=""),
    "dob_format": dict(date_of_birth="14/03/1985"),
    "dob_invalid_date": dict(date_of_birth="1985-02-30"),
    "dob_implausible": dict(date_of_birth="1890-03-14", id_number="079190001234"),
    "dob_future": dict(date_of_birth="2027-01-01", doses=()),
    "dose_missing": dict(doses=()),
    "dose_date_invalid": dict(doses=(replace(AZ1, date="2021-13-02"), AZ2)),
    "dose_future": dict(doses=(AZ1, AZ2, replace(PF3, date="2026-06-02"))),
    "dose_before_birth": dict(doses=(replace(AZ1, date="1984-01-01"), AZ2)),
    "dose_order": dict(doses=(replace(AZ1, dose_number=2), replace(AZ2, dose_number=1))),
    "dose_number_exceeds_series": dict(doses=(AZ1, replace(AZ2, dose_number=3))),
    "vaccine_unknown": dict(doses=(AZ1, replace(AZ2, vaccine="Covaxin"))),
    "dose_interval_short": dict(doses=(AZ1, replace(AZ2, date="2021-08-20"))),
}


@pytest.mark.parametrize("code", sorted(CASES))
def test_each_check_has_its_code(code: str) -> None:
    found = codes(replace(CLEAN, **CASES[code]))
    assert code in found, found


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (dict(full_name="NGUYỄN   THỊ THANH   hương"), ()),
        (dict(full_name=unicodedata.normalize("NFD", "Nguyễn Thị Thanh Hương")), ()),
        (dict(full_name="Nguyen Thi Thanh Huong"), ("registry_name_diacritics",)),
        (dict(full_name="Nguyễn Thị Thanh Hường"), ("registry_name_diacritics",)),
        (dict(full_name="Nguyễn Thị Thanh Lan"), ("registry_name_mismatch",)),
        (dict(date_of_birth="1985"), ()),
        (dict(date_of_birth="1985-03"), ()),
        (dict(date_of_birth="1985-04"), ("registry_dob_mismatch",)),
        (dict(date_of_birth="1985-03-15"), ("registry_dob_mismatch",)),
        (dict(sex="M"), ("registry_sex_mismatch",)),
        (dict(sex="X"), ()),
    ],
)
def test_registry_comparison(mutation: dict[str, str], expected: tuple[str, ...]) -> None:
    assert compare_with_registry(replace(CLEAN, **mutation), REG) == expected


@pytest.mark.parametrize(
    ("digit", "sex", "year"),
    [("0", "M", 1985), ("1", "F", 1985), ("2", "M", 2005), ("3", "F", 2005),
     ("4", "M", 2105), ("5", "F", 2105), ("6", "M", 2205), ("7", "F", 2205),
     ("8", "M", 2305), ("9", "F", 2305)],
)  # fmt: skip
def test_cccd_sex_and_century_digit(digit: str, sex: str, year: int) -> None:
    rec = replace(CLEAN, id_number=f"001{digit}{year % 100:02d}004567", sex=sex, date_of_birth=str(year), doses=())
    today = dt.date(year + 1, 1, 1)
    found = check_record(rec, today=today)
    assert "cccd_sex_mismatch" not in found and "cccd_birth_year_mismatch" not in found
    other = "F" if sex == "M" else "M"
    assert "cccd_sex_mismatch" in check_record(replace(rec, sex=other), today=today)
    later = dt.date(year + 101, 1, 1)  # a date of birth in the future has its own code (dob_future) instead
    assert "cccd_birth_year_mismatch" in check_record(replace(rec, date_of_birth=str(year + 100)), today=later)


def test_cmnd_and_passports() -> None:
    assert codes(replace(CLEAN, id_number="023456789")) == ()  # 9-digit CMND: no structure to check
    assert codes(replace(CLEAN, id_number="02345678X")) == ("id_invalid_characters",)
    assert codes(replace(CLEAN, nationality="KR", id_number="M12345678", sex="")) == ()
    assert codes(replace(CLEAN, nationality="KR", id_number="")) == ("id_missing",)


def test_booster_interval_and_heterologous_series() -> None:
    early_booster = replace(PF3, date="2021-12-01")  # 37 days after dose 2 < 90
    assert "dose_interval_short" in codes(replace(CLEAN, doses=(AZ1, AZ2, early_booster)))
    janssen = (Dose("2021-09-01", "Janssen", dose_number=1, series_doses=1),)
    assert codes(replace(CLEAN, doses=janssen)) == ()
    alias = (replace(AZ1, vaccine="Vắc xin AstraZeneca"), replace(AZ2, vaccine="VAXZEVRIA"))
    assert codes(replace(CLEAN, doses=alias)) == ()


def test_dates() -> None:
    assert parse_partial_date("2000-02-29") != "dob_invalid_date"
    assert parse_partial_date("1900-02-29") == "dob_invalid_date"
    assert parse_partial_date("1985-00") == "dob_invalid_date"
    assert parse_partial_date("85") == "dob_format"
    assert dates_agree("1962", "1962-05-03") and not dates_agree("1962-06", "1962-05-03")
    assert not dates_agree("", "1962-05-03")
    assert codes(replace(CLEAN, date_of_birth=TODAY.isoformat(), id_number="079126001234", doses=())) == (
        "cccd_birth_year_mismatch", "dose_missing")  # fmt: skip


def test_text_normalisation() -> None:
    assert name_key("  NGUYỄN  Thị ") == "nguyễn thị"
    assert name_fold("Đặng Văn Đức") == "dang van duc"
    assert name_fold(unicodedata.normalize("NFD", "Hường")) == "huong"
    assert name_is_valid("O'Neil-Smith Jr.") and not name_is_valid("Lan_1")
    assert place_key("Thành phố Hồ Chí Minh") == place_key("TP. Hồ Chí Minh") == "ho chi minh"
    assert place_key("Tỉnh Bà Rịa - Vũng Tàu") == place_key("Bà Rịa - Vũng Tàu")
    assert commune_key("P. Bến Nghé") == commune_key("Phường Bến Nghé") != commune_key("Xã Bến Nghé")
    assert commune_key("TT. Lạc Sơn") == commune_key("Thị trấn Lạc Sơn")


def test_tables() -> None:
    t = load_tables()
    assert len(t.provinces) == 63
    assert t.provinces["001"] == "Hà Nội" and t.provinces["096"] == "Cà Mau" and t.provinces["079"] == "Hồ Chí Minh"
    vaccines = json.loads((Path(__file__).parents[2] / "templates" / "vaccines.json").read_text("utf-8"))
    assert set(vaccines["vaccines"]) <= set(t.intervals)
    assert t.canonical_vaccine("Sinopharm (Vero Cell)") == "Sinopharm"
    assert vaccine_key("Vắc-xin Pfizer") == "pfizer"


def test_every_reason_code_is_documented_and_tested() -> None:
    """reason-codes.json lists exactly the codes the checks produce; each one appears in a test here."""
    t = load_tables()
    registry = {"registry_not_found", "registry_name_mismatch", "registry_name_diacritics",
                "registry_dob_mismatch", "registry_sex_mismatch"}  # fmt: skip
    rows = {c for c in t.reasons if c.startswith("row_")} | {"record_id_missing", "record_id_duplicate"}
    assert set(t.reasons) == set(CASES) | registry | rows
    assert all(r.vi and r.en for r in t.reasons.values())
    tests = "".join(p.read_text("utf-8") for p in Path(__file__).parent.glob("test_*.py"))
    untested = [c for c in t.reasons if f'"{c}"' not in tests]
    assert not untested, untested


def test_non_ascii_digits_are_not_dates_or_ids() -> None:
    # "１９８５" (full-width) matched \d and int() reads it, so it used to pass every
    # check and reach the signer, whose DCC schema refuses it.
    assert check_record(replace(CLEAN, date_of_birth="１９８５-03-14"), today=TODAY) == ("dob_format",)
    assert check_record(replace(CLEAN, id_number="０７９１８５００１２３４"), today=TODAY) == ("id_invalid_characters",)
    assert check_record(replace(CLEAN, id_number="１２３４５６７８９"), today=TODAY) == ("id_invalid_characters",)
    odd = replace(AZ2, date="２０２１-１０-２５")
    assert check_record(replace(CLEAN, doses=(AZ1, odd, PF3)), today=TODAY) == ("dose_date_invalid",)


@pytest.mark.parametrize("nationality", ["VIỆT NAM", "VNM", "VIETNAM", "", "VN"])
def test_nationality_spelt_out_is_still_a_citizen(nationality: str) -> None:
    # "Việt Nam"/"VNM" used to make the record a foreigner: a CCCD with an unknown
    # province and the wrong birth year passed as a passport number, unchecked
    # (and the run verified it without asking the registry).
    bad_id = replace(CLEAN, nationality=nationality, id_number="999190123456")
    assert check_record(bad_id, today=TODAY) == ("cccd_province_unknown", "cccd_birth_year_mismatch")
    assert check_record(replace(CLEAN, nationality=nationality), today=TODAY) == ()


@pytest.mark.parametrize("nationality", ["US", "USA", "KOR", "CHN", "KR", "FRA"])
def test_foreigner_has_an_alpha2_or_alpha3_code(nationality: str) -> None:
    # USA, KOR, CHN used to count as Vietnamese: every foreigner got an ID-format code (issue 9, point 3).
    foreign = replace(CLEAN, nationality=nationality, id_number="C1234567", sex="")
    assert check_record(foreign, today=TODAY) == ()
    assert check_record(replace(foreign, id_number="C 12/3"), today=TODAY) == ("passport_format",)


@pytest.mark.parametrize(
    ("record_name", "registry_name"),
    [("Nguyễn Thị Thủy", "NGUYỄN THỊ THUỶ"), ("Lê Văn Hòa", "Lê Văn Hoà"), ("Trần Khỏe", "Trần Khoẻ"),
     ("Phạm Thị Thúy Hoà", "Phạm Thị Thuý Hòa")],
)  # fmt: skip
def test_old_and_new_tone_placement_are_the_same_name(record_name: str, registry_name: str) -> None:
    # "Hoà"/"Hòa", "Thuỷ"/"Thủy" are both correct spellings: they used to be
    # flagged registry_name_diacritics (a probable typo) and sent to the police.
    rec = replace(CLEAN, full_name=record_name)
    assert compare_with_registry(rec, replace(REG, full_name=registry_name)) == ()


def test_tone_on_another_letter_is_still_a_diacritics_mismatch() -> None:
    for a, b in (("Lê Văn Hoàng", "Lê Văn Hòang"), ("Lê Văn Hòa", "Lê Văn Hóa"), ("Lê Quý", "Lê Qúy")):
        assert compare_with_registry(replace(CLEAN, full_name=a), replace(REG, full_name=b)) == (
            "registry_name_diacritics",
        )


@pytest.mark.parametrize("code", ["EU/1/21/1529", "EU/1/20/1528", "EU/1/20/1507", "EU/1/20/1525", "eu/1/21/1529 "])
def test_eu_product_codes_are_vaccines(code: str) -> None:
    # The mp codes of our own templates/vaccines.json came out vaccine_unknown (issue 9, point 2).
    t = load_tables()
    assert t.canonical_vaccine(code) in {"AstraZeneca", "Pfizer", "Moderna", "Janssen"}
    rec = replace(CLEAN, doses=(replace(AZ1, vaccine=code), replace(AZ2, vaccine=code)))
    assert "vaccine_unknown" not in codes(rec)


def test_an_unknown_product_does_not_remove_the_minimum_interval() -> None:
    t = load_tables()
    assert t.min_days(None) == t.unknown_min_days > 0
    three_days = (replace(AZ1, vaccine="Covaxin"), replace(AZ2, vaccine="Covaxin", date="2021-08-05"))
    assert codes(replace(CLEAN, doses=three_days)) == ("vaccine_unknown", "dose_interval_short")
    # the known product of the other dose gives the minimum: 20 days after an unknown first dose, AstraZeneca needs 28
    mixed = (replace(AZ1, vaccine="Covaxin"), replace(AZ2, date="2021-08-22"))
    assert codes(replace(CLEAN, doses=mixed)) == ("vaccine_unknown", "dose_interval_short")


def test_every_minimum_interval_has_its_source() -> None:
    t = load_tables()
    assert set(t.interval_sources) == set(t.intervals) and all(len(s) > 20 for s in t.interval_sources.values())
    assert "4 to 12 weeks" in t.interval_sources["AstraZeneca"]


@pytest.mark.parametrize(
    ("mutation", "in_registry", "expected"),
    [
        # the record's sex is wrong, the ID is right: one reason, not also cccd_sex_mismatch (issue 9, point 4)
        (dict(sex="M"), True, ("registry_sex_mismatch",)),
        (dict(date_of_birth="1986-03-14"), True, ("registry_dob_mismatch",)),
        # a digit that cannot be right explains why the registry does not know the ID
        (dict(id_number="079085001234"), False, ("cccd_sex_mismatch",)),
        (dict(id_number="003185001234"), False, ("cccd_province_unknown",)),
        (dict(id_number="079186001234"), False, ("cccd_birth_year_mismatch",)),
        (dict(id_number="079185999999"), False, ("registry_not_found",)),
        # a date of birth or name with its own code is not compared again
        (dict(date_of_birth="2099-03-14"), True, ("dob_future",)),
        (dict(date_of_birth="1890-03-14"), True, ("dob_implausible",)),
        (dict(date_of_birth="14/03/1985"), True, ("dob_format",)),
        (dict(date_of_birth=""), True, ("dob_missing",)),
        (dict(full_name=""), True, ("name_missing",)),
        (dict(full_name="Nguyễn Thị Thanh Hương2"), True, ("name_invalid",)),
    ],
)
def test_one_cause_one_reason(mutation: dict[str, str], in_registry: bool, expected: tuple[str, ...]) -> None:
    from signer.cleaning.checks import with_registry

    rec = replace(CLEAN, **mutation)
    assert with_registry(rec, codes(rec), REG if in_registry else None) == expected


@pytest.mark.parametrize(
    ("ident", "expected"),
    [
        ("-", ("id_missing",)), ("N/A", ("id_missing",)), ("Không có", ("id_missing",)), ("KHONG CO", ("id_missing",)),
        ("NULL", ("id_missing",)), ("null", ("id_missing",)), ("000000000000", ("id_missing",)), ("  --  ", ("id_missing",)),
        ("79185001234", ("id_wrong_length",)), ("0791850012344", ("id_wrong_length",)), ("0791850", ("id_wrong_length",)),
        ("079 185 00123", ("id_wrong_length",)),
        ("0791850O1234", ("id_invalid_characters",)), ("079185001234X", ("id_invalid_characters",)),
        ("079 185 001234", ("id_separators",)), ("079.185.001234", ("id_separators",)), ("079-185-001234", ("id_separators",)),
        ("079\u00a0185\u00a0001234", ("id_separators",)),
        # repaired, then checked like any ID: the sex digit still counts
        ("079 085 001234", ("id_separators", "cccd_sex_mismatch")),
    ],
)  # fmt: skip
def test_one_reason_per_kind_of_id_error(ident: str, expected: tuple[str, ...]) -> None:
    # id_format used to cover a wrong length, letters and placeholders alike (issue 9, point 5),
    # and IDs with spaces were repaired silently (point 6).
    assert codes(replace(CLEAN, id_number=ident)) == expected
    t = load_tables()
    assert all(t.reasons[c].vi and t.reasons[c].en for c in expected)
    assert all(t.reasons[c].fix_vi and t.reasons[c].fix_en for c in expected if c.startswith("id_"))


def test_repaired_id_is_looked_up_and_suggested() -> None:
    from signer.cleaning.checks import lookup_id, needs_registry, with_registry

    rec = replace(CLEAN, id_number="079 185 001234")
    assert lookup_id(rec) == "079185001234" and needs_registry(rec, codes(rec))
    assert with_registry(rec, codes(rec), REG) == ("id_separators",)
    assert not needs_registry(replace(CLEAN, id_number="N/A"), ("id_missing",))


def test_name_without_diacritics_is_verified_with_the_registry_spelling(tmp_path: Path) -> None:
    # NGUYEN THI ... against the registry's Nguyễn Thị ... blocked signing (issue 9, point 7).
    import csv

    from signer.cleaning.run import CheckOptions, run_checks
    from signer.records import is_verified, read_records
    from tests.cleaning.conftest import NOW
    from tests.cleaning.test_bad_input import GOOD, HEADER, REGISTRY

    rows = [GOOD.replace("Nguyễn Thị Thanh Hương", "NGUYEN THI THANH HUONG"),
            GOOD.replace("A1,", "A2,").replace("Nguyễn Thị Thanh Hương", "Nguyen Thi Thanh Huong")
            .replace("1985-03-14", "1985-03-15")]  # fmt: skip
    path = tmp_path / "r.csv"
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", "utf-8")
    reg = tmp_path / "registry.csv"
    reg.write_text(REGISTRY, "utf-8")
    summary = run_checks(CheckOptions(records=path, registry=str(reg), out_dir=tmp_path / "out", now=NOW, workers=1,
                                      formats=("csv",)))  # fmt: skip
    assert summary["totals"]["subjects"]["verified"] == 1 and summary["verified_with_soft_reasons"] == 1
    [rec] = list(read_records(tmp_path / "out" / "verified.jsonl"))
    assert isinstance(rec, Record) and rec.record_id == "A1" and is_verified(rec)
    assert rec.full_name == "Nguyễn Thị Thanh Hương"  # the certificate carries the registry's spelling
    [listed] = [p for p in (tmp_path / "out" / "reconciliation").rglob("*.csv")]
    with listed.open(encoding="utf-8-sig") as fh:
        codes_by_id = {r["record_id"]: r["reason_codes"].split() for r in csv.DictReader(fh)}
    # listed for correction in the source; with another difference (date of birth) not verified
    assert codes_by_id == {"A1": ["registry_name_diacritics"],
                           "A2": ["registry_name_diacritics", "registry_dob_mismatch"]}  # fmt: skip
