"""Health centres' API keys: ``Authorization: Bearer vndcc_<43 characters>``.

    >>> from signer.ledger.secret import LedgerKey
    >>> keys = PortalKeys(LedgerKey(b"k" * 32).portal)
    >>> key = new_api_key()
    >>> bool(KEY_FORMAT.fullmatch(key)), len(key)
    (True, 49)
    >>> key_hash(keys, key) == key_hash(keys, key), key_hash(keys, "vndcc_x") is None
    (True, True)

A key is 32 random bytes (``secrets.token_bytes``) in base64url without
padding after the ``vndcc_`` prefix (so secret scanners can spot a leaked
one). Only its HMAC under the portal's ``api-key`` sub-key is stored
(``api_keys.key_hash``): a 256-bit random key cannot be guessed, so a slow
hash would add nothing but latency to every request; the HMAC also means a
copy of the table alone does not let anyone test candidate keys. A centre may
hold several keys (rotation: make the new one, deploy it, revoke the old
one); a revoked key is refused at once. Why keys and not mutual TLS:
docs/centre-api.md "Authentication".

The CLI (``python -m signer portal api-key``) writes a new key to a 0600 file,
never to the terminal or the command line.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from signer.ledger import Ledger
from signer.ledger.db import Database
from signer.web.keys import PortalKeys
from verifier.errors import ConfigError

PREFIX = "vndcc_"
KEY_FORMAT = re.compile(r"vndcc_[A-Za-z0-9_-]{43}")
#: How the CLI and the API name a key without showing it: the start of its hash.
KEY_ID_LENGTH = 12
MAX_LABEL = 100
MAX_CENTRE = 200


@dataclass(frozen=True)
class ApiCaller:
    """Who a valid key belongs to. ``key_id`` names the key in logs (never the key)."""

    centre: str
    label: str
    key_id: str


def new_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def key_hash(keys: PortalKeys, api_key: str) -> str | None:
    """The stored form of a well-formed key, or None for anything else."""
    if not KEY_FORMAT.fullmatch(api_key):
        return None
    return keys.api_key_hash(api_key)


def authenticate(db: Database, keys: PortalKeys, authorization: str | None) -> ApiCaller | None:
    """The caller of an ``Authorization`` header value, or None (missing,
    malformed, unknown or revoked key: all answered the same way)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    digest = key_hash(keys, token.strip())
    if digest is None:
        return None
    row = db.fetchone("SELECT centre, label FROM api_keys WHERE key_hash = ? AND revoked_at IS NULL", (digest,))
    if row is None:
        return None
    return ApiCaller(centre=str(row[0]), label=str(row[1]), key_id=digest[:KEY_ID_LENGTH])


def create_key(ledger: Ledger, centre: str, label: str) -> str:
    """A new key for ``centre`` (stored hashed); the caller must keep the text."""
    _check_text("centre", centre, MAX_CENTRE)
    _check_text("label", label, MAX_LABEL)
    key = new_api_key()
    digest = PortalKeys(ledger.key.portal).api_key_hash(key)
    with ledger.db.transaction():
        ledger.db.execute(
            "INSERT INTO api_keys (key_hash, centre, label, created_at) VALUES (?, ?, ?, ?)",
            (digest, centre, label, ledger.clock()),
        )
    return key


def list_keys(db: Database, centre: str | None = None) -> list[tuple[str, str, str, str, str | None]]:
    """``(key_id, centre, label, created_at, revoked_at)`` of every key (of ``centre``)."""
    sql = "SELECT key_hash, centre, label, created_at, revoked_at FROM api_keys"
    params: tuple[Any, ...] = ()
    if centre is not None:
        sql += " WHERE centre = ?"
        params = (centre,)
    rows = db.fetchall(sql + " ORDER BY centre, created_at", params)
    return [(str(h)[:KEY_ID_LENGTH], str(c), str(lab), str(at), rev) for h, c, lab, at, rev in rows]


