"""Helpers of the citizen-page tests: forms, tokens and the sign-in walk."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.portal.conftest import PortalClient

HUONG = {"id_number": "0791 8500 1234", "birth_date": "14/03/1985", "phone": "+84900000001"}  # HCM-000001
DUC = {"id_number": "001062004567", "birth_date": "02/04/1962", "phone": "+84900000002"}  # HCM-000002 (year only)
NO_PHONE = {"id_number": "052157003311", "birth_date": "24/12/1957"}  # HCM-000006: no phone on the record
UNKNOWN = {"id_number": "079999999999", "birth_date": "14/03/1985"}
WRONG_DOB = {"id_number": "079185001234", "birth_date": "15/03/1985"}

_CSRF = re.compile(r'<form[^>]*action="([^"]+)"[^>]*>\s*<input type="hidden" name="csrf" value="([^"]+)">')


def csrf_tokens(html: str) -> dict[str, str]:
    return dict(_CSRF.findall(html))


def token(pc: PortalClient, page: str, action: str) -> str:
    r = pc.client.get(page)
    assert r.status_code == 200, r.text
    return csrf_tokens(r.text)[action]


def post(pc: PortalClient, action: str, page: str, **fields: str) -> httpx.Response:
    data = {"csrf": token(pc, page, action), **fields}
    response: httpx.Response = pc.client.post(action, data=data, follow_redirects=False)
    return response


def lookup(pc: PortalClient, person: dict[str, str]) -> httpx.Response:
    return post(pc, "/lookup", "/", id_number=person["id_number"], birth_date=person["birth_date"])


def code_for(pc: PortalClient, phone: str) -> str:
    messages = [m for m in pc.new_messages() if m["to"] == phone]
    assert messages, f"no code sent to the test phone (outbox: {len(pc.outbox())} messages)"
    found = re.search(r"\b(\d{6})\b", messages[-1]["text"])
    assert found
    return found.group(1)


def enter_code(pc: PortalClient, code: str) -> httpx.Response:
    return post(pc, "/code", "/code", code=code)


def sign_in(pc: PortalClient, person: dict[str, str]) -> str:
    """Look-up, the code from the outbox, the code: returns the passport page's HTML."""
    assert lookup(pc, person).status_code == 303
    r = enter_code(pc, code_for(pc, person["phone"]))
    assert r.status_code == 303 and r.headers["location"] == "/passport", r.text
    page = pc.client.get("/passport")
    assert page.status_code == 200
    return str(page.text)


def handles(html: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"/passport/([0-9a-f]{32})/pdf", html)))


def strip_tokens(html: str) -> str:
    return re.sub(r'name="csrf" value="[^"]+"', 'name="csrf" value=""', html)


def cookie_flags(response: httpx.Response) -> dict[str, str]:
    """name -> the Set-Cookie header (lower case) of each cookie the response sets."""
    out: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        out[header.split("=", 1)[0]] = header.lower()
    return out
