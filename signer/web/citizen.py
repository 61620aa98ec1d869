"""Citizen pages: look-up, one-time code, passport, own access log, claim code, sign-out.

    GET  /                      look-up form (ID number + date of birth)
    POST /lookup                -> a code to the record's phone(s), or a decoy: same answer
    GET  /code, POST /code      the code -> signed in (/passport)
    POST /code/resend           a new code (60 s cool-down)
    GET  /passport              own certificates: QR, PDF, status
    GET  /passport/{handle}/pdf, /passport/{handle}/qr.png
    GET  /access                own access log
    GET  /claim, POST /claim    claim code + new phone -> a code to that phone
    POST /signout

Server-rendered, no JavaScript; all personal data travels in POST bodies,
never in URLs (uvicorn's access log shows paths only). Every form carries a
signed double-submit CSRF token; every POST checks it. Design and numbers:
docs/portal.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from signer.ledger.store import Certificate
from signer.web import claims, forms, i18n, otp, sessions
from signer.web.app import Portal, portal_of
from signer.web.forms import Refused
from signer.web.keys import birth_date_forms
from signer.web.limits import Limits, RateLimiter
from signer.web.security import client_network
from signer.web.senders import BackgroundSender, make_sender

router = APIRouter(include_in_schema=False)
log = logging.getLogger("signer.web.citizen")

PRE_COOKIE = "__Host-vndcc_pre"  # __Host-: Secure, Path=/, no Domain (no sibling subdomain can plant it)
OTP_COOKIE = "__Host-vndcc_otp"
EXPIRING_DAYS = 30


@dataclass
class Citizen:
    limits: Limits
    limiter: RateLimiter
    sender: BackgroundSender


def on_start(portal: Portal) -> None:
    i18n.check()
    limits = Limits.from_settings(portal.settings.limits)
    limiter = RateLimiter(portal.ledger.db, portal.keys, limits, portal.clock)
    limiter.purge()
    otp.purge(portal.ledger.db, int(portal.clock()))
    sender = make_sender(portal.settings.sender, portal.settings.data_dir, clock=portal.clock,
                         gateway_url=portal.settings.sms_gateway_url)
    portal.extra["citizen"] = Citizen(limits=limits, limiter=limiter, sender=sender)


def on_stop(portal: Portal) -> None:
    citizen = portal.extra.pop("citizen", None)
    if citizen is not None:
        citizen.sender.flush()
        citizen.sender.close()


def citizen_of(portal: Portal) -> Citizen:
    value: Citizen = portal.extra["citizen"]
    return value


# -- per request: language, pre-session, rendering ------------------------------------------


def _valid_token(value: str | None) -> bool:
    """Our cookies' tokens: 43 ASCII ``[A-Za-z0-9_-]`` (``str.isalnum`` let 43 "é" through)."""
    return sessions.valid_token(value)


