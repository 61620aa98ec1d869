"""templates/vaccines.json against the official EU DCC value sets (verifier/data/valuesets)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from signer.payload import load_vaccines, vaccine_key

#: The products used in Viet Nam that the issue names.
REQUIRED = ("AstraZeneca", "Pfizer", "Moderna", "Sinopharm", "Hayat-Vax", "Sputnik V", "Janssen", "Abdala")


def valueset(name: str) -> dict[str, Any]:
    text = resources.files("verifier").joinpath("data", "valuesets", f"{name}.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.fixture(scope="module")
def raw_table() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("templates").joinpath("vaccines.json").read_text("utf-8"))
    return data


def test_every_vietnamese_vaccine_is_mapped() -> None:
    table = load_vaccines()
    assert set(REQUIRED) <= set(table.vaccines)


@pytest.mark.parametrize("key", REQUIRED)
def test_codes_follow_the_encoding_instructions(key: str) -> None:
    vac = load_vaccines().vaccines[key]
    instructions = valueset("vaccine-encoding-instructions")["valueSetValues"]
    entry = instructions[vac.encoding_instruction]
    assert vac.mp == entry["vaccine-code"]
    assert vac.ma == entry["vaccine-manufacturer"]
    assert vac.vp in entry["sct-codes"]


@pytest.mark.parametrize("key", REQUIRED)
def test_codes_are_active_in_the_value_sets(key: str) -> None:
    vac = load_vaccines().vaccines[key]
    for code, name in (
        (vac.mp, "vaccine-medicinal-product"),
        (vac.ma, "vaccine-mah-manf"),
        (vac.vp, "vaccine-prophylaxis"),
    ):
        values = valueset(name)["valueSetValues"]
        assert code in values, (code, name)
        assert values[code]["active"] is True, (code, name)


def test_value_set_dates_recorded(raw_table: dict[str, Any]) -> None:
    for name, date in raw_table["valuesets"].items():
        assert valueset(name)["valueSetDate"] == date, name


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("Vaxzevria", "AstraZeneca"),
        ("vắc xin astrazeneca", "AstraZeneca"),
        ("Vắc-xin Vero Cell", "Sinopharm"),
        ("VERO CELL", "Sinopharm"),
        ("Sinopharm (Vero Cell)", "Sinopharm"),
        ("Pfizer-BioNTech", "Pfizer"),
        ("Comirnaty", "Pfizer"),
        ("Spikevax", "Moderna"),
        ("Hayat Vax", "Hayat-Vax"),
        ("Sputnik-V", "Sputnik V"),
        ("Gam-COVID-Vac", "Sputnik V"),
        ("Johnson & Johnson", "Janssen"),
        ("Jcovden", "Janssen"),
        ("CIGB-66", "Abdala"),
    ],
)
def test_aliases(spelling: str, key: str) -> None:
    hit = load_vaccines().lookup(spelling)
    assert hit is not None and hit.key == key


def test_unknown_and_ambiguous() -> None:
    table = load_vaccines()
    assert table.lookup("Covaxin") is None
    assert table.lookup("") is None
    # every alias maps to exactly one product (parse_vaccines refuses clashes)
    owners: dict[str, set[str]] = {}
    for vac in table.vaccines.values():
        for alias in (vac.key, *vac.aliases):
            owners.setdefault(vaccine_key(alias), set()).add(vac.key)
    assert all(len(o) == 1 for o in owners.values())
