"""Holder rows: who may look up which record's certificates in the portal.

Every ledger batch run calls :func:`register_holders` for the records it
admits (the same transaction as their reservations), so the portal knows the
record's ID + date of birth (as a keyed hash) and its phone (encrypted)
without ever storing them in clear. A correction of the phone in a later
export reaches the portal with the next run; a phone the citizen set with a
claim code is kept until the record brings a different phone of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from signer.ledger import Ledger
from signer.records import Record
from signer.web.keys import PortalKeys

_UPSERT = """
INSERT INTO holders (centre, record_id, citizen_hash, lookup_hash, phone_enc, phone_hash,
                     phone_source, record_phone, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'record', ?, ?)
ON CONFLICT (centre, record_id) DO UPDATE SET
    citizen_hash = excluded.citizen_hash,
    lookup_hash = excluded.lookup_hash,
    phone_enc = CASE WHEN holders.phone_source = 'claim'
                      AND holders.record_phone IS NOT DISTINCT FROM excluded.record_phone
                     THEN holders.phone_enc ELSE excluded.phone_enc END,
    phone_hash = CASE WHEN holders.phone_source = 'claim'
                       AND holders.record_phone IS NOT DISTINCT FROM excluded.record_phone
                      THEN holders.phone_hash ELSE excluded.phone_hash END,
    phone_source = CASE WHEN holders.phone_source = 'claim'
                         AND holders.record_phone IS NOT DISTINCT FROM excluded.record_phone
                        THEN 'claim' ELSE 'record' END,
    record_phone = excluded.record_phone,
    updated_at = excluded.updated_at
WHERE holders.citizen_hash IS DISTINCT FROM excluded.citizen_hash
   OR holders.lookup_hash IS DISTINCT FROM excluded.lookup_hash
   OR holders.record_phone IS DISTINCT FROM excluded.record_phone
"""  # a re-run of unchanged records writes nothing (the sealed phone differs each time: its nonce)


def holder_row(keys: PortalKeys, citizen_hash: str, centre: str, record: Record, at: str) -> tuple[Any, ...]:
    phone = getattr(record, "phone", "") or ""
    phone_hash = keys.phone_hash(phone) if phone else None
    return (
        centre,
        record.record_id,
        citizen_hash,
        keys.lookup_hash(record.id_number, record.date_of_birth),
        keys.seal_phone(phone, centre, record.record_id) if phone else None,
        phone_hash,
        phone_hash,
        at,
    )


def register_holders(ledger: Ledger, centre: str, records: Sequence[Record]) -> int:
    """Insert or refresh the holder rows of ``records`` (those with an ID
    number: without one nobody can look the record up). Returns the rows written."""
    keys = PortalKeys(ledger.key.portal)
    at = ledger.clock()
    rows = []
    for record in records:
        citizen_hash = ledger.key.citizen_hash(record.id_number)
        if citizen_hash is not None:
            rows.append(holder_row(keys, citizen_hash, centre, record, at))
    with ledger.db.transaction():
        return ledger.db.executemany(_UPSERT, rows)
