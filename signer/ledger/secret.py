"""The ledger key: keyed hashes of citizen IDs and record data, and the audit chain.

    >>> key = LedgerKey(b"k" * 32)
    >>> key.citizen_hash("0790 8300 1234") == key.citizen_hash("079083001234")
    True

The secret comes from ``VNDCC_LEDGER_KEY`` (at least 32 characters, e.g.
``openssl rand -hex 32``), else, for a SQLite ledger, from the key file beside
the database (``<ledger>.key``, created 0600 with 32 random bytes when the
ledger is created). It is never taken from the command line and never
printed. A PostgreSQL ledger needs the environment variable: a key file on
one machine would not reach the others.

Separate sub-keys (HMAC of the secret with a fixed label) for each use, so a
value of one kind can never be confused with another: ``citizen`` (citizen
ID), ``record`` (record data: the natural key), ``chain`` (audit events) and
``check`` (a value stored in the ledger that tells a wrong key from the right
one before anything is written), ``adopt`` (the root of the keys that
authenticate a batch run's staging journal lines: signer.batch_adopt) and ``portal`` (the root of the web portal's
own sub-keys: :mod:`signer.web.keys`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from signer.records import Record, fingerprint_form
from verifier.errors import ConfigError

LEDGER_KEY_ENV = "VNDCC_LEDGER_KEY"
MIN_SECRET_CHARS = 32
_LABEL = b"vn-dcc ledger v1 "


def _sub(secret: bytes, use: str) -> bytes:
    return hmac.new(secret, _LABEL + use.encode("ascii"), hashlib.sha256).digest()


def normalise_citizen_id(value: str) -> str:
    """The ID as hashed: spaces, dots and dashes removed, upper case (so
    ``0790 8300-1234`` and ``079083001234`` are one person)."""
    return "".join(c for c in value if c not in " .-\t").upper()


class LedgerKey:
    """The derived keys. Holds secrets: no ``repr`` of them."""

    __slots__ = ("_chain", "_citizen", "_record", "adopt", "check", "portal")

    def __init__(self, secret: bytes) -> None:
        self._citizen = _sub(secret, "citizen")
        self._record = _sub(secret, "record")
        self._chain = _sub(secret, "chain")
        self.portal = _sub(secret, "portal")
        self.adopt = _sub(secret, "adopt")
        self.check = hmac.new(_sub(secret, "check"), b"ledger key check", hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "LedgerKey(...)"

    def citizen_hash(self, citizen_id: str) -> str | None:
        """HMAC-SHA256 (hex) of the normalised ID; ``None`` for a record without one."""
        normalised = normalise_citizen_id(citizen_id)
        if not normalised:
            return None
        return hmac.digest(self._citizen, normalised.encode("utf-8"), "sha256").hex()

    def record_hash(self, record: Record) -> str:
        """HMAC-SHA256 (hex) of the record's content (:func:`signer.records.fingerprint_form`:
        every field but the line and the verification stamp). Keyed, because the
        record holds a name, a birth date and an ID that a plain hash would let
        anyone confirm by guessing."""
        return hmac.digest(self._record, fingerprint_form(record), "sha256").hex()

    def chain_hash(self, prev_hash: str, body: bytes) -> str:
        """The audit chain link: HMAC-SHA256 over the previous hash and the event."""
        return hmac.digest(self._chain, prev_hash.encode("ascii") + b"\n" + body, "sha256").hex()


def key_file_for(ledger_path: Path) -> Path:
    return ledger_path.with_name(ledger_path.name + ".key")


def load_secret(*, sqlite_path: Path | None, creating: bool, environ: dict[str, str] | None = None) -> bytes:
    """The ledger secret: the environment, else the key file of a SQLite ledger
    (made when ``creating``). Raises :class:`ConfigError` naming the variable
    or the file, never showing a value."""
    env = os.environ if environ is None else environ
    value = env.get(LEDGER_KEY_ENV, "")
    if value:
        if len(value) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{LEDGER_KEY_ENV} is too short: at least {MIN_SECRET_CHARS} characters "
                "(e.g. the output of 'openssl rand -hex 32')"
            )
        return value.encode("utf-8")
    if sqlite_path is None:
        raise ConfigError(f"a PostgreSQL ledger needs its key in {LEDGER_KEY_ENV}")
    path = key_file_for(sqlite_path)
    if creating:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        except OSError as err:
            raise ConfigError(f"cannot create the ledger key file {path}: {err.strerror}") from None
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfigError(
            f"ledger key not found: set {LEDGER_KEY_ENV} or restore the key file {path}"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read the ledger key file {path}: {getattr(err, 'strerror', None) or 'not text'}") from None
    if len(text) < MIN_SECRET_CHARS:
        raise ConfigError(f"the ledger key file {path} is damaged (too short)")
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"the ledger key file {path} is readable by others: chmod 600 {path}")
    return text.encode("ascii")
