"""``python -m signer pdf``: signed PDF passports (and their HC1) for a records file.

    $ export VNDCC_KEY_PASSPHRASE=...                 # or VNDCC_PKCS11_PIN for a token
    $ python -m signer pdf examples/records.jsonl --out out/ \\
          --key dsc.key.pem --cert dsc.pem --chain csca.pem \\
          --crl pki/crl/latest.crl --centre "Trạm Y tế Phường Bến Nghé"

Per record: ``DIR/<record_id>.pdf`` (certified PAdES signature by the health
centre's key, QR inside) and ``DIR/<record_id>.hc1.txt``, plus a line in
``DIR/manifest.jsonl``. The same key object signs the HC1 and the PDF (one
PKCS#11 session for a token). Exit codes as ``signer sign``: 0 all signed,
1 some records failed (reported on stderr, the others are signed), 2 bad
usage or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, TextIO

from keys.loader import add_key_arguments, key_spec_from_args, open_key
from signer.issue import DEFAULT_VALIDITY_DAYS, Hc1Issuer
from signer.manifest import Manifest, manifest_entry, write_atomic
from signer.records import Record, RowProblem, is_verified, read_records
from verifier.errors import ConfigError, InputError

# signer.pdf.sign / signer.pdf.model (pyHanko, fontTools: ~1 s to import) are
# imported when the command runs, so `python -m signer sign` does not pay for them.


def _read_crl(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read CRL {path}: {err.strerror}") from None


def register(subparsers: Any) -> None:
    """``pdf RECORDS --out DIR --centre NAME --crl FILE <key options>``."""
    from signer.cli import DEFAULT_ISSUER

    p = subparsers.add_parser(
        "pdf",
        help="sign verified records into signed PDF passports (PAdES) with their QR",
        description="Write DIR/<record_id>.pdf (certified PAdES signature, QR inside) and "
        "DIR/<record_id>.hc1.txt per record, and add them to DIR/manifest.jsonl.",
    )
    p.add_argument("records", type=Path, help="records file (.jsonl or .csv)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--centre", required=True, help="issuing health centre (shown and signed)")
    p.add_argument("--location", help="signature location (default: the centre)")
    p.add_argument(
        "--crl",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="the CSCA's current CRL (DER or PEM), embedded for offline validation; repeatable",
    )
    p.add_argument("--issuer", default=DEFAULT_ISSUER, help="certificate issuer name (v.is)")
    p.add_argument("--country", default="VN", help="issuing country (CWT iss, v.co, UVCI)")
    p.add_argument("--validity-days", type=int, default=DEFAULT_VALIDITY_DAYS, metavar="N",
                   help="QR validity in days (default 365)")
    p.add_argument("--at", metavar="ISO-8601", help="signing time (default: now)")
    p.add_argument("--columns", metavar="FILE", help="CSV column mapping")
    p.add_argument("--allow-unverified", action="store_true",
                   help="also sign records without a verification stamp (needs --override-reason)")
    p.add_argument("--override-reason", metavar="TEXT", help="why unverified records are signed")
    p.add_argument("--operator", metavar="NAME", help="who overrides (default: $USER)")
    add_key_arguments(p)
    p.set_defaults(func=run_pdf)


def run_pdf(ns: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from signer.cli import _SAFE_ID, _override, _self_check, parse_time
    from signer.pdf.model import passport_data
    from signer.pdf.sign import PassportPdfSigner

    out = out or sys.stdout
    err = err or sys.stderr
    now = parse_time(ns.at) if ns.at else dt.datetime.now(dt.UTC)
    if not ns.records.is_file():
        raise ConfigError(f"records file not found: {ns.records}")
    override = _override(ns)
    crls = [_read_crl(p) for p in ns.crl]
    spec = key_spec_from_args(ns)
    try:
        ns.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {ns.out}: {exc.strerror}") from None
    signed = failed = 0
    seen: set[str] = set()

    def fail(line: int, rid: str, reason: str) -> None:
        nonlocal failed
        failed += 1
        print(f"line {line}: record {rid if _SAFE_ID.fullmatch(rid) else '?'}: {reason}", file=err)

    with open_key(spec) as key:
        issuer = Hc1Issuer(key, issuer_name=ns.issuer, country=ns.country,
                           validity_days=ns.validity_days)
        issuer.check_time(now)
        pdf_signer = PassportPdfSigner(key, centre=ns.centre, location=ns.location, crls=crls,
                                       now=now)
        manifest = Manifest(ns.out)
        try:
            for item in read_records(ns.records, column_map=ns.columns):
                if isinstance(item, RowProblem):
                    fail(item.line, item.record_id, f"{item.reason}: {item.message}")
                    continue
                record: Record = item
                rid = record.record_id
                if not _SAFE_ID.fullmatch(rid) or rid in seen:
                    fail(record.line, rid, "record id missing, duplicate or not usable as a file name")
                    continue
                seen.add(rid)
                verified = is_verified(record)
                if not verified and override is None:
                    fail(record.line, rid, "not verified (run the checks, or --allow-unverified)")
                    continue
                try:
                    issued = issuer.issue(record, now=now, allow_unverified=not verified)
                    data = passport_data(
                        dcc=issued.dcc, hc1=issued.hc1, centre=ns.centre, record=record,
                        issued_at=dt.datetime.fromtimestamp(issued.iat, dt.UTC),
                        expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC),
                    )
                    pdf = pdf_signer.sign(data, now=now)
                except InputError as exc:
                    fail(record.line, rid, str(exc))
                    continue
                _self_check(issued, issuer)
                files = {f"{rid}.pdf": pdf, f"{rid}.hc1.txt": issued.hc1.encode("ascii")}
                for name, blob in files.items():
                    write_atomic(ns.out / name, blob)
                manifest.add(manifest_entry(issued, line=record.line, verified=verified,
                                            files=tuple(files),
                                            override=None if verified else override))
                signed += 1
        finally:
            manifest.commit()
    print(f"signed {signed} of {signed + failed} record(s) into {ns.out} (PDF + HC1)", file=out)
    if failed:
        print(f"error: {failed} record(s) not signed (see the lines above)", file=err)
        return 1
    return 0
