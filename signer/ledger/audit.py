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
"""

from __future__ import annotations

import json
from typing import Any

from signer.ledger.store import COLUMNS, RESERVE_FIELDS, Ledger, event_body

#: Problems listed at most (the count of the rest is given).
MAX_REPORTED = 20
_PAGE = 5000


def verify_ledger(ledger: Ledger) -> list[str]:
    """The problems found (empty: the ledger is intact)."""
    db = ledger.db
    problems: list[str] = []
    expected: dict[str, dict[str, Any]] = {}
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
            _replay(expected, uvci, state, actor, at, detail_text, seq, problems)
            prev_hash, last_seq = stored_hash, seq
    head = db.fetchone("SELECT seq, hash FROM chain_head WHERE id = 1")
    if head is None:
        problems.append("the chain head is missing")
    elif int(head[0]) != last_seq or head[1] != prev_hash:
        if int(head[0]) > last_seq:
            problems.append(f"events {last_seq + 1}..{int(head[0])} are missing (deleted; the chain head is event {int(head[0])})")
        else:
            problems.append(f"the chain head (event {int(head[0])}) is not the last event ({last_seq})")
    _compare_rows(ledger, expected, problems)
    return problems


def _replay(
    expected: dict[str, dict[str, Any]],
    uvci: str,
    state: str,
    actor: str,
    at: str,
    detail_text: str,
    seq: int,
    problems: list[str],
) -> None:
    try:
        detail = json.loads(detail_text)
        if not isinstance(detail, dict):
            raise ValueError
    except ValueError:
        problems.append(f"event {seq}: unreadable detail")
        return
    detail.pop("note", None)
    if state == "reserved":
        if uvci in expected:
            problems.append(f"event {seq}: {uvci} reserved twice")
        row: dict[str, Any] = {name: None for name in COLUMNS if name != "id"}
        row.update({name: detail.get(name) for name in RESERVE_FIELDS})
        row.update(uvci=uvci, created_at=at)
        expected[uvci] = row
    elif uvci not in expected:
        problems.append(f"event {seq}: {uvci} changed before it was reserved")
        return
    row = expected[uvci]
    for name, value in detail.items():
        if name in row and name not in ("uvci", "created_at"):
            row[name] = value
    row.update(state=state, actor=actor, updated_at=at)


def _compare_rows(ledger: Ledger, expected: dict[str, dict[str, Any]], problems: list[str]) -> None:
    names = [n for n in COLUMNS if n != "id"]
    seen: set[str] = set()
    last = 0
    while True:
        rows = ledger.db.fetchall(
            f"SELECT id, {', '.join(names)} FROM certificates WHERE id > ? ORDER BY id LIMIT ?", (last, _PAGE)
        )
        if not rows:
            break
        for row in rows:
            last = int(row[0])
            actual = dict(zip(names, row[1:], strict=True))
            uvci = str(actual["uvci"])
            seen.add(uvci)
            want = expected.get(uvci)
            if want is None:
                problems.append(f"certificate {uvci}: no event records it (inserted behind the ledger's back)")
                continue
            differ = sorted(n for n in names if _norm(actual[n]) != _norm(want[n]))
            if differ:
                problems.append(f"certificate {uvci}: {', '.join(differ)} differ from its events (edited)")
    for uvci in expected.keys() - seen:
        problems.append(f"certificate {uvci}: its row is missing (deleted)")


def _norm(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    return value


def summarise(problems: list[str]) -> list[str]:
    """At most :data:`MAX_REPORTED` lines, then how many more."""
    if len(problems) <= MAX_REPORTED:
        return problems
    return [*problems[:MAX_REPORTED], f"... and {len(problems) - MAX_REPORTED} more problem(s)"]
