"""Record -> DCC payload: schema-valid for every vaccine and DOB precision; bad records refused."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest

from signer.payload import DCC_VERSION, TG_COVID19, build_dcc, load_vaccines
from signer.records import Dose, Record
from signer.uvci import new_uvci
from verifier.errors import InputError
from verifier.schema import schema_problems

ISSUER = "Ministry of Health of Viet Nam"


def record(*doses: Dose, dob: str = "1985-03-14", name: str = "Nguyễn Thị Thanh Hương") -> Record:
    return Record(
        record_id="T-1",
        full_name=name,
        date_of_birth=dob,
        sex="F",
        nationality="VN",
        id_number="079185001234",
        doses=doses,
        province="Thành phố Hồ Chí Minh",
        commune="Phường Bến Nghé",
    )


def dose(date: str = "2021-10-25", vaccine: str = "AstraZeneca", dn: int = 2, sd: int = 2) -> Dose:
    return Dose(date=date, vaccine=vaccine, lot="ABX1504", dose_number=dn, series_doses=sd, site="Trạm Y tế")


def build(rec: Record, **kw: object) -> dict[str, object]:
    return build_dcc(rec, uvci=new_uvci(made_at=1780315200), issuer=ISSUER, vaccines=load_vaccines(), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("vaccine", sorted(load_vaccines().vaccines))
def test_every_vaccine_gives_a_schema_valid_payload(vaccine: str) -> None:
    dcc = build(record(dose(vaccine=vaccine, dn=1, sd=1)))
    assert schema_problems(dcc) == []  # the verifier's own schema check agrees
    v = dcc["v"][0]  # type: ignore[index]
    vac = load_vaccines().vaccines[vaccine]
    assert (v["mp"], v["ma"], v["vp"], v["tg"]) == (vac.mp, vac.ma, vac.vp, TG_COVID19)


@pytest.mark.parametrize("dob", ["1985", "1985-03", "1985-03-14", "1900-01-01", "2009-12-31"])
def test_each_dob_precision(dob: str) -> None:
    dcc = build(record(dose(), dob=dob))
    assert dcc["dob"] == dob
    assert schema_problems(dcc) == []


def test_payload_content() -> None:
    dcc = build(record(dose("2021-08-02", dn=1), dose("2021-10-25", "Vaxzevria", dn=2)))
    assert dcc["ver"] == DCC_VERSION
    assert dcc["nam"] == {"fn": "Nguyễn", "gn": "Thị Thanh Hương", "fnt": "NGUYEN", "gnt": "THI<THANH<HUONG"}
    assert len(dcc["v"]) == 1  # type: ignore[arg-type]
    v = dcc["v"][0]  # type: ignore[index]
    assert (v["dn"], v["sd"], v["dt"], v["co"], v["is"]) == (2, 2, "2021-10-25", "VN", ISSUER)
    assert v["ci"].startswith("URN:UVCI:01:VN:")


def test_latest_dose_wins_whatever_the_order() -> None:
    dcc = build(
        record(
            dose("2022-01-15", "Pfizer", dn=3, sd=3),
            dose("2021-09-10", "Sinopharm", dn=1),
            dose("2021-10-08", "Sinopharm", dn=2),
        )
    )
    v = dcc["v"][0]  # type: ignore[index]
    assert (v["mp"], v["dn"], v["sd"], v["dt"]) == ("EU/1/20/1528", 3, 3, "2022-01-15")


def test_no_personal_data_beyond_name_and_dob() -> None:
    rec = record(dose())
    text = json.dumps(build(rec), ensure_ascii=False)
    for secret in (rec.id_number, rec.province, rec.commune, "ABX1504", "Trạm Y tế"):
        assert secret not in text


@pytest.mark.parametrize(
    ("rec", "reason"),
    [
        (record(), "no doses"),
        (record(dose(vaccine="Covaxin")), "unknown vaccine"),
        (record(dose(date="2021-02-30")), "not a real date"),
        (record(dose(date="25/10/2021")), "not YYYY-MM-DD"),
        (record(dose(date="2019-12-01")), "before any COVID-19 vaccine"),
        (record(dose(dn=3, sd=2)), "exceeds the series total"),
        (record(dose(dn=0)), "dose number is missing"),
        (record(dose(sd=0)), "series is missing"),
        (record(dose(), dob=""), "date of birth is missing"),
        (record(dose(), dob="14/03/1985"), "date of birth is not"),
        (record(dose(), dob="1985-02-30"), "not a real date"),
        (record(dose(), dob="1899"), "date of birth is not"),
        (record(dose(date="2021-10-25"), dob="2021-11-01"), "before the date of birth"),
        (record(dose(), name=""), "full name is empty"),
    ],
)
def test_bad_records_raise_input_error(rec: Record, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        build(rec)


def test_future_dose_refused_when_today_given() -> None:
    rec = record(dose("2026-06-02"))
    with pytest.raises(InputError, match="in the future"):
        build(rec, today=dt.date(2026, 6, 1))
    assert build(rec, today=dt.date(2026, 6, 2))["v"]


def test_latest_only_false_checks_every_dose() -> None:
    rec = record(dose("2021-08-02", "Covaxin", dn=1), dose("2021-10-25", dn=2))
    assert build(rec)["v"]  # only the latest dose matters by default
    with pytest.raises(InputError, match="dose 1: unknown vaccine"):
        build(rec, latest_only=False)


def test_issuer_length() -> None:
    with pytest.raises(InputError):
        build_dcc(record(dose()), uvci=new_uvci(made_at=1780315200), issuer="x" * 81, vaccines=load_vaccines())


def test_schema_violation_is_reported() -> None:
    # a uvci longer than the schema allows passes our checks but not the schema
    with pytest.raises(InputError, match="DCC schema"):
        build_dcc(record(dose()), uvci="U" * 81, issuer=ISSUER, vaccines=load_vaccines())


def test_foreigner_name_order() -> None:
    rec = replace(record(dose(), name="John Michael Smith"), nationality="GB")
    assert build(rec)["nam"] == {"fn": "Smith", "gn": "John Michael", "fnt": "SMITH", "gnt": "JOHN<MICHAEL"}


def test_valid_against_the_1_3_0_schema_it_declares() -> None:
    import jsonschema_rs

    schema = json.loads((Path(__file__).parent / "data" / "DCC.combined-schema-1.3.0.json").read_text("utf-8"))
    assert schema["$comment"] == "Schema version 1.3.0"
    validator = jsonschema_rs.validator_for(schema, validate_formats=True)
    vaccines = load_vaccines()
    for key in vaccines.vaccines:
        for dob in ("1962", "2004-11", "1985-03-14"):
            dcc = build(record(dose(vaccine=key, dn=1, sd=1), dob=dob))
            assert validator.is_valid(dcc), list(validator.iter_errors(dcc))
    mononym = build(record(dose(), name="Suharto"))
    assert validator.is_valid(mononym)
