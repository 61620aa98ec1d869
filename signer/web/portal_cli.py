"""``signer portal ...``: the portal's administration commands, one group that
several modules add to (each appends its ``register(subparsers)`` to
:data:`SUBCOMMANDS`).

    python -m signer portal claim-codes --ledger L --centre C --missing-phone --out slips.csv
    python -m signer portal claim-codes --ledger L --centre C --record-id HCM-000006 --out slips.csv

The CSV (created 0600, never overwritten) holds: record id, commune, claim
code, expiry (UTC): what the health centre prints on the reconciliation list
or a slip. Only keyed hashes of the codes stay in the ledger.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from verifier.errors import ConfigError

Registrar = Callable[[Any], None]


def register_claim_codes(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "claim-codes",
        help="print claim codes (fallback for a wrong or missing phone) for records of a centre",
        description="One new claim code per record (100 bits, single use, expires): for the citizen "
        "whose phone number is wrong or missing (docs/portal.md).",
    )
    p.add_argument("--ledger", required=True, metavar="FILE|URL", help="the ledger (the portal's tables beside it)")
    p.add_argument("--centre", required=True, help="the health centre whose records these are")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--record-id", action="append", metavar="ID", help="a record (repeatable)")
    which.add_argument("--missing-phone", action="store_true", help="every record of the centre without a phone")
    p.add_argument("--days", type=int, default=60, help="validity in days (default 60)")
    p.add_argument("--out", type=Path, required=True, metavar="FILE.csv", help="the CSV to write (must not exist)")
    p.set_defaults(func=run_claim_codes)


def register_api_key(subparsers: Any) -> None:
    """``portal api-key``: the health-centre API's keys (signer.web.apikeys)."""
    from signer.web.apikeys import register

    register(subparsers)


#: The ``portal`` group's subcommands.
SUBCOMMANDS: list[Registrar] = [register_claim_codes, register_api_key]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("portal", help="citizen portal and health-centre API administration")
    sub = p.add_subparsers(dest="portal_command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)


def run_claim_codes(ns: argparse.Namespace, *, now: float | None = None) -> int:
    from signer.ledger import Ledger
    from signer.web import claims
    from signer.web.keys import PortalKeys

    if not 1 <= ns.days <= 366:
        raise ConfigError("--days must be 1..366")
    out: Path = ns.out
    if out.exists():
        raise ConfigError(f"{out} exists; claim codes are never written over (choose another --out)")
    ledger = Ledger.open(ns.ledger, actor="portal claim-codes", create=False)
    try:
        db = ledger.db
        if ns.missing_phone:
            rows = db.fetchall("SELECT record_id FROM holders WHERE centre = ? AND phone_enc IS NULL"
                               " ORDER BY record_id", (ns.centre,))
            record_ids = [str(r[0]) for r in rows]
        else:
            record_ids = list(dict.fromkeys(ns.record_id))
            known = {str(r[0]) for r in db.fetchall("SELECT record_id FROM holders WHERE centre = ?", (ns.centre,))}
            unknown = [r for r in record_ids if r not in known]
            if unknown:
                raise ConfigError(f"{len(unknown)} record id(s) have no holder row at this centre "
                                  f"(not signed by a ledger batch, or another centre), e.g. {unknown[0]}")
        communes = {
            str(r[0]): str(r[1] or "")
            for r in db.fetchall("SELECT record_id, commune FROM certificates WHERE centre = ? ORDER BY id",
                                 (ns.centre,))
        }
        moment = int(time.time() if now is None else now)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["record_id", "commune", "claim_code", "expires"])
        issued = claims.issue(db, PortalKeys(ledger.key.portal), centre=ns.centre, record_ids=record_ids,
                              now=moment, days=ns.days, created_by=os.environ.get("USER", "cli"))
        for item in issued:
            expires = dt.datetime.fromtimestamp(item.expires_at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            writer.writerow([item.record_id, communes.get(item.record_id, ""), item.code, expires])
    finally:
        ledger.close()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as err:
        raise ConfigError(f"cannot create {out}: {err.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(buffer.getvalue())
    print(f"claim codes: {len(issued)} written to {out} (0600; print, hand out, then delete the file)")
    return 0
