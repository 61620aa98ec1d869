"""Signed-in citizens, their URL handles and their own access log.

- The session cookie holds 32 random bytes; ``portal_sessions`` keeps only
  their SHA-256 (a stolen table opens no session).
- A session owns the holder rows (centre, record id, citizen hash) whose
  phone received the code that opened it, and sees only their certificates:
  never every certificate with the same ID (another holder row with the same
  ID, e.g. a mistyped or planted record, has its own phone and its own code).
- A certificate's URL handle is HMAC(session secret, UVCI) cut to 128 bits:
  random-looking, different in every session, and resolved only among the
  session's own certificates (a handle from another session, a UVCI or a
  record id in the URL find nothing: 404).
- ``portal_access``: one row per sign-in and download, per holder row, shown
  only to sessions that own that row.

    >>> handle("00" * 32, "URN:UVCI:01:VN:X#Y") == handle("00" * 32, "URN:UVCI:01:VN:X#Y")
    True
    >>> len(handle("00" * 32, "URN:UVCI:01:VN:X#Y"))
    32
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass

from signer.ledger.db import Database
from signer.ledger.store import COLUMNS, Certificate

SESSION_COOKIE = "__Host-vndcc_session"
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM certificates WHERE "
#: a holder row a session owns: (centre, record_id, citizen_hash)
HolderRow = tuple[str, str, str]
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


def valid_token(value: str | None) -> bool:
    """A cookie token as we make them (``secrets.token_urlsafe(32)``): 43 ASCII
    letters, digits, ``-`` or ``_``; anything else is treated as absent.

    >>> valid_token("A" * 43), valid_token("\u00e9" * 43), valid_token(None)
    (True, False, False)
    """
    return value is not None and _TOKEN.fullmatch(value) is not None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def handle(secret: str, uvci: str) -> str:
    return hmac.new(bytes.fromhex(secret), uvci.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Session:
    id_hash: str
    rows: tuple[HolderRow, ...]
    secret: str
    expires_at: int


def create(db: Database, *, rows: list[HolderRow], now: int, ttl: int) -> str:
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO portal_sessions (id_hash, holder_rows, secret, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        (digest(token), json.dumps([list(r) for r in rows]), secrets.token_hex(32), now, now + ttl),
    )
    return token


def load(db: Database, token: str | None, now: int) -> Session | None:
    if not valid_token(token):
        return None
    row = db.fetchone(
        "SELECT id_hash, holder_rows, secret, expires_at FROM portal_sessions"
        " WHERE id_hash = ? AND ended_at IS NULL AND expires_at > ?",
        (digest(token or ""), now),
    )
    if row is None:
        return None
    rows = tuple((str(c), str(r), str(h)) for c, r, h in json.loads(row[1]))
    return Session(str(row[0]), rows, str(row[2]), int(row[3]))


def end(db: Database, session: Session, now: int) -> None:
    db.execute("UPDATE portal_sessions SET ended_at = ? WHERE id_hash = ?", (now, session.id_hash))


def _rows_where(rows: tuple[HolderRow, ...]) -> tuple[str, list[str]]:
    """``(centre = ? AND record_id = ? AND citizen_hash = ?) OR ...`` and its values."""
    if not rows:
        return "1 = 0", []
    clause = " OR ".join(["(centre = ? AND record_id = ? AND citizen_hash = ?)"] * len(rows))
    return f"({clause})", [v for row in rows for v in row]


def certificates(db: Database, session: Session) -> list[Certificate]:
    """The session's own certificates: those of its holder rows (object-level
    authorisation starts here), never all certificates of the ID."""
    where, values = _rows_where(session.rows)
    return [Certificate.from_row(r) for r in db.fetchall(_SELECT + where + " ORDER BY id", values)]


def resolve(db: Database, session: Session, value: str) -> Certificate | None:
    if not re.fullmatch(r"[0-9a-f]{32}", value):
        return None
    for cert in certificates(db, session):
        if cert.state not in ("reserved", "released") and hmac.compare_digest(handle(session.secret, cert.uvci), value):
            return cert
    return None


def log_access(db: Database, *, rows: list[HolderRow] | tuple[HolderRow, ...], action: str, uvci: str | None,
               network: str, agent: str, now: int) -> None:
    """One access row per holder row concerned (a sign-in: each row of the session)."""
    db.executemany(
        "INSERT INTO portal_access (centre, record_id, citizen_hash, at, action, uvci, network, agent)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(centre, record_id, citizen, now, action, uvci, network, agent) for centre, record_id, citizen in rows],
    )


def access_rows(db: Database, session: Session, limit: int = 200) -> list[tuple[int, str, str | None, str, str]]:
    """The access log of the session's holder rows only (a sign-in that covered
    several rows shows once)."""
    where, values = _rows_where(session.rows)
    rows = db.fetchall(
        f"SELECT at, action, uvci, network, agent, MAX(id) FROM portal_access WHERE {where}"
        " GROUP BY at, action, uvci, network, agent ORDER BY at DESC, MAX(id) DESC LIMIT ?",
        (*values, limit),
    )
    return [(int(a), str(b), c, str(d), str(e)) for a, b, c, d, e, _ in rows]


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
