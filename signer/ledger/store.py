"""The issuance ledger: one row per certificate, every change an audit event.

    >>> import tempfile, pathlib
    >>> from signer.ledger import Ledger
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ledger.sqlite"
    >>> ledger = Ledger.open(str(path), actor="doctest")        # creates ledger.sqlite.key (0600)
    >>> ledger.by_uvci("URN:UVCI:01:VN:NOTHING#A") is None
    True
    >>> ledger.close()

States (docs/ledger.md, "States")::

    reserved -> signed -> written -> superseded
        |          |         |  \\-> revoked
        +----------+---> released        (superseded -> revoked too)

``reserved``: a UVCI is taken for a record before anything is signed;
``signed``: the certificate is made, its payload hash and the SHA-256 of the
files about to be written are known; ``written``: the files are in place and
on disk; ``superseded``: a newer certificate of the same record replaced it
(changed data, re-issuance); ``revoked``: withdrawn; ``released``: a
reservation given up before it was ever written (the record changed, or
could not be signed).

Every change is one row of ``events`` (what changed, who, when) linked to the
previous one by a keyed hash (:mod:`signer.ledger.audit` checks the chain and
that the certificate rows are what the events say). The row and its event
are written in the same transaction, many rows per transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.ledger.db import Database, IntegrityConflict, connect, is_postgres_url
from signer.ledger.migrate import migrate
from signer.ledger.secret import LedgerKey, load_secret
from verifier.errors import ConfigError

STATES = ("reserved", "signed", "written", "superseded", "revoked", "released")
PENDING = ("reserved", "signed")
#: Which states a row may move to from each state.
TRANSITIONS: Mapping[str, frozenset[str]] = {
    "reserved": frozenset({"signed", "released"}),
    "signed": frozenset({"signed", "written", "released"}),
    "written": frozenset({"written", "superseded", "revoked"}),
    "superseded": frozenset({"revoked"}),
    "revoked": frozenset(),
    "released": frozenset(),
}
#: Columns a reservation sets (the event of a ``reserved`` row carries them all).
RESERVE_FIELDS = (
    "centre",
    "record_id",
    "record_hash",
    "generation",
    "citizen_hash",
    "out_dir",
    "line",
    "verified",
    "override_operator",
    "override_reason",
    "province",
    "commune",
)
#: Columns later events may set.
UPDATE_FIELDS = (
    "out_dir",
    "kid",
    "iat",
    "exp",
    "exp_clamped",
    "payload_hash",
    "files",
    "superseded_by",
    "revoked_reason",
)
COLUMNS = (
    "id",
    "uvci",
    *RESERVE_FIELDS,
    "kid",
    "iat",
    "exp",
    "exp_clamped",
    "payload_hash",
    "files",
    "state",
    "superseded_by",
    "revoked_reason",
    "actor",
    "created_at",
    "updated_at",
)
_SELECT = f"SELECT {', '.join(COLUMNS)} FROM certificates"
#: ``ledger_meta`` entry (+ the folder's path) set when a folder's manifest
#: must be made again (by ``signer batch``): written in the same transaction
#: as the change.
MANIFEST_STALE = "manifest-stale:"
#: Largest ``IN (...)`` list per query.
_CHUNK = 500


#: One encoder for every call (json.dumps with options builds a new one each time).
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode


def canonical_json(value: Any) -> str:
    return _CANONICAL(value)


def utc_now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FileEntry:
    name: str
    sha256: str
    size: int


def files_to_text(files: Sequence[FileEntry]) -> str:
    return canonical_json([[f.name, f.sha256, f.size] for f in files])


def files_from_text(text: str | None) -> tuple[FileEntry, ...]:
    if not text:
        return ()
    return tuple(FileEntry(str(n), str(h), int(s)) for n, h, s in json.loads(text))


@dataclass(frozen=True)
class Certificate:
    """One ``certificates`` row."""

    id: int
    uvci: str
    centre: str
    record_id: str
    record_hash: str
    generation: int
    citizen_hash: str | None
    out_dir: str
    line: int
    verified: bool
    override_operator: str | None
    override_reason: str | None
    province: str | None  # the record's place (schema version 3; NULL before): signer.communes
    commune: str | None
    kid: str | None
    iat: int | None
    exp: int | None
    exp_clamped: bool | None
    payload_hash: str | None
    files: tuple[FileEntry, ...]
    state: str
    superseded_by: str | None
    revoked_reason: str | None
    actor: str
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Certificate:
        values = dict(zip(COLUMNS, row, strict=True))
        values["verified"] = bool(values["verified"])
        if values["exp_clamped"] is not None:
            values["exp_clamped"] = bool(values["exp_clamped"])
        values["files"] = files_from_text(values["files"])
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """For ``signer ledger show`` (no personal data in the ledger: only keyed hashes)."""
        out = {name: getattr(self, name) for name in COLUMNS if name != "files"}
        out["files"] = [{"name": f.name, "sha256": f.sha256, "size": f.size} for f in self.files]
        return out


@dataclass(frozen=True)
class Reservation:
    """A new row in state ``reserved``."""

    uvci: str
    centre: str
    record_id: str
    record_hash: str
    generation: int
    citizen_hash: str | None
    out_dir: str
    line: int
    verified: bool
    override_operator: str | None = None
    override_reason: str | None = None
    province: str | None = None
    commune: str | None = None

    def detail(self) -> dict[str, Any]:
        return {name: _db_value(getattr(self, name)) for name in RESERVE_FIELDS}


@dataclass(frozen=True)
class Change:
    """A state change of an existing row: the new state and the columns it sets."""

    uvci: str
    state: str
    values: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""  # kept in the event only (e.g. "files rewritten")
    #: Only if the row's ``payload_hash`` is still this one (the certificate this
    #: process signed and wrote the files of): another process that re-signed the
    #: same reservation meanwhile makes the change a conflict.
    expect_payload: str | None = None

    def detail(self) -> dict[str, Any]:
        detail = {name: _db_value(value) for name, value in self.values.items()}
        if self.note:
            detail["note"] = self.note
        return detail


def _db_value(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is int or value is None:  # most values: as they are
        return value
    if kind is bool:
        return int(value)
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], FileEntry):
        return files_to_text(value)
    return value


class LedgerConflict(ConfigError):
    """Another run changed the same certificates meanwhile (or a row is not in
    the state this change needs): the transaction was rolled back."""


class Ledger:
    """The ledger of one database. ``actor`` names who makes the changes (operator)."""

    def __init__(
        self, db: Database, key: LedgerKey, *, actor: str, clock: Callable[[], str] = utc_now_text
    ) -> None:
        self.db, self.key, self.actor, self.clock = db, key, actor, clock

    @classmethod
    def open(cls, target: str, *, actor: str, create: bool = True, environ: dict[str, str] | None = None) -> Ledger:
        """Connect, migrate, and check the key (:class:`ConfigError` for a wrong one).

        ``target``: a SQLite file path or a ``postgresql://`` URL. ``create=False``
        refuses to make a new SQLite ledger (read-only commands).
        """
        sqlite_path = None if is_postgres_url(target) else Path(target)
        creating = sqlite_path is not None and not sqlite_path.exists()
        if creating and not create:
            raise ConfigError(f"ledger not found: {target}")
        secret = load_secret(sqlite_path=sqlite_path, creating=creating, environ=environ)
        db = connect(target, create=create)
        try:
            migrate(db)
            key = LedgerKey(secret)
            _check_key(db, key)
        except BaseException:
            db.close()
            raise
        return cls(db, key, actor=actor)

    def close(self) -> None:
        self.db.close()

    # -- queries -------------------------------------------------------------
    def _rows(self, where: str, params: Sequence[Any]) -> list[Certificate]:
        return [Certificate.from_row(r) for r in self.db.fetchall(f"{_SELECT} WHERE {where} ORDER BY id", params)]

    def by_uvci(self, uvci: str) -> Certificate | None:
        rows = self._rows("uvci = ?", (uvci,))
        return rows[0] if rows else None

    def by_record(self, record_id: str, centre: str | None = None) -> list[Certificate]:
        if centre is None:
            return self._rows("record_id = ?", (record_id,))
        return self._rows("record_id = ? AND centre = ?", (record_id, centre))

    def by_citizen(self, citizen_id: str) -> list[Certificate]:
        """Every certificate of the person with this ID (by its keyed hash)."""
        digest = self.key.citizen_hash(citizen_id)
        return [] if digest is None else self._rows("citizen_hash = ?", (digest,))

    def by_centre_and_day(self, centre: str, day: dt.date, tz: dt.tzinfo) -> list[Certificate]:
        """Certificates of ``centre`` signed (iat) on ``day`` in the time zone ``tz``."""
        start = int(dt.datetime.combine(day, dt.time(), tz).timestamp())
        return self._rows("centre = ? AND iat >= ? AND iat < ?", (centre, start, start + 86400))

    def by_kid(self, kid: str) -> list[Certificate]:
        """Every certificate signed with the DSC of ``kid`` (base64), any state."""
        return self._rows("kid = ?", (kid,))

    def for_records(self, centre: str, record_ids: Sequence[str]) -> dict[str, list[Certificate]]:
        """Every row of these records at ``centre`` (all states), oldest first."""
        found: dict[str, list[Certificate]] = {}
        for start in range(0, len(record_ids), _CHUNK):
            chunk = record_ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            for cert in self._rows(f"centre = ? AND record_id IN ({marks})", (centre, *chunk)):
                found.setdefault(cert.record_id, []).append(cert)
        return found

    def in_states(self, states: Sequence[str], *, out_dir: str | None = None, after: int = 0) -> Iterator[Certificate]:
        """Rows in ``states`` (optionally of one output folder) with an id above
        ``after``, in id order, streamed in pages."""
        marks = ", ".join("?" * len(states))
        where = f"state IN ({marks})" + (" AND out_dir = ?" if out_dir is not None else "")
        params: tuple[Any, ...] = (*states, *(() if out_dir is None else (out_dir,)))
        last = after
        while True:
            rows = self.db.fetchall(f"{_SELECT} WHERE id > ? AND {where} ORDER BY id LIMIT 5000", (last, *params))
            if not rows:
                return
            for row in rows:
                yield Certificate.from_row(row)
            last = int(rows[-1][0])

    def expiring(self, before: int, *, centre: str | None = None) -> list[Certificate]:
        """Current (written) certificates whose exp is before ``before`` (epoch seconds)."""
        if centre is None:
            return self._rows("state = 'written' AND exp < ?", (before,))
        return self._rows("state = 'written' AND exp < ? AND centre = ?", (before, centre))

    def revoked_uvcis(self) -> list[str]:
        """UVCIs a verifier must refuse: revoked, superseded (a newer certificate
        replaced them) and released (reserved, never confirmed: the files may
        have reached the disk before a crash)."""
        rows = self.db.fetchall(
            "SELECT uvci FROM certificates WHERE state IN ('revoked', 'superseded', 'released') ORDER BY id"
        )
        return [str(r[0]) for r in rows]

    def counts(self) -> dict[str, int]:
        return {str(s): int(n) for s, n in self.db.fetchall("SELECT state, COUNT(*) FROM certificates GROUP BY state")}

    def head(self) -> tuple[int, str]:
        row = self.db.fetchone("SELECT seq, hash FROM chain_head WHERE id = 1")
        if row is None:
            raise ConfigError("ledger damaged: its chain head is missing (run 'signer ledger verify')")
        return int(row[0]), str(row[1])

    # -- changes -------------------------------------------------------------
    def apply(
        self,
        reservations: Sequence[Reservation] = (),
        changes: Sequence[Change] = (),
        *,
        meta: Mapping[str, str] | None = None,
    ) -> None:
        """Apply ``changes`` and insert ``reservations`` (in that order: a
        reservation released here makes room for a new one of the same record)
        in one transaction, each with its audit event, and set the ``meta`` entries
        (bookkeeping outside the audit trail, such as "this folder's manifest
        is stale"). A change whose row is not in a state that may move to the
        new one rolls everything back (:class:`LedgerConflict`), as does a
        UNIQUE violation (the natural key, or a second pending/written
        certificate of one record)."""
        if not reservations and not changes:
            return
        for change in changes:
            if change.state not in STATES:
                raise ValueError(f"unknown state {change.state!r}")
            unknown = set(change.values) - set(UPDATE_FIELDS)
            if unknown:
                raise ValueError(f"cannot set {sorted(unknown)}")
        try:
            with self.db.transaction():
                at = self.clock()
                events: list[tuple[str, str, dict[str, Any]]] = []
                if changes:  # first: a released reservation makes room for the new one
                    self._update(changes, at)
                    events += [(c.uvci, c.state, c.detail()) for c in changes]
                if reservations:
                    details = [r.detail() for r in reservations]
                    self._insert(reservations, details, at)
                    events += [(r.uvci, "reserved", d) for r, d in zip(reservations, details, strict=True)]
                self._append_events(events, at)
                if meta:
                    self._set_meta(meta)
        except IntegrityConflict as err:
            raise LedgerConflict(f"the ledger refused the change: {err}") from None

    def set_meta(self, values: Mapping[str, str], *, only_if: Mapping[str, str | None] | None = None) -> bool:
        """Set ``ledger_meta`` entries in one transaction; with ``only_if``, only
        when those entries still hold the given values (None = absent).
        Returns whether they were set."""
        with self.db.transaction():
            for name, expected in (only_if or {}).items():
                row = self.db.fetchone("SELECT value FROM ledger_meta WHERE name = ?", (name,))
                if (None if row is None else row[0]) != expected:
                    return False
            self._set_meta(values)
        return True

    def get_meta(self, name: str) -> str | None:
        row = self.db.fetchone("SELECT value FROM ledger_meta WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def _set_meta(self, values: Mapping[str, str]) -> None:
        self.db.executemany(
            "INSERT INTO ledger_meta (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def revoke(self, certs: Sequence[Certificate], reason: str) -> None:
        """Revoke these certificates (current or superseded) in one transaction;
        their folders' manifests are made again by the next batch there."""
        if not certs:
            return
        stale = {MANIFEST_STALE + c.out_dir: self.clock() for c in certs}
        self.apply(changes=[Change(c.uvci, "revoked", {"revoked_reason": reason}) for c in certs], meta=stale)

    def _insert(self, reservations: Sequence[Reservation], details: Sequence[dict[str, Any]], at: str) -> None:
        names = ("uvci", *RESERVE_FIELDS, "state", "actor", "created_at", "updated_at")
        sql = f"INSERT INTO certificates ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        rows = []
        for r, detail in zip(reservations, details, strict=True):
            rows.append((r.uvci, *(detail[n] for n in RESERVE_FIELDS), "reserved", self.actor, at, at))
        self.db.executemany(sql, rows)

    def _update(self, changes: Sequence[Change], at: str) -> None:
        # executemany per (state, columns) group; the WHERE clause enforces the transitions
        groups: dict[tuple[str, tuple[str, ...], bool], list[Change]] = {}
        for change in changes:
            key = (change.state, tuple(sorted(change.values)), change.expect_payload is not None)
            groups.setdefault(key, []).append(change)
        for (state, names, expect), group in groups.items():
            sources = [s for s, targets in TRANSITIONS.items() if state in targets]
            sets = ", ".join(["state = ?", "actor = ?", "updated_at = ?", *(f"{n} = ?" for n in names)])
            marks = ", ".join("?" * len(sources))
            sql = f"UPDATE certificates SET {sets} WHERE uvci = ? AND state IN ({marks})"
            sql += " AND payload_hash = ?" if expect else ""
            rows = [
                (state, self.actor, at, *(_db_value(c.values[n]) for n in names), c.uvci, *sources,
                 *((c.expect_payload,) if expect else ()))
                for c in group
            ]  # fmt: skip
            changed = self.db.executemany(sql, rows)
            if changed != len(rows):
                raise LedgerConflict(
                    f"{len(rows) - changed} certificate(s) could not move to '{state}' "
                    "(not in a state that allows it, or changed by another run)"
                )

    def _append_events(self, events: Sequence[tuple[str, str, dict[str, Any]]], at: str) -> None:
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        row = self.db.fetchone(f"SELECT seq, hash FROM chain_head WHERE id = 1{lock}")
        if row is None:
            raise ConfigError("ledger damaged: its chain head is missing (run 'signer ledger verify')")
        seq, prev = int(row[0]), str(row[1])
        rows = []
        for uvci, state, detail in events:
            seq += 1
            detail_text = canonical_json(detail)
            digest = self.key.chain_hash(prev, event_body(seq, at, uvci, state, self.actor, detail_text))
            rows.append((seq, at, uvci, state, self.actor, detail_text, prev, digest))
            prev = digest
        self.db.executemany(
            "INSERT INTO events (seq, at, uvci, state, actor, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.db.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))


def event_body(seq: int, at: str, uvci: str, state: str, actor: str, detail_text: str) -> bytes:
    """The bytes an event's hash covers (with the previous hash)."""
    return canonical_json([seq, at, uvci, state, actor, detail_text]).encode("utf-8")


def _check_key(db: Database, key: LedgerKey) -> None:
    """Store the key's check value in a new ledger; refuse a key that does not match."""
    row = db.fetchone("SELECT value FROM ledger_meta WHERE name = 'key_check'")
    if row is None:
        with db.transaction():
            if db.fetchone("SELECT 1 FROM certificates LIMIT 1") is not None:
                raise ConfigError("ledger damaged: it holds certificates but no key check value")
            with contextlib.suppress(IntegrityConflict):  # another process stored it first
                db.execute("INSERT INTO ledger_meta (name, value) VALUES ('key_check', ?)", (key.check,))
        row = db.fetchone("SELECT value FROM ledger_meta WHERE name = 'key_check'")
    if row is None or row[0] != key.check:
        raise ConfigError(
            f"the ledger key does not match the ledger {db.target} "
            "(VNDCC_LEDGER_KEY or the key file beside the database)"
        )


def group_by(items: Iterable[Certificate], attr: str) -> dict[Any, list[Certificate]]:
    out: dict[Any, list[Certificate]] = {}
    for item in items:
        out.setdefault(getattr(item, attr), []).append(item)
    return out
