"""The one-time code (ASVS 5): 5-minute expiry on the app's clock, single use,
5 attempts per challenge, bound to the browser that asked, decoys for
look-ups that match nothing, stored only as a salted scrypt hash."""

from __future__ import annotations

import sqlite3

from fastapi.testclient import TestClient

from tests.portal.citizen_helpers import HUONG, UNKNOWN, WRONG_DOB, code_for, enter_code, lookup
from tests.portal.conftest import PortalClient


def _other(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_code_expires_after_five_minutes(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    pc.clock.advance(301)
    r = enter_code(pc, code)
    assert r.status_code == 400 and "không còn dùng được" in r.text


def test_code_still_valid_just_before_five_minutes(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    pc.clock.advance(299)
    assert enter_code(pc, code).status_code == 303


def test_code_is_single_use(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    challenge = pc.client.cookies.get("__Host-vndcc_otp")
    assert enter_code(pc, code).status_code == 303
    pc.client.cookies.set("__Host-vndcc_otp", challenge or "", domain="testserver.local")
    pc.client.cookies.delete("__Host-vndcc_session")
    r = enter_code(pc, code)
    assert r.status_code == 400


def test_five_attempts_then_the_challenge_is_dead(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    for _ in range(5):
        assert enter_code(pc, _other(code)).status_code == 400
    r = enter_code(pc, code)  # the right code, sixth try: refused
    assert r.status_code == 400 and "không còn dùng được" in r.text


def test_code_is_bound_to_the_browser_that_asked(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    challenge = pc.client.cookies.get("__Host-vndcc_otp") or ""
    thief = TestClient(pc.app, base_url="https://testserver")
    thief.cookies.set("__Host-vndcc_otp", challenge)
    page = thief.get("/code")
    from tests.portal.citizen_helpers import csrf_tokens

    r = thief.post("/code", data={"csrf": csrf_tokens(page.text)["/code"], "code": code}, follow_redirects=False)
    assert r.status_code == 400
    assert enter_code(pc, code).status_code == 303  # the owner's browser still can


def test_decoys_behave_like_real_challenges(portal_client: PortalClient) -> None:
    pc = portal_client
    for person in (UNKNOWN, WRONG_DOB):
        r = lookup(pc, person)
        assert r.status_code == 303 and r.headers["location"] == "/code"
        assert pc.new_messages() == []
        r = enter_code(pc, "123456")
        assert r.status_code == 400 and "Mã không đúng" in r.text
    with sqlite3.connect(pc.ledger) as conn:
        rows = conn.execute("SELECT lookup_hash, length(code_hash), length(salt), attempts FROM otp_challenges").fetchall()
    assert rows == [(None, 64, 32, 1), (None, 64, 32, 1)]


def test_code_stored_only_as_salted_slow_hash(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    with sqlite3.connect(pc.ledger) as conn:
        dump = "\n".join(conn.iterdump())
    assert code not in dump
    from signer.web import otp

    (cid, code_hash, salt) = sqlite3.connect(pc.ledger).execute(
        "SELECT id, code_hash, salt FROM otp_challenges").fetchone()
    # one phone: one slot, the code is the core itself (otp "One code per phone")
    assert otp.slow_hash(pc.portal.keys.otp_pepper(cid, f"{int(code)}/1"), bytes.fromhex(salt)).hex() == code_hash


def test_codes_are_six_random_digits() -> None:
    from signer.web.otp import codes_of, new_core

    codes = {code for _ in range(2000) for code in codes_of(new_core(1), 1)}
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    assert len(codes) > 1990  # no small generator cycle
    assert len({c[0] for c in codes}) == 10
    three = [codes_of(new_core(3), 3) for _ in range(2000)]  # three phones: three codes, still 6 digits
    assert all(len(set(c)) == 3 and all(len(x) == 6 and x.isdigit() for x in c) for c in three)
    # 2,000 draws of a core below 333,333: about 6 repeats expected (birthday), 30 never in practice
    assert max(int(c[-1]) for c in three) > 900_000 and len({c[0] for c in three}) > 1970


def test_resend_has_a_cool_down_and_replaces_the_code(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    first = code_for(pc, HUONG["phone"])
    from tests.portal.citizen_helpers import post

    r = post(pc, "/code/resend", "/code")
    assert r.status_code == 429 and "60" in r.text
    pc.clock.advance(61)
    r = post(pc, "/code/resend", "/code")
    assert r.status_code == 303
    second = code_for(pc, HUONG["phone"])
    if first != second:
        assert enter_code(pc, first).status_code == 400  # the old code stopped working... (a wrong try)
    assert enter_code(pc, second).status_code == 303
