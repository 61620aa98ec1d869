"""Fixes of the security review of issue 12 (items 2-5): hostile dates and
cookies are 4xx pages, never a 500; the look-up's lock and cool-downs use one
bucket (ID + birth year) for real and decoy look-ups alike, so their 429
pattern says nothing about a record; /lookup has the resend cool-down."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.portal.citizen_helpers import (
    DUC,
    HUONG,
    csrf_tokens,
    enter_code,
    lookup,
    post,
    strip_tokens,
)
from tests.portal.conftest import DemoBatch, PortalClient, make_portal

HUGE_DATE = "1/1/99999999999999999999"


@pytest.mark.parametrize("date", [HUGE_DATE, "99999999999999999999/1", "1/99999999999999999999/1985",
                                  "99999999999999999999-01-01"])
def test_a_huge_birth_date_is_a_400_page(portal_client: PortalClient, date: str) -> None:
    pc = portal_client
    r = post(pc, "/lookup", "/?lang=en", id_number=HUONG["id_number"], birth_date=date)
    assert r.status_code == 400 and "date of birth" in r.text.lower()
    r = post(pc, "/claim", "/claim", id_number=HUONG["id_number"], birth_date=date,
             claim_code="AAAAA-AAAAA-AAAAA-AAAAA", phone="0912345678")
    assert r.status_code == 400 and "date of birth" in r.text.lower()


def _raw(pc: PortalClient, method: str, path: str, cookie: bytes, **kw: object) -> httpx.Response:
    fresh = TestClient(pc.app, base_url="https://testserver")
    response: httpx.Response = fresh.request(method, path, headers=[(b"cookie", cookie)], follow_redirects=False,
                                             **kw)  # type: ignore[arg-type]
    return response


@pytest.mark.parametrize("letter", ["\u00aa", "\u00b5", "\u00ba"])
def test_non_ascii_cookies_are_ignored_not_a_500(portal_client: PortalClient, letter: str) -> None:
    """The server reads a Cookie header as latin-1. The test client sends the
    header's UTF-8 bytes: "ª" is C2 AA, read back as "Âª" (two letters that
    str.isalnum() accepts), so 21 of them and an "a" are 43 non-ASCII
    "letters", the reviewer's cookie, which passed the old check and failed in
    .encode("ascii") with a 500."""
    pc = portal_client
    raw = (letter * 21 + "a").encode("utf-8")
    assert len(raw.decode("latin-1")) == 43 and raw.decode("latin-1").isalnum()
    pre = b"__Host-vndcc_pre=" + raw
    page = _raw(pc, "GET", "/", pre)
    assert page.status_code == 200
    assert any(h.split("=", 1)[0].endswith("vndcc_pre") for h in page.headers.get_list("set-cookie"))  # a new one
    data = {"csrf": csrf_tokens(page.text)["/lookup"], "id_number": HUONG["id_number"],
            "birth_date": HUONG["birth_date"]}
    assert _raw(pc, "POST", "/lookup", pre, data=data).status_code == 403
    assert _raw(pc, "POST", "/code", pre + b"; __Host-vndcc_otp=" + raw, data={"code": "123456"}).status_code == 403
    assert _raw(pc, "GET", "/passport", b"__Host-vndcc_session=" + raw).status_code == 401
    assert _raw(pc, "GET", "/passport/" + "0" * 32 + "/pdf", b"__Host-vndcc_session=" + raw).status_code == 401


LIMITS = {"lock_failures": 3, "lock_sends": 4, "lock_seconds": 300, "resend_seconds": 60, "otp_attempts": 5,
          "network_lookups": 1000, "network_codes": 1000, "phone_sends": 1000}


@pytest.fixture()
def small(demo_batch: DemoBatch, tmp_path: Path) -> Iterator[PortalClient]:
    yield from make_portal(demo_batch, tmp_path, limits=LIMITS)


def _pattern(pc: PortalClient, ident: str, dates: list[str], wrong_codes: bool) -> list[tuple[int, str]]:
    """Look-ups (each from a fresh browser, 61 s apart) with ``dates``; after each, a
    wrong code when ``wrong_codes``. Returns (status, body without tokens) of each."""
    out = []
    for date in dates:
        browser = replace(pc, client=TestClient(pc.app, base_url="https://testserver"))
        r = lookup(browser, {"id_number": ident, "birth_date": date})
        body = strip_tokens(r.text)
        out.append((r.status_code, body))
        if wrong_codes and r.status_code == 303:
            assert enter_code(browser, "000000").status_code == 400
        pc.clock.advance(61)
    return out


@pytest.mark.parametrize("wrong_codes", [True, False], ids=["failed codes", "codes sent"])
def test_lock_pattern_is_the_same_for_a_real_and_an_unknown_id(demo_batch: DemoBatch, tmp_path: Path,
                                                               wrong_codes: bool) -> None:
    """Duc's record holds only the year 1962: a real look-up with a full date
    matches "1962"; an unknown ID with the same dates is a decoy. Full dates that
    vary within the year (as someone probing would type) must lock both alike."""
    dates = ["02/04/1962", "01/01/1962", "15/06/1962", "30/12/1962", "03/03/1962", "04/04/1962", "05/05/1962"]
    patterns = []
    for n, ident in enumerate((DUC["id_number"], "001062009999")):
        for pc in make_portal(demo_batch, tmp_path / str(n), limits=LIMITS):
            patterns.append([status for status, _ in _pattern(pc, ident, dates, wrong_codes)])
    real, unknown = patterns
    assert real == unknown, patterns
    assert 429 in real and real[0] == 303


def test_lookup_has_the_resend_cool_down_for_real_and_decoy_alike(small: PortalClient) -> None:
    pc = small
    answers = []
    for ident, date in ((HUONG["id_number"], HUONG["birth_date"]), ("079999999999", HUONG["birth_date"]),
                        (HUONG["id_number"], "15/03/1985")):  # real, unknown ID, wrong date (a decoy)
        first = lookup(pc, {"id_number": ident, "birth_date": date})
        assert first.status_code == 303
        again = lookup(pc, {"id_number": ident, "birth_date": date})  # at once: the cool-down
        answers.append((again.status_code, strip_tokens(again.text)))
        pc.clock.advance(30)
        assert lookup(pc, {"id_number": ident, "birth_date": date}).status_code == 429
        pc.clock.advance(31)
        assert lookup(pc, {"id_number": ident, "birth_date": date}).status_code == 303
        pc.clock.advance(61)
    assert answers[0][0] == 429 and "60" in answers[0][1]
    assert answers[0] == answers[1] == answers[2]
    pc.new_messages()
    # a resend right after a look-up waits the same
    lookup(pc, HUONG)
    r = post(pc, "/code/resend", "/code")
    assert r.status_code == 429
