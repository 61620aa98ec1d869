"""The portal's keyed hashes and the phone's encryption, from the ledger key.

    >>> from signer.ledger.secret import LedgerKey
    >>> keys = PortalKeys(LedgerKey(b"k" * 32).portal)
    >>> keys.lookup_hash("0790 8300 1234", "1985-03-14") == keys.lookup_hash("079083001234", "1985-03-14")
    True
    >>> sealed = keys.seal_phone("+84900000001", "HCM", "R1")
    >>> keys.open_phone(sealed, "HCM", "R1")
    '+84900000001'
    >>> keys.open_phone(sealed, "HCM", "R2") is None   # bound to its row
    True

Each use has its own sub-key (HMAC of the portal key with a label), so a hash
of one kind never matches a hash of another. Nothing here logs or returns a
secret; ``repr`` shows none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from signer.ledger.secret import normalise_citizen_id


def _sub(root: bytes, use: str) -> bytes:
    return hmac.new(root, b"vn-dcc portal v1 " + use.encode("ascii"), hashlib.sha256).digest()


def _hex(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\x1f".join(parts).encode("utf-8"), hashlib.sha256).hexdigest()


def birth_date_forms(text: str) -> list[str]:
    """The forms a typed date of birth may match: the full date and, because a
    record may hold only the year or year-month, those prefixes.

    >>> birth_date_forms("1962-04-02")
    ['1962-04-02', '1962-04', '1962']
    >>> birth_date_forms("1962")
    ['1962']
    """
    text = text.strip()
    forms = [text]
    if len(text) == 10:
        forms += [text[:7], text[:4]]
    elif len(text) == 7:
        forms.append(text[:4])
    return forms


class PortalKeys:
    """Sub-keys of the ledger key's ``portal`` root."""

    __slots__ = ("_api", "_claim", "_csrf", "_lookup", "_otp", "_phone", "_phone_hash", "_rate")

    def __init__(self, root: bytes) -> None:
        self._lookup = _sub(root, "lookup")
        self._phone = _sub(root, "phone-seal")
        self._phone_hash = _sub(root, "phone-hash")
        self._otp = _sub(root, "otp-pepper")
        self._claim = _sub(root, "claim")
        self._csrf = _sub(root, "csrf")
        self._rate = _sub(root, "rate")
        self._api = _sub(root, "api-key")

    def __repr__(self) -> str:
        return "PortalKeys(...)"

    def lookup_hash(self, citizen_id: str, birth_date: str) -> str:
        """The key a citizen's look-up finds their holder rows by (ID + date of birth)."""
        return _hex(self._lookup, normalise_citizen_id(citizen_id), birth_date.strip())

    def phone_hash(self, phone: str) -> str:
        return _hex(self._phone_hash, phone)

    def seal_phone(self, phone: str, centre: str, record_id: str) -> str:
        """AES-256-GCM, a random nonce, the row's key as associated data (base64)."""
        nonce = os.urandom(12)
        sealed = AESGCM(self._phone).encrypt(nonce, phone.encode("utf-8"), _row(centre, record_id))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open_phone(self, sealed: str, centre: str, record_id: str) -> str | None:
        """The phone, or ``None`` when the value is not this row's (moved or edited)."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            return AESGCM(self._phone).decrypt(raw[:12], raw[12:], _row(centre, record_id)).decode("utf-8")
        except (ValueError, InvalidTag):
            return None

    def otp_pepper(self, challenge_id: str, code: str) -> bytes:
        """The code as hashed: peppered with a server key and bound to its challenge."""
        return hmac.new(self._otp, f"{challenge_id}\x1f{code}".encode("ascii"), hashlib.sha256).digest()

    def claim_hash(self, code: str) -> str:
        return _hex(self._claim, code)

    def csrf_token(self, pre_session: str, form: str) -> str:
        return _hex(self._csrf, pre_session, form)[:43]

    def rate_bucket(self, kind: str, value: str) -> str:
        """A rate-limit bucket name that holds no personal data (``kind:<hash>``)."""
        return f"{kind}:{_hex(self._rate, kind, value)[:32]}"

    def api_key_hash(self, api_key: str) -> str:
        return _hex(self._api, api_key)


def _row(centre: str, record_id: str) -> bytes:
    return f"{centre}\x1f{record_id}".encode()
