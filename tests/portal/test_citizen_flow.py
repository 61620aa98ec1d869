"""The citizen flow through the app (TestClient over https://testserver):
look-up, code from the development outbox, passport page, QR and PDF, own
access log, sign-out; and that a session sees nobody else's certificate."""

from __future__ import annotations

import hashlib
import json
import sqlite3

from tests.portal.citizen_helpers import (
    DUC,
    HUONG,
    NO_PHONE,
    code_for,
    enter_code,
    handles,
    lookup,
    post,
    sign_in,
)
from tests.portal.conftest import PortalClient


def test_sign_in_and_download_own_passport(portal_client: PortalClient) -> None:
    pc = portal_client
    html = sign_in(pc, HUONG)
    assert "Còn hiệu lực" in html  # valid, in Vietnamese by default
    found = handles(html)
    assert len(found) == 1
    pdf = pc.client.get(f"/passport/{found[0]}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content == (pc.batch.out / "HCM-000001.pdf").read_bytes()
    assert "HCM-000001" not in pdf.headers["content-disposition"]
    qr = pc.client.get(f"/passport/{found[0]}/qr.png")
    assert qr.status_code == 200 and qr.content == (pc.batch.out / "HCM-000001.png").read_bytes()
    log = pc.client.get("/access?lang=en")
    assert log.status_code == 200
    assert log.text.count("PDF downloaded") == 1 and log.text.count("Signed in") == 1
    assert "QR shown" in log.text and "URN:UVCI:" in log.text


def test_year_only_birth_date_matches_a_full_typed_date(portal_client: PortalClient) -> None:
    assert handles(sign_in(portal_client, DUC))


def test_the_code_goes_only_to_the_records_phone(portal_client: PortalClient) -> None:
    pc = portal_client
    assert lookup(pc, HUONG).status_code == 303
    messages = pc.new_messages()
    assert [m["to"] for m in messages] == [HUONG["phone"]]
    assert (pc.data_dir / "outbox.jsonl").stat().st_mode & 0o777 == 0o600


def test_no_phone_same_answer_and_claim_route_shown(portal_client: PortalClient) -> None:
    pc = portal_client
    r = lookup(pc, NO_PHONE)
    assert r.status_code == 303 and r.headers["location"] == "/code"
    assert pc.new_messages() == []
    page = pc.client.get("/code")
    assert 'href="/claim"' in page.text


def test_sign_out_ends_the_session(portal_client: PortalClient) -> None:
    pc = portal_client
    found = handles(sign_in(pc, HUONG))
    r = post(pc, "/signout", "/passport")
    assert r.status_code == 200
    assert pc.client.get("/passport").status_code == 401
    assert pc.client.get(f"/passport/{found[0]}/pdf").status_code == 401


def test_session_expires_after_its_ttl(portal_client: PortalClient) -> None:
    pc = portal_client
    sign_in(pc, HUONG)
    pc.clock.advance(pc.portal.settings.session_ttl - 5)
    assert pc.client.get("/passport").status_code == 200
    pc.clock.advance(10)
    assert pc.client.get("/passport").status_code == 401


def test_nobody_elses_certificate(portal_client: PortalClient, demo_batch: object) -> None:
    pc = portal_client
    mine = handles(sign_in(pc, HUONG))[0]
    # a second browser: Duc signs in and gets his own handle
    from fastapi.testclient import TestClient

    other = TestClient(pc.app, base_url="https://testserver")
    saved = pc.client
    pc.client = other
    try:
        theirs = handles(sign_in(pc, DUC))[0]
        assert pc.client.get(f"/passport/{theirs}/pdf").status_code == 200
        assert pc.client.get(f"/passport/{mine}/pdf").status_code == 404  # Huong's handle in Duc's session
    finally:
        pc.client = saved
    assert pc.client.get(f"/passport/{theirs}/pdf").status_code == 404
    assert pc.client.get(f"/passport/{theirs}/qr.png").status_code == 404
    with sqlite3.connect(pc.ledger) as conn:
        uvci, record_id = conn.execute("SELECT uvci, record_id FROM certificates WHERE record_id = 'HCM-000002'").fetchone()
    for guess in (uvci, record_id, uvci.replace("#", "%23"), "HCM-000002", "1", "0" * 32,
                  hashlib.sha256(uvci.encode()).hexdigest()[:32]):
        r = pc.client.get(f"/passport/{guess}/pdf")
        assert r.status_code == 404, guess
    assert "Trần Văn Đức" not in pc.client.get("/passport").text
    # the access log shows only Huong's own rows
    log = pc.client.get("/access").text
    assert uvci not in log


def test_a_file_that_does_not_match_the_ledger_is_not_served(portal_client: PortalClient) -> None:
    pc = portal_client
    found = handles(sign_in(pc, HUONG))[0]
    with sqlite3.connect(pc.ledger) as conn:  # the ledger says another PDF was issued
        (text,) = conn.execute("SELECT files FROM certificates WHERE record_id = 'HCM-000001'").fetchone()
        files = [[n, "0" * 64 if n.endswith(".pdf") else h, s] for n, h, s in json.loads(text)]
        conn.execute("UPDATE certificates SET files = ? WHERE record_id = 'HCM-000001'", (json.dumps(files),))
    r = pc.client.get(f"/passport/{found}/pdf")
    assert r.status_code == 404
    assert "does not match" in pc.client.get(f"/passport/{found}/pdf?lang=en").text
    assert pc.client.get(f"/passport/{found}/qr.png").status_code == 200  # the QR still matches


def test_wrong_code_then_right_code(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    code = code_for(pc, HUONG["phone"])
    wrong = "000000" if code != "000000" else "111111"
    r = enter_code(pc, wrong)
    assert r.status_code == 400
    r = enter_code(pc, code)
    assert r.status_code == 303 and r.headers["location"] == "/passport"
