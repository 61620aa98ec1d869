"""One-time codes (OWASP ASVS 5, V2.7): 6 digits from :mod:`secrets`, stored
only as scrypt (n=2**14, r=8, p=1, 16-byte salt) of the code peppered with a
server key and bound to its challenge; valid ``otp_ttl`` (5 minutes), single
use, at most ``otp_attempts`` tries, bound to the browser that asked (the
challenge's ``binding`` is SHA-256 of its pre-session cookie).

    >>> salt = bytes(16)
    >>> slow_hash(b"pepper", salt) == slow_hash(b"pepper", salt)
    True

A look-up that matched nothing gets a *decoy* challenge: same work, same
response, a code nobody received (``lookup_hash`` NULL), so a wrong code on it
behaves like any wrong code.

**One code per phone.** When a look-up's holder rows have several phones, each
phone gets its own code, and the code typed says which phone read it: the
session then gets only the holder rows of that phone (``sent_to``), never all
rows with the same ID. With ``n`` phones the codes are ``core * n + slot`` for
one random ``core`` below ``10**6 // n``: one scrypt (of the core) per
challenge and per attempt whatever ``n`` is, so the time says nothing about
the phones. A guess hits one of the ``n`` codes with probability about
``n / 10**6``, as with ``n`` independent codes. Whoever reads one phone's code
can work out the others', but a code works only in the browser that asked
(``binding``), and there it grants only the rows of the phone whose code it is.

    >>> codes_of(41, 3)
    ['000123', '000124', '000125']
    >>> slot_of("000124", 3), slot_of("000124", 1)
    ((41, 1), (124, 0))
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from signer.ledger.db import Database
from signer.web.keys import PortalKeys

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
CODE_DIGITS = 6


def new_core(slots: int) -> int:
    """The random ``core`` of a challenge with ``slots`` phones (``secrets``, uniform
    below ``10**6 // slots``): its codes are :func:`codes_of` ``(core, slots)``."""
    return secrets.randbelow(10**CODE_DIGITS // slots)


def codes_of(core: int, slots: int) -> list[str]:
    return [f"{core * slots + i:0{CODE_DIGITS}d}" for i in range(slots)]


def slot_of(code: str, slots: int) -> tuple[int, int]:
    """(core, slot) of a typed code."""
    value = int(code)
    return value // slots, value % slots


def _peppered(keys: PortalKeys, cid: str, core: int, slots: int) -> bytes:
    return keys.otp_pepper(cid, f"{core}/{slots}")


def slow_hash(peppered: bytes, salt: bytes) -> bytes:
    return hashlib.scrypt(peppered, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32)


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class NewChallenge:
    """What :func:`prepare` makes off the event loop (the scrypt), inserted by :func:`store`."""

    token: str  # the challenge cookie's value
    codes: list[str]  # one per slot of ``sent_to`` (at least one)
    row: tuple[object, ...]


def prepare(keys: PortalKeys, *, binding: str, lookup_hash: str | None, lookups: list[str],
            sent_to: list[dict[str, Any]], lock_key: str, now: int, ttl: int) -> NewChallenge:
    """``sent_to``: one slot per phone that will get a code, ``{"phone": phone_hash,
    "rows": [[centre, record_id], ...]}``; empty for a decoy or no phone."""
    token = secrets.token_urlsafe(32)
    cid = token_id(token)
    slots = max(1, len(sent_to))
    core = new_core(slots)
    salt = secrets.token_bytes(16)
    digest = slow_hash(_peppered(keys, cid, core, slots), salt)
    row = (cid, binding, lookup_hash, json.dumps(lookups), json.dumps(sent_to), lock_key, digest.hex(), salt.hex(),
           now, now + ttl)
    return NewChallenge(token=token, codes=codes_of(core, slots), row=row)


def store(db: Database, challenge: NewChallenge) -> None:
    db.execute(
        "INSERT INTO otp_challenges (id, binding, lookup_hash, lookups, sent_to, lock_key, code_hash, salt,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        challenge.row,
    )


@dataclass(frozen=True)
class Challenge:
    id: str
    binding: str
    lookup_hash: str | None
    lookups: list[str]
    sent_to: list[dict[str, Any]]
    lock_key: str
    code_hash: str
    salt: str
    created_at: int
    expires_at: int
    attempts: int
    used_at: int | None


def load(db: Database, token: str) -> Challenge | None:
    row = db.fetchone(
        "SELECT id, binding, lookup_hash, lookups, sent_to, lock_key, code_hash, salt, created_at, expires_at,"
        " attempts, used_at FROM otp_challenges WHERE id = ?",
        (token_id(token),),
    )
    if row is None:
        return None
    cid, binding, lookup_hash, lookups, sent_to, *rest = row
    return Challenge(cid, binding, lookup_hash, json.loads(lookups), json.loads(sent_to), *rest)


def usable(ch: Challenge, *, binding: str, now: int, max_attempts: int) -> bool:
    return (
        hmac.compare_digest(ch.binding, binding)
        and ch.used_at is None
        and now < ch.expires_at
        and ch.attempts < max_attempts
    )


def code_matches(keys: PortalKeys, ch: Challenge, code: str) -> dict[str, Any] | None:
    """The slow part (run in a thread): the slot of ``sent_to`` whose code this is,
    or ``None`` (a wrong code, or a code that went to no phone)."""
    slots = max(1, len(ch.sent_to))
    core, slot = slot_of(code, slots)
    digest = slow_hash(_peppered(keys, ch.id, core, slots), bytes.fromhex(ch.salt))
    if not hmac.compare_digest(digest.hex(), ch.code_hash) or slot >= len(ch.sent_to):
        return None
    found: dict[str, Any] = ch.sent_to[slot]
    return found


def count_attempt(db: Database, ch: Challenge, *, now: int, max_attempts: int) -> bool:
    """Takes one attempt before the slow check, atomically: concurrent guesses
    cannot go past ``max_attempts``. ``False`` when none was left."""
    return db.execute(
        "UPDATE otp_challenges SET attempts = attempts + 1"
        " WHERE id = ? AND attempts < ? AND used_at IS NULL AND expires_at > ?",
        (ch.id, max_attempts, now),
    ) == 1


def consume(db: Database, ch: Challenge, now: int) -> bool:
    """Single use: only one request can mark it used."""
    return db.execute(
        "UPDATE otp_challenges SET used_at = ? WHERE id = ? AND used_at IS NULL", (now, ch.id)
    ) == 1


def retire(db: Database, ch: Challenge, now: int) -> None:
    """A resend replaces the challenge: the old code stops working."""
    db.execute("UPDATE otp_challenges SET used_at = ? WHERE id = ? AND used_at IS NULL", (now, ch.id))


def purge(db: Database, now: int) -> None:
    db.execute("DELETE FROM otp_challenges WHERE expires_at < ?", (now - 86400,))