def revoke_key(ledger: Ledger, key_id: str, centre: str | None = None) -> tuple[str, str]:
    """Revoke the one key whose id (hash prefix, at least 8 hex digits) starts
    with ``key_id``; returns its (centre, label)."""
    key_id = key_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{8,64}", key_id):
        raise ConfigError("--revoke takes the key id shown by --list (at least 8 hex digits)")
    matches = [k for k in list_keys(ledger.db, centre) if k[0].startswith(key_id[:KEY_ID_LENGTH])]
    if not matches:
        raise ConfigError(f"no API key with id {key_id}")
    if len(matches) > 1:
        raise ConfigError(f"{len(matches)} keys start with {key_id}: give more digits")
    kid, owner, label, _, revoked = matches[0]
    if revoked is not None:
        raise ConfigError(f"API key {kid} ({owner}, {label}) was already revoked at {revoked}")
    rows = ledger.db.fetchall("SELECT key_hash FROM api_keys WHERE centre = ? AND revoked_at IS NULL", (owner,))
    full = [str(h) for (h,) in rows if str(h).startswith(kid)]
    with ledger.db.transaction():
        ledger.db.execute("UPDATE api_keys SET revoked_at = ? WHERE key_hash = ?", (ledger.clock(), full[0]))
    return owner, label


def _check_text(what: str, text: str, limit: int) -> None:
    if not text.strip() or len(text) > limit or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
        raise ConfigError(f"the {what} must be 1 to {limit} printable characters")


def create_key_file(ledger: Ledger, centre: str, label: str, path: Path) -> str:
    """A new key for ``centre`` written to a new 0600 file ``path`` (an existing
    file is refused before any key is made); returns the key's id."""
    _check_text("centre", centre, MAX_CENTRE)
    _check_text("label", label, MAX_LABEL)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: choose a new file for the key (an old key stays valid until revoked)") from None
    except OSError as err:
        raise ConfigError(f"cannot create {path}: {err.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            key = create_key(ledger, centre, label)
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return PortalKeys(ledger.key.portal).api_key_hash(key)[:KEY_ID_LENGTH]


# --------------------------------------------------------------------------
# CLI: python -m signer portal api-key ...


def register(portal_sub: Any) -> None:
    """``portal api-key --ledger L (--centre NAME --out FILE [--label L] | --list | --revoke ID)``."""
    p = portal_sub.add_parser(
        "api-key",
        help="make, list or revoke a health centre's API key (the key goes to a 0600 file only)",
        description="Make an API key for a health centre (written to --out, mode 0600; never shown), "
        "list the keys (ids, labels, dates; no key), or revoke one by its id. See docs/centre-api.md.",
    )
    p.add_argument("--ledger", required=True, metavar="FILE|URL", help="the ledger the portal serves")
    p.add_argument("--centre", metavar="NAME", help="the health centre (as in 'signer batch --centre')")
    p.add_argument("--label", default="", metavar="TEXT", help="what the key is for (default: the file name)")
    p.add_argument("--out", type=Path, metavar="FILE", help="new file for the key (mode 0600)")
    p.add_argument("--list", action="store_true", help="list the keys (of --centre, or all)")
    p.add_argument("--revoke", metavar="KEY_ID", help="revoke the key with this id (from --list)")
    p.set_defaults(func=run_api_key)


def run_api_key(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    modes = [m for m, on in (("--list", ns.list), ("--revoke", ns.revoke is not None), ("--out", ns.out is not None)) if on]
    if len(modes) != 1:
        raise ConfigError("give exactly one of --out FILE (new key), --list, --revoke KEY_ID")
    actor = (os.environ.get("USER") or "").strip() or "unknown"
    ledger = Ledger.open(ns.ledger, actor=actor, create=modes[0] == "--out")
    try:
        if ns.list:
            for kid, centre, label, created, revoked in list_keys(ledger.db, ns.centre):
                state = f"revoked {revoked}" if revoked else "active"
                print(f"{kid}  {centre}  {label}  created {created}  {state}", file=out)
            return 0
        if ns.revoke is not None:
            centre, label = revoke_key(ledger, ns.revoke, ns.centre)
            print(f"revoked API key {ns.revoke.strip().lower()} ({centre}, {label})", file=out)
            return 0
        if not ns.centre:
            raise ConfigError("a new key needs --centre NAME")
        path: Path = ns.out
        label = ns.label or path.name
        kid = create_key_file(ledger, ns.centre, label, path)
        print(f"API key {kid} for {ns.centre} ({label}) written to {path} (mode 0600)", file=out)
        return 0
    finally:
        ledger.close()
