"""The citizen forms: a bounded ``application/x-www-form-urlencoded`` body
read by hand (size cap, strict UTF-8, no repeated fields) and the checks of
each field. Anything wrong is a :class:`Refused` with a status and a message
key: the pages show it, never a traceback.

    >>> parse_birth_date("14/03/1985"), parse_birth_date("03/1985"), parse_birth_date("1985")
    ('1985-03-14', '1985-03', '1985')
    >>> parse_birth_date("31/02/1985") is None, parse_birth_date("1/1/99999999999999999999") is None
    (True, True)
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qsl

from starlette.requests import Request

from signer.ledger.secret import normalise_citizen_id
from signer.records import normalise_phone
from verifier.errors import PassportError

MAX_BODY = 4096
MAX_FIELD = 200


class Refused(PassportError):
    """A request the page refuses: ``status`` and an i18n message key."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(key)
        self.status, self.key, self.values = status, key, values


async def read_form(request: Request) -> dict[str, str]:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise Refused(413, "error.too_big")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise Refused(413, "error.too_big")
    if not body:
        return {}  # no fields (the CSRF check refuses it)
    if ctype != "application/x-www-form-urlencoded":
        raise Refused(400, "error.bad_form")
    try:
        text = bytes(body).decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=12)
    except (UnicodeDecodeError, ValueError):
        raise Refused(400, "error.bad_form") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out or len(value) > MAX_FIELD or "\x00" in value:
            raise Refused(400, "error.bad_form")
        out[name] = value
    return out


def parse_id(value: str) -> str:
    ident = normalise_citizen_id(value.strip())
    if not re.fullmatch(r"[A-Z0-9]{6,20}", ident):
        raise Refused(400, "error.bad_id")
    return ident


def parse_birth_date(value: str) -> str | None:
    """dd/mm/yyyy, mm/yyyy, yyyy (or the ISO forms) -> the record's form, or None."""
    text = value.strip().replace(".", "/").replace("-", "/")
    parts = text.split("/")
    try:
        if len(parts) == 3:
            if len(parts[0]) == 4:  # yyyy/mm/dd (ISO typed)
                parts = parts[::-1]
            day = dt.date(int(parts[2]), int(parts[1]), int(parts[0]))
            result = day.isoformat()
            year = day.year
        elif len(parts) == 2:
            if len(parts[0]) == 4:
                parts = parts[::-1]
            year, month = int(parts[1]), int(parts[0])
            if not 1 <= month <= 12:
                return None
            result = f"{year:04d}-{month:02d}"
        elif len(parts) == 1 and re.fullmatch(r"\d{4}", parts[0]):
            year = int(parts[0])
            result = f"{year:04d}"
        else:
            return None
    except (ValueError, OverflowError):  # 1/1/99999999999999999999: too big for a date
        return None
    if not 1900 <= year <= 2100 or not all(p.isdigit() for p in parts):
        return None
    return result


def birth_date(value: str) -> str:
    parsed = parse_birth_date(value)
    if parsed is None:
        raise Refused(400, "error.bad_dob")
    return parsed


def otp_code(value: str) -> str:
    code = "".join(value.split())
    if not re.fullmatch(r"[0-9]{6}", code):
        raise Refused(400, "error.bad_code")
    return code


def phone(value: str) -> str:
    number = normalise_phone(value)
    if not number:
        raise Refused(400, "error.bad_phone")
    return number