class Page:
    """The request's language and pre-session (made when missing), and the page renderer."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.portal = portal_of(request)
        query_lang = request.query_params.get("lang")
        self.lang = i18n.language_of(request.cookies, query_lang, self.portal.settings.language)
        self.set_lang = query_lang in i18n.LANGUAGES
        existing = request.cookies.get(PRE_COOKIE)
        self.pre = existing if existing is not None and _valid_token(existing) else secrets.token_urlsafe(32)
        self.new_pre = self.pre != existing
        self.cookies: list[tuple[str, str, int | None, str]] = []

    @property
    def now(self) -> int:
        return int(self.portal.clock())

    def t(self, key: str, **values: object) -> str:
        return i18n.translate(self.lang, key, **values)

    def csrf(self, form: str) -> str:
        return self.portal.keys.csrf_token(self.pre, form)

    def check_csrf(self, form: str, values: dict[str, str]) -> None:
        cookie = self.request.cookies.get(PRE_COOKIE)
        sent = values.get("csrf", "")
        if not _valid_token(cookie) or not hmac.compare_digest(
            self.portal.keys.csrf_token(cookie or "", form).encode(), sent.encode("utf-8", "replace")
        ):
            raise Refused(403, "error.csrf")

    async def form(self, name: str, fields: tuple[str, ...]) -> dict[str, str]:
        """The POSTed form: bounded and well-formed, its CSRF token checked first, then its fields."""
        values = await forms.read_form(self.request)
        self.check_csrf(name, values)
        if any(f not in values for f in fields):
            raise Refused(400, "error.bad_form")
        return values

    def rotate_pre(self) -> None:
        self.pre, self.new_pre = secrets.token_urlsafe(32), True

    def cookie(self, name: str, value: str, *, max_age: int | None = None, samesite: str = "strict") -> None:
        self.cookies.append((name, value, max_age, samesite))

    def finish(self, response: Response) -> Response:
        if self.new_pre:
            response.set_cookie(PRE_COOKIE, self.pre, httponly=True, secure=True, samesite="strict", path="/")
        if self.set_lang:
            response.set_cookie(i18n.LANG_COOKIE, self.lang, max_age=365 * 86400, httponly=True, secure=True,
                                samesite="lax", path="/")
        for name, value, max_age, samesite in self.cookies:
            if value:
                response.set_cookie(name, value, max_age=max_age, httponly=True, secure=True,
                                    samesite=samesite, path="/")  # type: ignore[arg-type]
            else:
                response.delete_cookie(name, httponly=True, secure=True, samesite=samesite, path="/")  # type: ignore[arg-type]
        return response

    def render(self, name: str, *, status: int = 200, here: str = "/", **values: Any) -> Response:
        context = {"t": self.t, "csrf": self.csrf, "lang": self.lang,
                   "other_lang": "en" if self.lang == "vi" else "vi", "here": here,
                   "signed_in": values.pop("signed_in", False), **values}
        response = self.portal.templates.TemplateResponse(self.request, name, context, status_code=status)
        return self.finish(response)

    def redirect(self, to: str) -> Response:
        return self.finish(RedirectResponse(to, status_code=303))

    def refused(self, err: Refused) -> Response:
        message = self.t(err.key, **err.values)
        return self.render("message.html", status=err.status, message=message, error=True,
                           claim_link=err.key in ("error.locked", "code.dead", "claim.wrong"))


Handler = Callable[[Page], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Route wrapper: one :class:`Page` per request; a :class:`Refused` becomes its page."""

    async def route(request: Request) -> Response:
        p = Page(request)
        try:
            return await handler(p)
        except Refused as err:
            return p.refused(err)

    route.__name__, route.__doc__ = handler.__name__, handler.__doc__
    return route


def _network(p: Page) -> str:
    return client_network(p.request.client.host if p.request.client else None)


def _binding(pre: str) -> str:
    return hashlib.sha256(pre.encode("ascii")).hexdigest()


# -- look-up and codes --------------------------------------------------------------------


@router.get("/")
@page
async def lookup_form(p: Page) -> Response:
    return p.render("lookup.html", here="/")


HolderRow = tuple[str, str, str, str, str | None, str | None]


def _holders(p: Page, lookup_hashes: list[str]) -> list[HolderRow]:
    marks = ", ".join("?" * len(lookup_hashes))
    rows = p.portal.ledger.db.fetchall(
        f"SELECT lookup_hash, citizen_hash, centre, record_id, phone_enc, phone_hash FROM holders"
        f" WHERE lookup_hash IN ({marks}) ORDER BY centre, record_id",
        lookup_hashes,
    )
    return [tuple(r) for r in rows]


@dataclass(frozen=True)
class Target:
    """One distinct phone of a look-up's holder rows and the rows that carry it."""

    number: str
    phone_hash: str
    rows: list[list[str]]  # [[centre, record_id], ...]


def _targets(p: Page, rows: list[HolderRow]) -> list[Target]:
    by_phone: dict[str, Target] = {}
    for _lookup, _citizen, centre, record_id, phone_enc, phone_hash in rows:
        if not (phone_enc and phone_hash):
            continue
        number = p.portal.keys.open_phone(phone_enc, centre, record_id)
        if not number:
            continue
        target = by_phone.setdefault(phone_hash, Target(number, phone_hash, []))
        target.rows.append([centre, record_id])
    return list(by_phone.values())


def _lock_key(p: Page, ident: str, dob: str) -> str:
    """The look-up's bucket for the lock and the cool-downs: ID + birth YEAR, computed
    from what was typed, so a real look-up (whatever precision its record holds)
    and a decoy land in buckets made the same way and lock alike."""
    return p.portal.keys.rate_bucket("lookup", f"{ident}\x1f{dob[:4]}")


def _cool_down(p: Page, lock_key: str) -> None:
    """The resend cool-down of this bucket: a second look-up or resend within it is a 429."""
    citizen = citizen_of(p.portal)
    last = citizen.limiter.last_send(lock_key)
    wait = citizen.limits.resend_seconds - (p.now - last) if last is not None else 0
    if wait > 0:
        raise Refused(429, "code.wait", seconds=wait)


