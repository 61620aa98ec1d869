"""Rate limits and the look-up lock, over the ``rate_hits`` table (so they
hold across uvicorn workers). Bucket names come from
:meth:`PortalKeys.rate_bucket`: no personal data in the table.

Numbers (defaults; ``PortalSettings.limits`` overrides any of them, tests
use small ones) and the reasoning: docs/portal.md "Rate limits and lock".

- per client network (/24, /48): look-ups, code attempts and claim attempts
  in a sliding window: over it, 429;
- per phone: codes sent per hour (over it the code is not sent; the page is
  the same);
- per look-up bucket (ID + birth YEAR as typed, computed alike for real and
  decoy look-ups, so the 429s say nothing about a record): a cool-down on
  /lookup and /code/resend, and a
  **lock** when failed codes or sent codes since the last lock reach a
  threshold. A lock lasts exactly ``lock_seconds`` and is never extended:
  counting restarts when it ends, and what happens during it does not count.
  A valid claim code clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

from signer.ledger.db import Database
from signer.web.keys import PortalKeys
from verifier.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    window: int = 600  # seconds: the per-network window
    network_lookups: int = 20
    network_codes: int = 30
    network_claims: int = 10
    otp_attempts: int = 5  # per challenge
    lock_failures: int = 10  # failed codes for one look-up since the last lock -> lock
    lock_sends: int = 8  # codes sent for one look-up since the last lock, within count_window -> lock
    count_window: int = 3600
    lock_seconds: int = 900  # a lock's fixed length (the cap)
    phone_sends: int = 5  # codes per phone per phone_window
    phone_window: int = 3600
    resend_seconds: int = 60
    claim_days: int = 60

    @classmethod
    def from_settings(cls, values: Mapping[str, int]) -> Limits:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown portal limit(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        bad = [k for k, v in values.items() if not isinstance(v, int) or v < 0]
        if bad:
            raise ConfigError(f"portal limits must be non-negative integers: {', '.join(bad)}")
        return replace(cls(), **values)


class RateLimiter:
    def __init__(self, db: Database, keys: PortalKeys, limits: Limits, clock: Callable[[], float]) -> None:
        self.db, self.keys, self.limits, self.clock = db, keys, limits, clock

    def _now(self) -> int:
        return int(self.clock())

    def bucket(self, kind: str, value: str) -> str:
        return self.keys.rate_bucket(kind, value)

    def add(self, bucket: str) -> None:
        self.db.execute("INSERT INTO rate_hits (bucket, at) VALUES (?, ?)", (bucket, self._now()))

    def count(self, bucket: str, since: int) -> int:
        row = self.db.fetchone("SELECT COUNT(*) FROM rate_hits WHERE bucket = ? AND at >= ?", (bucket, since))
        return int(row[0]) if row else 0

    def over(self, bucket: str, limit: int, window: int) -> bool:
        """Counts this event and says whether it is over ``limit`` in ``window``."""
        now = self._now()
        self.add(bucket)
        return self.count(bucket, now - window + 1) > limit

    # -- per network -------------------------------------------------------
    def network_over(self, kind: str, network: str) -> bool:
        limit = {"lookup": self.limits.network_lookups, "code": self.limits.network_codes,
                 "claim": self.limits.network_claims}[kind]
        return self.over(self.bucket(f"net-{kind}", network), limit, self.limits.window)

    # -- per phone ---------------------------------------------------------
    def phone_allows(self, phone_hash: str) -> bool:
        return not self.over(self.bucket("phone", phone_hash), self.limits.phone_sends, self.limits.phone_window)

    # -- the look-up lock --------------------------------------------------
    def _last_lock(self, lock_key: str) -> int | None:
        row = self.db.fetchone("SELECT MAX(at) FROM rate_hits WHERE bucket = ?", (f"lock:{lock_key}",))
        return None if row is None or row[0] is None else int(row[0])

    def locked_until(self, lock_key: str) -> int | None:
        """End of the current lock of this look-up, or ``None``."""
        start = self._last_lock(lock_key)
        if start is None:
            return None
        end = start + self.limits.lock_seconds
        return end if self._now() < end else None

    def _since(self, lock_key: str) -> int:
        start = self._last_lock(lock_key)
        floor = self._now() - self.limits.count_window + 1
        return floor if start is None else max(floor, start + self.limits.lock_seconds)

    def record(self, what: str, lock_key: str) -> None:
        """A failed code (``fail``) or a sent code (``send``) for this look-up; locks
        it when the count since the last lock reaches the threshold."""
        threshold = self.limits.lock_failures if what == "fail" else self.limits.lock_sends
        self.add(f"{what}:{lock_key}")
        if self.locked_until(lock_key) is not None:
            return
        if self.count(f"{what}:{lock_key}", self._since(lock_key)) >= threshold:
            self.add(f"lock:{lock_key}")

    def last_send(self, lock_key: str) -> int | None:
        row = self.db.fetchone("SELECT MAX(at) FROM rate_hits WHERE bucket = ?", (f"send:{lock_key}",))
        return None if row is None or row[0] is None else int(row[0])

    def clear(self, lock_key: str) -> None:
        """The owner proved themselves (a valid claim code): lock and counts gone."""
        self.db.execute(
            "DELETE FROM rate_hits WHERE bucket IN (?, ?, ?)",
            (f"lock:{lock_key}", f"fail:{lock_key}", f"send:{lock_key}"),
        )

    def purge(self) -> None:
        """Rows older than every window (called now and then)."""
        keep = max(self.limits.window, self.limits.count_window, self.limits.phone_window,
                   self.limits.lock_seconds) * 2
        self.db.execute("DELETE FROM rate_hits WHERE at < ?", (self._now() - keep,))
