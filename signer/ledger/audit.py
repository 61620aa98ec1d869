"""``signer ledger verify``: the audit chain is whole and the rows are what it says.

    >>> # problems = verify_ledger(ledger)   # [] when the ledger is intact

Checks, in order (each problem is one line; the first few are reported):

1. the events are numbered 1..N without a gap (a deleted event leaves one);
2. each event's ``prev_hash`` is the previous event's hash, and its hash is
   the keyed hash of its content (an edited event no longer matches; without
   the ledger key a consistent forgery cannot be computed);
3. the chain head (last number and hash, kept in its own table) is the last
   event (deleting the newest events is noticed too);
4. replaying the events gives exactly the ``certificates`` rows: same rows,
   same values in every column (an edited or deleted certificate row, or one
   added without its event, is noticed).

Both passes read in pages of 5,000 rows; the second merges the events and
the certificates in UVCI order, so memory does not grow with the ledger.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from signer.ledger.store import COLUMNS, RESERVE_FIELDS, Ledger, event_body

#: Problems listed at most (the count of the rest is given).
MAX_REPORTED = 20
_PAGE = 5000


def verify_ledger(ledger: Ledger) -> list[str]:
    """The problems found (empty: the ledger is intact). Memory stays flat
    whatever the ledger's size: the events are read in pages, once in chain
    order and once by UVCI, merged with the certificates in UVCI order."""
    problems: list[str] = []
    _check_chain(ledger, problems)
    _check_rows(ledger, problems)
    return problems


def _check_chain(ledger: Ledger, problems: list[str]) -> None:
    """Checks 1-3: numbering, links and hashes, head."""
    db = ledger.db
    prev_hash, last_seq = "", 0
    while True:
        rows = db.fetchall(
            "SELECT seq, at, uvci, state, actor, detail, prev_hash, hash FROM events "
            "WHERE seq > ? ORDER BY seq LIMIT ?",
            (last_seq, _PAGE),
        )
        if not rows:
            break
        for seq, at, uvci, state, actor, detail_text, stored_prev, stored_hash in rows:
            seq = int(seq)
            if seq != last_seq + 1:
                problems.append(f"events {last_seq + 1}..{seq - 1} are missing (deleted)")
            if stored_prev != prev_hash:
                problems.append(f"event {seq}: does not follow the event before it (chain broken)")
            digest = ledger.key.chain_hash(stored_prev, event_body(seq, at, uvci, state, actor, detail_text))
            if digest != stored_hash:
                problems.append(f"event {seq}: its content does not match its hash (edited)")
            prev_hash, last_seq = stored_hash, seq
    head = db.fetchone("SELECT seq, hash FROM chain_head WHERE id = 1")
    if head is None:
        problems.append("the chain head is missing")
    elif int(head[0]) != last_seq or head[1] != prev_hash:
        if int(head[0]) > last_seq:
            problems.append(
                f"events {last_seq + 1}..{int(head[0])} are missing (deleted; the chain head is event {int(head[0])})"
            )
        else:
            problems.append(f"the chain head (event {int(head[0])}) is not the last event ({last_seq})")


def _order(db_dialect: str) -> str:
    # byte order in both databases (PostgreSQL's default collation may not be), so
    # that the two streams below are merged in the same order Python compares in
    return ' COLLATE "C"' if db_dialect == "postgresql" else ""


def _events_by_uvci(ledger: Ledger) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
    """(uvci, its events in order), UVCI by UVCI, read in pages."""
    collate = _order(ledger.db.dialect)
    last: tuple[str, int] = ("", 0)
    group: list[tuple[Any, ...]] = []
    while True:
        rows = ledger.db.fetchall(
            f"SELECT uvci, seq, at, state, actor, detail FROM events "
            f"WHERE uvci{collate} > ? OR (uvci = ? AND seq > ?) ORDER BY uvci{collate}, seq LIMIT ?",
            (last[0], last[0], last[1], _PAGE),
        )
        if not rows:
            break
        for row in rows:
            if group and row[0] != group[0][0]:
                yield str(group[0][0]), group
                group = []
            group.append(row)
        last = (str(rows[-1][0]), int(rows[-1][1]))
    if group:
        yield str(group[0][0]), group


def _certificates_by_uvci(ledger: Ledger, names: list[str]) -> Iterator[dict[str, Any]]:
    collate = _order(ledger.db.dialect)
    last = ""
    first = True
    while True:
        rows = ledger.db.fetchall(
            f"SELECT {', '.join(names)} FROM certificates WHERE (uvci{collate} > ? OR ? = 1) "
            f"ORDER BY uvci{collate} LIMIT ?",
            (last, 1 if first else 0, _PAGE),
        )
        first = False
        if not rows:
            return
        for row in rows:
            yield dict(zip(names, row, strict=True))
        last = str(rows[-1][0])


def _check_rows(ledger: Ledger, problems: list[str]) -> None:
    """Check 4: a merge of the certificates and the events, both in UVCI order."""
    names = ["uvci", *(n for n in COLUMNS if n not in ("id", "uvci"))]
    events = _events_by_uvci(ledger)
    certs = _certificates_by_uvci(ledger, names)
    event = next(events, None)
    cert = next(certs, None)
    while event is not None or cert is not None:
        if cert is None or (event is not None and event[0] < cert["uvci"]):
            assert event is not None
            problems.append(f"certificate {event[0]}: its row is missing (deleted)")
            event = next(events, None)
            continue
        if event is None or cert["uvci"] < event[0]:
            problems.append(f"certificate {cert['uvci']}: no event records it (inserted behind the ledger's back)")
            cert = next(certs, None)
            continue
        want = _replay(event[0], event[1], problems)
        if want is not None:
            differ = sorted(n for n in names if _norm(cert[n]) != _norm(want[n]))
            if differ:
                problems.append(f"certificate {cert['uvci']}: {', '.join(differ)} differ from its events (edited)")
        event, cert = next(events, None), next(certs, None)


def _replay(uvci: str, events: list[tuple[Any, ...]], problems: list[str]) -> dict[str, Any] | None:
    """The row the events of one UVCI describe (None when they make no sense)."""
    row: dict[str, Any] | None = None
    for _, seq, at, state, actor, detail_text in events:
        try:
            detail = json.loads(detail_text)
            if not isinstance(detail, dict):
                raise ValueError
        except ValueError:
            problems.append(f"event {seq}: unreadable detail")
            return None
        detail.pop("note", None)
        if state == "reserved":
            if row is not None:
                problems.append(f"event {seq}: {uvci} reserved twice")
            row = {name: None for name in COLUMNS if name != "id"}
            row.update({name: detail.get(name) for name in RESERVE_FIELDS})
            row.update(uvci=uvci, created_at=at)
        elif row is None:
            problems.append(f"event {seq}: {uvci} changed before it was reserved")
            return None
        for name, value in detail.items():
            if name in row and name not in ("uvci", "created_at"):
                row[name] = value
        row.update(state=state, actor=actor, updated_at=at)
    return row


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value


def summarise(problems: list[str]) -> list[str]:
    """At most :data:`MAX_REPORTED` lines, then how many more."""
    if len(problems) <= MAX_REPORTED:
        return problems
    return [*problems[:MAX_REPORTED], f"... and {len(problems) - MAX_REPORTED} more problem(s)"]
