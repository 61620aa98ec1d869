"""The passport layout and labels (templates/passport.json) as checked, frozen data.

    >>> from signer.pdf.template import load_template
    >>> t = load_template()
    >>> [f.key for f in t.fields][:3]
    ['full_name', 'date_of_birth', 'nationality']
    >>> len(t.fields)
    11

Checked when loaded, not when rendered: a broken template is a
:class:`~verifier.errors.ConfigError` at start-up.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from verifier.errors import ConfigError

#: Decision 5772/QĐ-BYT, the 11 fields of the certificate, in order.
REQUIRED_FIELDS = (
    "full_name",
    "date_of_birth",
    "nationality",
    "disease",
    "doses_received",
    "vaccination_date",
    "dose_number",
    "vaccine",
    "product",
    "manufacturer",
    "uvci",
)
ISSUER_FIELDS = ("centre", "issued", "qr_expiry")


@dataclass(frozen=True)
class Label:
    key: str
    vi: str
    en: str
    width: float = 0.0


@dataclass(frozen=True)
class HeaderLine:
    text: str
    size: float
    bold: bool


@dataclass(frozen=True)
class PassportTemplate:
    width: float
    height: float
    margin: float
    font_regular: str
    font_bold: str
    title_meta: str
    subject_meta: str
    language: str
    keywords: str
    header: tuple[HeaderLine, ...]
    title: Label
    title_size: float
    fields_heading: Label
    fields: tuple[Label, ...]
    issuer_fields: tuple[Label, ...]
    doses_heading: Label
    dose_columns: tuple[Label, ...]
    max_dose_rows: int
    qr_size: float
    qr_quiet_zone: int
    qr_ec_level: str
    verify_note: Label
    sigbox_width: float
    sigbox_height: float
    sigbox_heading: Label
    sigbox_date: Label
    reason: str
    field_name: str
    diseases: Mapping[str, Label]
    countries: Mapping[str, Label]


def _label(obj: Mapping[str, Any], key: str = "") -> Label:
    return Label(
        key=str(obj.get("key", key)),
        vi=str(obj["vi"]),
        en=str(obj["en"]),
        width=float(obj.get("width", 0.0)),
    )


def parse_template(data: Mapping[str, Any]) -> PassportTemplate:
    """Build and check a template from its JSON object."""
    page, meta, qr, box = data["page"], data["metadata"], data["qr"], data["signature_box"]
    fields = tuple(_label(f) for f in data["fields"])
    if tuple(f.key for f in fields) != REQUIRED_FIELDS:
        raise ValueError(f"fields must be, in order: {', '.join(REQUIRED_FIELDS)}")
    issuer = tuple(_label(f) for f in data["issuer_fields"])
    if tuple(f.key for f in issuer) != ISSUER_FIELDS:
        raise ValueError(f"issuer_fields must be: {', '.join(ISSUER_FIELDS)}")
    if qr["ec_level"] not in ("Q", "H"):
        raise ValueError("qr.ec_level must be Q (hcert 1.x section 4) or H")
    template = PassportTemplate(
        width=float(page["width"]),
        height=float(page["height"]),
        margin=float(page["margin"]),
        font_regular=str(data["fonts"]["regular"]),
        font_bold=str(data["fonts"]["bold"]),
        title_meta=str(meta["title"]),
        subject_meta=str(meta["subject"]),
        language=str(meta["language"]),
        keywords=str(meta.get("keywords", "")),
        header=tuple(
            HeaderLine(str(h["text"]), float(h["size"]), bool(h["bold"])) for h in data["header"]
        ),
        title=_label(data["title"], "title"),
        title_size=float(data["title"]["size"]),
        fields_heading=_label(data["fields_heading"]),
        fields=fields,
        issuer_fields=issuer,
        doses_heading=_label(data["doses_heading"]),
        dose_columns=tuple(_label(c) for c in data["dose_columns"]),
        max_dose_rows=int(data["max_dose_rows"]),
        qr_size=float(qr["size"]),
        qr_quiet_zone=int(qr["quiet_zone"]),
        qr_ec_level=str(qr["ec_level"]),
        verify_note=_label(data["verify_note"]),
        sigbox_width=float(box["width"]),
        sigbox_height=float(box["height"]),
        sigbox_heading=_label(box["heading"]),
        sigbox_date=_label(box["date"]),
        reason=str(data["signature"]["reason"]),
        field_name=str(data["signature"]["field_name"]),
        diseases={k: _label(v, k) for k, v in data["diseases"].items()},
        countries={k: _label(v, k) for k, v in data["countries"].items()},
    )
    table_width = sum(c.width for c in template.dose_columns)
    if table_width > template.width - 2 * template.margin + 0.01:
        raise ValueError("dose_columns are wider than the page")
    if template.qr_quiet_zone < 4:
        raise ValueError("qr.quiet_zone must be at least 4 modules (ISO/IEC 18004)")
    return template


@lru_cache(maxsize=4)
def load_template(path: str | None = None) -> PassportTemplate:
    """Load templates/passport.json (or another file) once per process."""
    where = path or "templates/passport.json"
    try:
        if path is None:
            raw = resources.files("templates").joinpath("passport.json").read_text("utf-8")
        else:
            raw = Path(path).read_text("utf-8")
        return parse_template(json.loads(raw))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"passport template {where}: {err}") from None