async def _send_code(p: Page, *, lookup_hash: str | None, lookups: list[str], lock_key: str,
                     targets: list[Target], cool_down: bool = False) -> None:
    """Makes the challenge (decoy when ``lookup_hash`` is None), sets its cookie,
    queues one SMS to each distinct phone its limit allows, each phone its own code;
    the challenge records which holder rows each code went to (``sent_to``)."""
    citizen = citizen_of(p.portal)
    until = citizen.limiter.locked_until(lock_key)
    if until is not None:
        raise Refused(429, "error.locked", minutes=max(1, math.ceil((until - p.now) / 60)))
    if cool_down:
        _cool_down(p, lock_key)
    going = [t for t in targets if citizen.limiter.phone_allows(t.phone_hash)]
    sent_to = [{"phone": t.phone_hash, "rows": t.rows} for t in going]
    challenge = await run_in_threadpool(
        otp.prepare, p.portal.keys, binding=_binding(p.pre), lookup_hash=lookup_hash, lookups=lookups,
        sent_to=sent_to, lock_key=lock_key, now=p.now, ttl=p.portal.settings.otp_ttl,
    )
    otp.store(p.portal.ledger.db, challenge)
    if secrets.randbelow(500) == 0:  # now and then: old rate hits and challenges go
        citizen.limiter.purge()
        otp.purge(p.portal.ledger.db, p.now)
    citizen.limiter.record("send", lock_key)
    for target, code_ in zip(going, challenge.codes, strict=False):
        citizen.sender.send(target.number, p.t("sms.text", code=code_))
    p.cookie(OTP_COOKIE, challenge.token, max_age=p.portal.settings.otp_ttl)


def _owned_rows(p: Page, ch: otp.Challenge, slot: dict[str, Any]) -> list[sessions.HolderRow]:
    """The holder rows of the phone whose code was typed, as they still are: same
    look-up, same phone (a phone changed meanwhile by a claim code drops its row)."""
    db, out = p.portal.ledger.db, []
    for centre, record_id in slot.get("rows", []):
        row = db.fetchone("SELECT citizen_hash, lookup_hash, phone_hash FROM holders WHERE centre = ? AND record_id = ?",
                          (centre, record_id))
        if row is not None and row[1] in ch.lookups and row[2] == slot.get("phone"):
            out.append((str(centre), str(record_id), str(row[0])))
    return out


@router.post("/lookup")
@page
async def lookup(p: Page) -> Response:
    values = await p.form("lookup", ("csrf", "id_number", "birth_date"))
    citizen = citizen_of(p.portal)
    if citizen.limiter.network_over("lookup", _network(p)):
        raise Refused(429, "error.rate")
    ident = forms.parse_id(values["id_number"])
    dob = forms.birth_date(values["birth_date"])
    keys = p.portal.keys
    hashes = [keys.lookup_hash(ident, form) for form in birth_date_forms(dob)]
    hashes += [hashes[0]] * (3 - len(hashes))  # one query shape whatever was typed
    rows = _holders(p, hashes)
    matched = rows[0][0] if rows else None
    lookups = sorted({str(r[0]) for r in rows})
    await _send_code(p, lookup_hash=matched, lookups=lookups, lock_key=_lock_key(p, ident, dob),
                     targets=_targets(p, rows), cool_down=True)
    return p.redirect("/code")


@router.get("/code")
@page
async def code_form(p: Page) -> Response:
    return p.render("code.html", here="/code")


@router.post("/code")
@page
async def code(p: Page) -> Response:
    values = await p.form("code", ("csrf", "code"))
    citizen = citizen_of(p.portal)
    if citizen.limiter.network_over("code", _network(p)):
        raise Refused(429, "error.rate")
    typed = forms.otp_code(values["code"])
    db, now = p.portal.ledger.db, p.now
    token = p.request.cookies.get(OTP_COOKIE, "")
    ch = otp.load(db, token) if _valid_token(token) else None
    max_attempts = citizen.limits.otp_attempts
    if ch is None or not otp.usable(ch, binding=_binding(p.pre), now=now, max_attempts=max_attempts):
        raise Refused(400, "code.dead")
    if not otp.count_attempt(db, ch, now=now, max_attempts=max_attempts):
        raise Refused(400, "code.dead")
    slot = await run_in_threadpool(otp.code_matches, p.portal.keys, ch, typed)
    if slot is None or ch.lookup_hash is None:
        citizen.limiter.record("fail", ch.lock_key)
        return p.render("code.html", status=400, here="/code", error=p.t("code.wrong"))
    if not otp.consume(db, ch, now):
        raise Refused(400, "code.dead")
    owned = _owned_rows(p, ch, slot)
    if not owned:  # the holder rows went away or changed meanwhile
        raise Refused(400, "code.dead")
    token = sessions.create(db, rows=owned, now=now, ttl=p.portal.settings.session_ttl)
    sessions.log_access(db, rows=owned, action="sign_in", uvci=None, network=_network(p),
                        agent=sessions.short_agent(p.request.headers.get("user-agent")), now=now)
    p.cookie(sessions.SESSION_COOKIE, token, max_age=p.portal.settings.session_ttl, samesite="lax")
    p.cookie(OTP_COOKIE, "")
    p.rotate_pre()
    return p.redirect("/passport")


