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
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from signer.ledger.db import Database
from signer.web.keys import PortalKeys

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
CODE_DIGITS = 6


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def slow_hash(peppered: bytes, salt: bytes) -> bytes:
    return hashlib.scrypt(peppered, salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=64 * 1024 * 1024, dklen=32)


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


@dataclass(frozen=True)
class NewChallenge:
    """What :func:`prepare` makes off the event loop (the scrypt), inserted by :func:`store`."""

    token: str  # the challenge cookie's value
    code: str
    row: tuple[object, ...]


def prepare(keys: PortalKeys, *, binding: str, lookup_hash: str | None, lock_key: str, now: int, ttl: int) -> NewChallenge:
    token = secrets.token_urlsafe(32)
    cid = token_id(token)
    code = new_code()
    salt = secrets.token_bytes(16)
    digest = slow_hash(keys.otp_pepper(cid, code), salt)
    row = (cid, binding, lookup_hash, lock_key, digest.hex(), salt.hex(), now, now + ttl)
    return NewChallenge(token=token, code=code, row=row)


def store(db: Database, challenge: NewChallenge) -> None:
    db.execute(
        "INSERT INTO otp_challenges (id, binding, lookup_hash, lock_key, code_hash, salt, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        challenge.row,
    )


@dataclass(frozen=True)
class Challenge:
    id: str
    binding: str
    lookup_hash: str | None
    lock_key: str
    code_hash: str
    salt: str
    created_at: int
    expires_at: int
    attempts: int
    used_at: int | None


def load(db: Database, token: str) -> Challenge | None:
    row = db.fetchone(
        "SELECT id, binding, lookup_hash, lock_key, code_hash, salt, created_at, expires_at, attempts, used_at"
        " FROM otp_challenges WHERE id = ?",
        (token_id(token),),
    )
    return None if row is None else Challenge(*row)


def usable(ch: Challenge, *, binding: str, now: int, max_attempts: int) -> bool:
    return (
        hmac.compare_digest(ch.binding, binding)
        and ch.used_at is None
        and now < ch.expires_at
        and ch.attempts < max_attempts
    )


def code_matches(keys: PortalKeys, ch: Challenge, code: str) -> bool:
    """The slow part (run in a thread)."""
    digest = slow_hash(keys.otp_pepper(ch.id, code), bytes.fromhex(ch.salt))
    return hmac.compare_digest(digest.hex(), ch.code_hash)


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
