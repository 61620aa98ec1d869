"""What one passport page shows: the EU DCC payload, the record's doses and the issuer.

    >>> from signer.pdf.model import passport_data
    >>> data = passport_data(dcc=payload, record=record, hc1=hc1, centre="Trạm Y tế Phường 1",
    ...                      issued_at=iat, expires_at=exp)     # doctest: +SKIP

The certificate fields (Decision 5772/QĐ-BYT) come from the signed DCC
payload, so the page and the QR cannot disagree; codes are printed next to
their names so that a verifier can compare them with the QR without value
sets. The doses table lists every dose of the record, not only the latest
(the DCC holds only the latest, hcert 1.x / DCC schema 1.3 ``v``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from signer.payload import load_vaccines
from signer.pdf.font import nfc
from signer.pdf.template import PassportTemplate, load_template
from verifier.errors import InputError


@dataclass(frozen=True)
class DoseRow:
    dose: str
    date: str
    vaccine: str
    lot: str
    site: str


@dataclass(frozen=True)
class PassportData:
    """Display strings of one passport (all NFC)."""

    hc1: str
    full_name: str
    date_of_birth: str
    nationality: str
    disease: str
    doses_received: str
    vaccination_date: str
    dose_number: str
    vaccine: str
    product: str
    manufacturer: str
    uvci: str
    centre: str
    issued: str
    qr_expiry: str
    doses: tuple[DoseRow, ...]

    def field(self, key: str) -> str:
        return str(getattr(self, key))


@lru_cache(maxsize=1)
def _valuesets() -> dict[str, Mapping[str, Any]]:
    base = resources.files("verifier").joinpath("data", "valuesets")
    out: dict[str, Mapping[str, Any]] = {}
    for name in (
        "vaccine-prophylaxis",
        "vaccine-medicinal-product",
        "vaccine-mah-manf",
        "country-2-codes",
    ):
        data = json.loads(base.joinpath(f"{name}.json").read_text("utf-8"))
        out[name] = data["valueSetValues"]
    return out


def _display(valueset: str, code: str) -> str:
    entry = _valuesets()[valueset].get(code)
    name = str(entry["display"]) if entry else ""
    return f"{name} ({code})" if name else code


def _date(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d")


def _get(obj: Any, name: str, default: Any = "") -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _country(code: str, template: PassportTemplate) -> str:
    label = template.countries.get(code)
    if label:
        return label.vi if label.vi == label.en else f"{label.vi} / {label.en}"
    entry = _valuesets()["country-2-codes"].get(code)
    return f"{entry['display']} ({code})" if entry else code


def dose_rows(doses: Sequence[Any]) -> tuple[DoseRow, ...]:
    """Every dose of a record (``signer.records.Dose`` or a mapping), by date."""
    vaccines = load_vaccines()
    rows = []
    for d in sorted(doses, key=lambda d: str(_get(d, "date"))):
        vaccine = str(_get(d, "vaccine"))
        entry = vaccines.lookup(vaccine)  # the key or any alias of templates/vaccines.json
        dn, sd = int(_get(d, "dose_number", 0) or 0), int(_get(d, "series_doses", 0) or 0)
        number = f"{dn}/{sd}" if dn and sd else (str(dn) if dn else "")
        rows.append(
            DoseRow(
                dose=number,
                date=str(_get(d, "date")),
                vaccine=nfc(entry.name_vi if entry else vaccine),
                lot=nfc(str(_get(d, "lot"))),
                site=nfc(str(_get(d, "site"))),
            )
        )
    return tuple(rows)


def passport_data(
    *,
    dcc: Mapping[str, Any],
    hc1: str,
    centre: str,
    issued_at: dt.datetime,
    expires_at: dt.datetime,
    record: Any = None,
    template: PassportTemplate | None = None,
) -> PassportData:
    """Build the page's strings from the signed payload (and the record's doses)."""
    t = template or load_template()
    try:
        nam = dcc["nam"]
        v = dcc["v"][0]
        full_name = " ".join(p for p in (nam.get("fn", ""), nam.get("gn", "")) if p)
        dn, sd = int(v["dn"]), int(v["sd"])
        disease = t.diseases.get(str(v["tg"]))
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise InputError(f"DCC payload lacks a vaccination entry: {err}") from None
    if record is not None and _get(record, "full_name"):
        full_name = str(_get(record, "full_name"))
    doses = dose_rows(_get(record, "doses", ()) if record is not None else ())
    if not doses:
        doses = (
            DoseRow(
                dose=f"{dn}/{sd}",
                date=str(v["dt"]),
                vaccine=_display("vaccine-medicinal-product", str(v["mp"])),
                lot="",
                site="",
            ),
        )
    nationality = str(_get(record, "nationality") or v.get("co", "")) if record else str(v.get("co", ""))
    return PassportData(
        hc1=hc1,
        full_name=nfc(" ".join(full_name.split())),
        date_of_birth=str(dcc.get("dob", "")),
        nationality=nfc(_country(nationality, t)),
        disease=f"{disease.vi} ({v['tg']})" if disease else str(v["tg"]),
        doses_received=str(len(doses) if record is not None else dn),
        vaccination_date=str(v["dt"]),
        dose_number=f"{dn}/{sd}",
        vaccine=_display("vaccine-prophylaxis", str(v["vp"])),
        product=_display("vaccine-medicinal-product", str(v["mp"])),
        manufacturer=_display("vaccine-mah-manf", str(v["ma"])),
        uvci=str(v["ci"]),
        centre=nfc(centre),
        issued=_date(issued_at),
        qr_expiry=_date(expires_at),
        doses=doses,
    )