@router.post("/code/resend")
@page
async def resend(p: Page) -> Response:
    await p.form("resend", ("csrf",))
    citizen = citizen_of(p.portal)
    if citizen.limiter.network_over("lookup", _network(p)):
        raise Refused(429, "error.rate")
    db = p.portal.ledger.db
    token = p.request.cookies.get(OTP_COOKIE, "")
    ch = otp.load(db, token) if _valid_token(token) else None
    if ch is None or ch.used_at is not None or not hmac.compare_digest(ch.binding, _binding(p.pre)):
        raise Refused(400, "code.dead")
    _cool_down(p, ch.lock_key)
    rows = _holders(p, ch.lookups) if ch.lookups else []
    await _send_code(p, lookup_hash=ch.lookup_hash, lookups=ch.lookups, lock_key=ch.lock_key,
                     targets=_targets(p, rows))
    otp.retire(db, ch, p.now)
    return p.redirect("/code")


# -- signed in ----------------------------------------------------------------------------


def _session(p: Page) -> sessions.Session:
    session = sessions.load(p.portal.ledger.db, p.request.cookies.get(sessions.SESSION_COOKIE), p.now)
    if session is None:
        raise Refused(401, "error.signin")
    return session


def _day(epoch: int | None) -> str:
    return "" if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%d/%m/%Y")


def _view(p: Page, session: sessions.Session, cert: Certificate, by_uvci: dict[str, Certificate]) -> dict[str, Any]:
    now = p.now
    if cert.state == "revoked":
        status = "revoked"
    elif cert.state == "superseded":
        status = "superseded"
    elif cert.exp is not None and cert.exp <= now:
        status = "expired"
    elif cert.exp is not None and cert.exp - now < EXPIRING_DAYS * 86400:
        status = "expiring"
    else:
        status = "valid"
    newer = by_uvci.get(cert.superseded_by or "")
    return {
        "handle": sessions.handle(session.secret, cert.uvci),
        "uvci": cert.uvci,
        "centre": cert.centre,
        "issued": _day(cert.iat),
        "expires": _day(cert.exp),
        "status": status,
        "status_text": p.t(f"status.{status}"),
        "downloadable": cert.state == "written",
        "reissued": _day(newer.iat) if newer is not None else "",
        "reason": cert.revoked_reason or "",
    }


@router.get("/passport")
@page
async def passport(p: Page) -> Response:
    session = _session(p)
    certs = [c for c in sessions.certificates(p.portal.ledger.db, session)
             if c.state in ("written", "superseded", "revoked")]
    by_uvci = {c.uvci: c for c in certs}
    order = {"written": 0, "revoked": 1, "superseded": 2}
    certs.sort(key=lambda c: (order[c.state], -(c.iat or 0)))
    views = [_view(p, session, c, by_uvci) for c in certs]
    return p.render("passport.html", here="/passport", signed_in=True, certificates=views)


_FILES = {"pdf": (".pdf", "application/pdf", "pdf"), "qr.png": (".png", "image/png", "qr")}


