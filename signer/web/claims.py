"""Claim codes: the fallback when the phone on the record is wrong or missing.

A health centre prints one per record (``python -m signer portal claim-codes``,
on the reconciliation list or a slip); the citizen types it with their ID and
date of birth and sets the phone the one-time code then goes to.

    >>> code = new_claim_code()
    >>> len(code), code.count("-")
    (23, 3)
    >>> normalise_claim_code(code.lower().replace("-", " ")) == code.replace("-", "")
    True

20 base32 characters = 100 bits from :mod:`secrets`; single use; expires
(60 days); stored only as ``PortalKeys.claim_hash`` (a keyed hash: with 100
bits of entropy a slow hash adds nothing).
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from signer.ledger.db import Database
from signer.web.keys import PortalKeys

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: characters people misread for base32 ones
_CONFUSED = str.maketrans({"0": "O", "1": "I", "8": "B"})


def new_claim_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(13)).decode("ascii")[:20]
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


def normalise_claim_code(text: str) -> str | None:
    """Upper-case, separators dropped, look-alikes mapped; ``None`` unless 20 base32 characters."""
    value = re.sub(r"[\s\-_.]", "", text).upper().translate(_CONFUSED)
    if len(value) != 20 or any(c not in _ALPHABET for c in value):
        return None
    return value


@dataclass(frozen=True)
class IssuedCode:
    record_id: str
    code: str
    expires_at: int


def issue(db: Database, keys: PortalKeys, *, centre: str, record_ids: Sequence[str], now: int, days: int,
          created_by: str) -> list[IssuedCode]:
    """One new code per record; earlier unused codes of the record stay valid until used or expired."""
    out = []
    rows = []
    for record_id in record_ids:
        code = new_claim_code()
        expires = now + days * 86400
        rows.append((keys.claim_hash(normalise_claim_code(code) or ""), centre, record_id, now, expires, created_by))
        out.append(IssuedCode(record_id, code, expires))
    with db.transaction():
        db.executemany(
            "INSERT INTO claim_codes (code_hash, centre, record_id, created_at, expires_at, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
    return out


def find(db: Database, keys: PortalKeys, code: str, now: int) -> tuple[str, str, str] | None:
    """(code_hash, centre, record_id) of a usable claim code, or ``None``."""
    value = normalise_claim_code(code)
    if value is None:
        return None
    row = db.fetchone(
        "SELECT code_hash, centre, record_id FROM claim_codes WHERE code_hash = ? AND used_at IS NULL"
        " AND expires_at > ?",
        (keys.claim_hash(value), now),
    )
    return None if row is None else (str(row[0]), str(row[1]), str(row[2]))


def use(db: Database, code_hash: str, now: int) -> bool:
    return db.execute(
        "UPDATE claim_codes SET used_at = ? WHERE code_hash = ? AND used_at IS NULL", (now, code_hash)
    ) == 1
