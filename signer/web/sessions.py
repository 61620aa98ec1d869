"""Signed-in citizens, their URL handles and their own access log.

- The session cookie holds 32 random bytes; ``portal_sessions`` keeps only
  their SHA-256 (a stolen table opens no session).
- A certificate's URL handle is HMAC(session secret, UVCI) cut to 128 bits:
  random-looking, different in every session, and resolved only among the
  session's own certificates (a handle from another session, a UVCI or a
  record id in the URL find nothing: 404).
- ``portal_access``: one row per sign-in and download, shown only to the
  citizen it belongs to (by ``citizen_hash``).

    >>> handle("00" * 32, "URN:UVCI:01:VN:X#Y") == handle("00" * 32, "URN:UVCI:01:VN:X#Y")
    True
    >>> len(handle("00" * 32, "URN:UVCI:01:VN:X#Y"))
    32
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from signer.ledger.db import Database
from signer.ledger.store import COLUMNS, Certificate

SESSION_COOKIE = "vndcc_session"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM certificates WHERE citizen_hash = ? ORDER BY id"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def handle(secret: str, uvci: str) -> str:
    return hmac.new(bytes.fromhex(secret), uvci.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Session:
    id_hash: str
    lookup_hash: str
    citizen_hash: str
    secret: str
    expires_at: int


def create(db: Database, *, lookup_hash: str, citizen_hash: str, now: int, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO portal_sessions (id_hash, lookup_hash, citizen_hash, secret, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (digest(token), lookup_hash, citizen_hash, secrets.token_hex(32), now, now + ttl),
    )
    return token


def load(db: Database, token: str | None, now: int) -> Session | None:
    if not token or len(token) > 100:
        return None
    row = db.fetchone(
        "SELECT id_hash, lookup_hash, citizen_hash, secret, expires_at FROM portal_sessions"
        " WHERE id_hash = ? AND ended_at IS NULL AND expires_at > ?",
        (digest(token), now),
    )
    return None if row is None else Session(*row)


def end(db: Database, session: Session, now: int) -> None:
    db.execute("UPDATE portal_sessions SET ended_at = ? WHERE id_hash = ?", (now, session.id_hash))


def certificates(db: Database, session: Session) -> list[Certificate]:
    """The session's own certificates (object-level authorisation starts here)."""
    return [Certificate.from_row(r) for r in db.fetchall(_SELECT, (session.citizen_hash,))]


def resolve(db: Database, session: Session, value: str) -> Certificate | None:
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        return None
    for cert in certificates(db, session):
        if cert.state not in ("reserved", "released") and hmac.compare_digest(handle(session.secret, cert.uvci), value):
            return cert
    return None


def log_access(db: Database, *, citizen_hash: str, action: str, uvci: str | None, network: str,
               agent: str, now: int) -> None:
    db.execute(
        "INSERT INTO portal_access (citizen_hash, at, action, uvci, network, agent) VALUES (?, ?, ?, ?, ?, ?)",
        (citizen_hash, now, action, uvci, network, agent),
    )


def access_rows(db: Database, citizen_hash: str, limit: int = 200) -> list[tuple[int, str, str | None, str, str]]:
    rows = db.fetchall(
        "SELECT at, action, uvci, network, agent FROM portal_access WHERE citizen_hash = ?"
        " ORDER BY at DESC, id DESC LIMIT ?",
        (citizen_hash, limit),
    )
    return [(int(a), str(b), c, str(d), str(e)) for a, b, c, d, e in rows]


def short_agent(user_agent: str | None) -> str:
    """A short browser name for the access log ("Chrome on Android"), never the full string.

    >>> short_agent("Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 Chrome/120.0 Mobile Safari/537.36")
    'Chrome on Android'
    >>> short_agent(None)
    'unknown'
    """
    ua = (user_agent or "")[:512]
    if not ua:
        return "unknown"
    browser = "other"
    for name, marker in (("Edge", "Edg/"), ("Opera", "OPR/"), ("Firefox", "Firefox/"), ("Chrome", "Chrome/"),
                         ("Chrome", "HeadlessChrome/"), ("Safari", "Safari/"), ("curl", "curl/"),
                         ("python", "python-httpx/"), ("python", "testclient")):
        if marker in ua:
            browser = name
            break
    system = ""
    for name, marker in (("Android", "Android"), ("iOS", "iPhone"), ("iOS", "iPad"), ("Windows", "Windows"),
                         ("macOS", "Mac OS X"), ("Linux", "Linux")):
        if marker in ua:
            system = name
            break
    return f"{browser} on {system}" if system else browser