@router.get("/passport/{handle}/{kind}")
@page
async def download(p: Page) -> Response:
    session = _session(p)
    handle = p.request.path_params.get("handle", "")
    kind = p.request.path_params.get("kind", "")
    db = p.portal.ledger.db
    cert = sessions.resolve(db, session, handle)
    if kind not in _FILES or cert is None or cert.state != "written":
        raise Refused(404, "error.not_found")
    suffix, media, action = _FILES[kind]
    entry = next((f for f in cert.files if f.name.endswith(suffix) and not f.name.endswith(".hc1.txt")), None)
    if entry is None:
        raise Refused(404, "error.not_found")
    path = Path(cert.out_dir) / entry.name
    try:
        data = path.read_bytes() if path.stat().st_size == entry.size else b""
    except OSError:
        data = b""
    if not data or not hmac.compare_digest(hashlib.sha256(data).hexdigest(), entry.sha256):
        log.warning("portal: a certificate file does not match the ledger (%s)", cert.uvci)
        raise Refused(404, "error.file_damaged")
    owner = [r for r in session.rows if r[0] == cert.centre and r[1] == cert.record_id]
    sessions.log_access(db, rows=owner, action=action, uvci=cert.uvci, network=_network(p),
                        agent=sessions.short_agent(p.request.headers.get("user-agent")), now=p.now)
    headers = {"cache-control": "no-store"}
    if kind == "pdf":
        headers["content-disposition"] = f'attachment; filename="vaccine-passport-{_day(cert.iat).replace("/", "-")}.pdf"'
    return p.finish(Response(data, media_type=media, headers=headers))


@router.get("/access")
@page
async def access(p: Page) -> Response:
    session = _session(p)
    rows = [
        {"when": dt.datetime.fromtimestamp(at, dt.UTC).strftime("%d/%m/%Y %H:%M"),
         "what": p.t(f"action.{action}") if f"action.{action}" in i18n.MESSAGES else action,
         "uvci": uvci or "", "network": network, "agent": agent}
        for at, action, uvci, network, agent in sessions.access_rows(p.portal.ledger.db, session)
    ]
    return p.render("access.html", here="/access", signed_in=True, rows=rows)


@router.post("/signout")
@page
async def signout(p: Page) -> Response:
    await p.form("signout", ("csrf",))
    session = sessions.load(p.portal.ledger.db, p.request.cookies.get(sessions.SESSION_COOKIE), p.now)
    if session is not None:
        sessions.end(p.portal.ledger.db, session, p.now)
    p.cookie(sessions.SESSION_COOKIE, "", samesite="lax")
    p.rotate_pre()
    return p.render("message.html", message=p.t("signout.done"))


# -- claim codes --------------------------------------------------------------------------


@router.get("/claim")
@page
async def claim_form(p: Page) -> Response:
    return p.render("claim.html", here="/claim")


@router.post("/claim")
@page
async def claim(p: Page) -> Response:
    values = await p.form("claim", ("csrf", "id_number", "birth_date", "claim_code", "phone"))
    citizen = citizen_of(p.portal)
    if citizen.limiter.network_over("claim", _network(p)):
        raise Refused(429, "error.rate")
    ident = forms.parse_id(values["id_number"])
    dob = forms.birth_date(values["birth_date"])
    number = forms.phone(values["phone"])
    db, keys, now = p.portal.ledger.db, p.portal.keys, p.now
    found = claims.find(db, keys, values["claim_code"], now)
    holder = None
    if found is not None:
        holder = db.fetchone("SELECT lookup_hash, citizen_hash FROM holders WHERE centre = ? AND record_id = ?",
                             (found[1], found[2]))
    hashes = {keys.lookup_hash(ident, form) for form in birth_date_forms(dob)}
    if found is None or holder is None or str(holder[0]) not in hashes:
        raise Refused(400, "claim.wrong")
    code_hash, centre, record_id = found
    lookup_hash, citizen_hash = str(holder[0]), str(holder[1])
    phone_hash = keys.phone_hash(number)
    with db.transaction():
        if not claims.use(db, code_hash, now):
            raise Refused(400, "claim.wrong")
        db.execute(
            "UPDATE holders SET phone_enc = ?, phone_hash = ?, phone_source = 'claim', updated_at = ?"
            " WHERE centre = ? AND record_id = ?",
            (keys.seal_phone(number, centre, record_id), phone_hash,
             dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), centre, record_id),
        )
        sessions.log_access(db, rows=[(centre, record_id, citizen_hash)], action="phone_set", uvci=None,
                            network=_network(p), agent=sessions.short_agent(p.request.headers.get("user-agent")),
                            now=now)
    lock_key = _lock_key(p, ident, dob)
    citizen.limiter.clear(lock_key)  # the owner proved themselves: the look-up's lock is undone
    # the code goes to the new phone and opens the claimed holder row only
    await _send_code(p, lookup_hash=lookup_hash, lookups=[lookup_hash], lock_key=lock_key,
                     targets=[Target(number, phone_hash, [[centre, record_id]])])
    return p.redirect("/code")
