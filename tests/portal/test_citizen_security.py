"""CSRF, security headers and cookie flags on every page, hostile input: a 4xx
page, never a 5xx or a traceback."""

from __future__ import annotations

import pytest

from tests.portal.citizen_helpers import (
    HUONG,
    cookie_flags,
    csrf_tokens,
    handles,
    lookup,
    sign_in,
    token,
)
from tests.portal.conftest import PortalClient

FORMS = {
    "/lookup": ("/", {"id_number": HUONG["id_number"], "birth_date": HUONG["birth_date"]}),
    "/code": ("/code", {"code": "123456"}),
    "/code/resend": ("/code", {}),
    "/claim": ("/claim", {"id_number": "1", "birth_date": "1", "claim_code": "1", "phone": "1"}),
    "/signout": ("/passport", {}),
}


@pytest.mark.parametrize("action", sorted(FORMS))
def test_post_without_or_with_a_wrong_csrf_token_is_403(portal_client: PortalClient, action: str) -> None:
    pc = portal_client
    sign_in(pc, HUONG) if action == "/signout" else pc.client.get("/")
    page, fields = FORMS[action]
    good = token(pc, page, action)
    for csrf in (None, "", "x" * 43, good[:-1] + ("A" if good[-1] != "A" else "B"),
                 token(pc, "/", "/lookup") if action != "/lookup" else token(pc, "/claim", "/claim")):
        data = dict(fields) if csrf is None else {**fields, "csrf": csrf}
        r = pc.client.post(action, data=data, follow_redirects=False)
        assert r.status_code == 403, (action, csrf)
        assert "<form" not in r.text or action == "/signout"
    # the right token but no pre-session cookie (another site's form posting blind)
    pc.client.cookies.delete("__Host-vndcc_pre")
    r = pc.client.post(action, data={**fields, "csrf": good}, follow_redirects=False)
    assert r.status_code == 403
    assert pc.new_messages() == []


def test_security_headers_and_cookie_flags_on_every_page(portal_client: PortalClient) -> None:
    pc = portal_client
    first = pc.client.get("/")
    flags = cookie_flags(first)
    assert "__Host-vndcc_pre" in flags
    for name, header in flags.items():
        assert "httponly" in header and "secure" in header and "samesite=strict" in header and "path=/" in header, name
    # __Host- (review item 6): a sibling subdomain cannot plant a known pre-session cookie
    # (the browser refuses a __Host- cookie with a Domain, from http, or with another Path)
    assert flags["__Host-vndcc_pre"].startswith("__host-vndcc_pre=") and "domain=" not in flags["__Host-vndcc_pre"]
    r = lookup(pc, HUONG)
    otp_cookie = cookie_flags(r)["__Host-vndcc_otp"]
    assert "httponly" in otp_cookie and "secure" in otp_cookie and "samesite=strict" in otp_cookie
    pc.clock.advance(61)  # the look-up's resend cool-down
    html = sign_in(pc, HUONG)
    handle = handles(html)[0]
    pages = ["/", "/code", "/claim", "/passport", "/access", f"/passport/{handle}/pdf", f"/passport/{handle}/qr.png",
             "/passport/" + "0" * 32 + "/pdf", "/static/portal.css", "/?lang=en", "/nope"]
    for path in pages:
        r = pc.client.get(path)
        assert r.status_code < 500, path
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, path
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["x-frame-options"] == "DENY", path
        assert r.headers["referrer-policy"] == "no-referrer", path
        if path != "/static/portal.css":
            assert r.headers["cache-control"] == "no-store", path
        if r.headers.get("content-type", "").startswith("text/html"):
            assert "<script" not in r.text and "style=" not in r.text and "<style" not in r.text, path
    session_cookie = next(h for h in pc.client.cookies.jar if h.name == "__Host-vndcc_session")
    assert session_cookie.secure and session_cookie.has_nonstandard_attr("HttpOnly")


def test_sign_in_sets_session_cookie_flags_and_rotates_the_pre_session(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    before = pc.client.cookies.get("__Host-vndcc_pre")
    from tests.portal.citizen_helpers import code_for, enter_code

    r = enter_code(pc, code_for(pc, HUONG["phone"]))
    flags = cookie_flags(r)
    session = flags["__Host-vndcc_session"]
    assert "httponly" in session and "secure" in session and "samesite=lax" in session and "max-age=1800" in session
    assert "__Host-vndcc_pre" in flags and pc.client.cookies.get("__Host-vndcc_pre") != before
    assert len(pc.client.cookies.get("__Host-vndcc_session") or "") == 43  # 32 random bytes, base64url


def test_hsts_only_with_https(demo_batch: object, tmp_path: object) -> None:
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from signer.web.app import create_app
    from tests.portal.conftest import Clock, copy_ledger

    ledger = copy_ledger(demo_batch, tmp_path / "l")  # type: ignore[arg-type, operator]
    from signer.web.settings import PortalSettings

    settings = PortalSettings(ledger=str(ledger), data_dir=tmp_path / "d")  # type: ignore[operator]
    with TestClient(create_app(settings, clock=Clock(0)), base_url="https://testserver") as c:
        assert "strict-transport-security" not in c.get("/").headers
    with TestClient(create_app(replace(settings, https=True), clock=Clock(0)), base_url="https://testserver") as c:
        assert c.get("/").headers["strict-transport-security"].startswith("max-age=63072000")


HOSTILE: list[tuple[str, bytes | None, str]] = [
    ("huge field", b"id_number=" + b"9" * 5000 + b"&birth_date=1985", "application/x-www-form-urlencoded"),
    ("huge body", b"a=" + b"b" * 200_000, "application/x-www-form-urlencoded"),
    ("non-UTF-8 raw", b"id_number=\xff\xfe&birth_date=1985", "application/x-www-form-urlencoded"),
    ("non-UTF-8 escaped", b"id_number=%ff%fe%80&birth_date=1985", "application/x-www-form-urlencoded"),
    ("missing fields", b"", "application/x-www-form-urlencoded"),
    ("json body", b'{"id_number": "1"}', "application/json"),
    ("multipart", b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\nb\r\n--x--", "multipart/form-data; boundary=x"),
    ("repeated", b"id_number=1&id_number=2&birth_date=1985", "application/x-www-form-urlencoded"),
    ("NUL", b"id_number=07918500%001234&birth_date=1985", "application/x-www-form-urlencoded"),
    ("many fields", b"&".join(b"f%d=1" % i for i in range(500)), "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize("name,body,ctype", HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("action", ["/lookup", "/code", "/claim"])
def test_hostile_bodies_get_a_4xx_page(portal_client: PortalClient, name: str, body: bytes, ctype: str,
                                       action: str) -> None:
    pc = portal_client
    pc.client.get("/")
    r = pc.client.post(action, content=body, headers={"content-type": ctype}, follow_redirects=False)
    assert 400 <= r.status_code < 500, (name, r.status_code)
    assert r.headers["content-type"].startswith("text/html")
    assert "Traceback" not in r.text


BAD_VALUES = [
    ({"id_number": "12", "birth_date": "14/03/1985"}, "error.bad_id"),
    ({"id_number": "<script>alert(1)</script>", "birth_date": "14/03/1985"}, "error.bad_id"),
    ({"id_number": "079185001234", "birth_date": "31/02/1985"}, "error.bad_dob"),
    ({"id_number": "079185001234", "birth_date": "yesterday"}, "error.bad_dob"),
    ({"id_number": "079185001234", "birth_date": "14/03/1785"}, "error.bad_dob"),
    ({"id_number": "0791850012\u0301", "birth_date": "1985"}, "error.bad_id"),
]


@pytest.mark.parametrize("fields,key", BAD_VALUES)
def test_bad_values_get_a_clear_message(portal_client: PortalClient, fields: dict[str, str], key: str) -> None:
    pc = portal_client
    page = pc.client.get("/?lang=en")
    r = pc.client.post("/lookup", data={"csrf": csrf_tokens(page.text)["/lookup"], **fields}, follow_redirects=False)
    from signer.web.i18n import translate

    assert r.status_code == 400
    assert translate("en", key) in r.text.replace("&#39;", "'")
    assert "<script>alert" not in r.text


def test_bad_code_and_phone_messages(portal_client: PortalClient) -> None:
    pc = portal_client
    lookup(pc, HUONG)
    r = pc.client.post("/code", data={"csrf": token(pc, "/code", "/code"), "code": "12ab56"})
    assert r.status_code == 400 and "6" in r.text
    r = pc.client.post("/claim", data={"csrf": token(pc, "/claim", "/claim"), "id_number": HUONG["id_number"],
                                       "birth_date": "1985", "claim_code": "x", "phone": "12"})
    assert r.status_code == 400
    from signer.web.i18n import translate

    assert translate("vi", "error.bad_phone") in r.text


def test_unknown_handle_shapes_are_404_not_5xx(portal_client: PortalClient) -> None:
    pc = portal_client
    sign_in(pc, HUONG)
    for path in ("/passport/%00/pdf", "/passport/" + "g" * 32 + "/pdf", "/passport/" + "a" * 5000 + "/pdf",
                 "/passport/../../etc/passwd", "/passport/x/qr.png", "/passport/" + "0" * 32 + "/hc1.txt"):
        r = pc.client.get(path)
        assert r.status_code in (404, 400), path
