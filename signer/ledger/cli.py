"""``python -m signer ledger ...``: check and query the issuance ledger.

    $ python -m signer ledger verify --ledger ledger.sqlite
    ledger ok: 9,012 events, 3,000 certificates (written 3,000), head 4f2a...
    $ python -m signer ledger show --ledger ledger.sqlite --record-id HCM-000001
    $ python -m signer ledger show --ledger ledger.sqlite --citizen    # asks for the ID (not echoed)

``verify`` exits 0 when the audit chain is whole and every certificate row
is what its events say, 1 with one line per problem otherwise. ``show``
prints one JSON object per certificate. A citizen ID is read from stdin (or
asked for without echo on a terminal), never from the command line, and never
printed: the ledger only holds its keyed hash.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from signer.ledger.audit import summarise, verify_ledger
from signer.ledger.store import Certificate, Ledger
from verifier.errors import ConfigError
from verifier.util import write_atomic

#: Dates of ``--date`` are local dates in Viet Nam (UTC+7), as the dose dates.
VN_TZ = dt.timezone(dt.timedelta(hours=7))


def add_ledger_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--ledger",
        required=True,
        metavar="FILE|URL",
        help="the ledger: SQLite file or postgresql:// URL (key: $VNDCC_LEDGER_KEY or FILE.key)",
    )


def open_existing(ns: argparse.Namespace) -> Ledger:
    actor = (os.environ.get("USER") or "").strip() or "unknown"
    return Ledger.open(ns.ledger, actor=actor, create=False)


def register(subparsers: Any) -> None:
    """``ledger verify|status|show|export-revoked|release|manifest|zips``."""
    p = subparsers.add_parser("ledger", help="check and query the issuance ledger")
    sub = p.add_subparsers(dest="ledger_command", required=True, metavar="ACTION")

    v = sub.add_parser("verify", help="check the audit chain and the certificate rows (exit 1 on a problem)")
    add_ledger_argument(v)
    v.set_defaults(func=run_verify)

    st = sub.add_parser("status", help="certificates per state, and the audit chain's head")
    add_ledger_argument(st)
    st.set_defaults(func=run_status)

    s = sub.add_parser("show", help="certificates by UVCI, record id, citizen, centre and day, or DSC")
    add_ledger_argument(s)
    which = s.add_mutually_exclusive_group(required=True)
    which.add_argument("--uvci", metavar="UVCI")
    which.add_argument("--record-id", metavar="ID")
    which.add_argument(
        "--citizen",
        action="store_true",
        help="the citizen ID is read from stdin (or asked for on a terminal), never from the command line",
    )
    which.add_argument("--date", metavar="YYYY-MM-DD", help="signed on this day (Viet Nam time); needs --centre")
    which.add_argument("--kid", metavar="BASE64", help="signed with the DSC of this kid")
    s.add_argument("--centre", metavar="NAME", help="only this health centre")
    s.set_defaults(func=run_show)


    e = sub.add_parser(
        "export-revoked",
        help="write the UVCIs verifiers must refuse (revoked, superseded, released), one per line",
        description="For the trust list: python -m keys export-trust-list --revoked-uvcis FILE.",
    )
    add_ledger_argument(e)
    e.add_argument("--out", type=Path, required=True, metavar="FILE")
    e.set_defaults(func=run_export_revoked)

    register_release(sub)

    m = sub.add_parser(
        "manifest",
        help="write DIR/manifest.jsonl again from the ledger (e.g. after a revocation)",
        description="One line per current certificate of DIR; under the folder's lock.",
    )
    add_ledger_argument(m)
    m.add_argument("--out", type=Path, required=True, metavar="DIR", help="the batch's output folder")
    m.set_defaults(func=run_manifest)

    z = sub.add_parser(
        "zips",
        help="one ZIP per commune of a batch folder's current certificates, for distribution",
        description="Each ZIP holds one commune's current PDFs and QR PNGs and an index.csv "
        "(record_id, uvci, files), made from DIR/manifest.jsonl; deterministic (same certificates, "
        "same bytes) and written atomically. With --ledger the manifest is made again from the "
        "ledger first (under the folder's lock). See docs/ledger.md, 'One ZIP per commune'.",
    )
    z.add_argument("out", type=Path, metavar="DIR", help="the batch's output folder")
    z.add_argument("--dest", type=Path, metavar="DEST", help="where the ZIPs go (default DIR/communes)")
    z.add_argument(
        "--ledger",
        metavar="FILE|URL",
        help="make DIR/manifest.jsonl from this ledger first, if it changed (e.g. after a revocation)",
    )
    z.set_defaults(func=run_zips)


def register_release(sub: Any) -> None:
    from signer.cli import MAX_NOTE, text_arg

    r = sub.add_parser(
        "release",
        help="give up the certificates an interrupted batch reserved in a folder for records no longer in its input",
        description="Marks every reserved or signed (never written) certificate of DIR released "
        "(exported as revoked: its file may have reached the disk) and removes the files a signed "
        "one had already put in DIR. Takes the folder's lock: not while a batch runs there.",
    )
    add_ledger_argument(r)
    r.add_argument("--out", type=Path, required=True, metavar="DIR", help="the batch's output folder")
    r.add_argument("--reason", required=True, type=text_arg("the reason", MAX_NOTE), metavar="TEXT")
    r.set_defaults(func=run_release)


def run_release(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from signer.batch import BatchOutput, sha256_file
    from signer.ledger.store import MANIFEST_STALE, PENDING, Change

    out = out or sys.stdout
    if not ns.out.is_dir():
        raise ConfigError(f"not a folder: {ns.out}")
    actor = (os.environ.get("USER") or "").strip() or "unknown"
    ledger = Ledger.open(ns.ledger, actor=actor, create=False)
    removed = 0
    try:
        with BatchOutput(ns.out) as output:
            pending = list(ledger.in_states(PENDING, out_dir=output.key))
            # the ledger first: a file is removed only once its certificate is released
            ledger.apply(
                changes=[Change(c.uvci, "released", note=f"released: {ns.reason}") for c in pending],
                meta={MANIFEST_STALE + output.key: ledger.clock()},
            )
            for cert in pending:
                for entry in cert.files:
                    path = output.path / entry.name
                    if "/" not in entry.name and path.is_file() and sha256_file(path) == entry.sha256:
                        path.unlink()
                        removed += 1
    finally:
        ledger.close()
    print(f"{len(pending)} certificate(s) released in {ns.out}, {removed} file(s) removed", file=out)
    return 0


def run_manifest(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from signer.batch import BatchOutput, write_manifest

    out = out or sys.stdout
    if not ns.out.is_dir():
        raise ConfigError(f"not a folder: {ns.out}")
    ledger = open_existing(ns)
    try:
        with BatchOutput(ns.out) as output:
            count = write_manifest(ledger, output, force=True)
    finally:
        ledger.close()
    print(f"{ns.out / 'manifest.jsonl'}: {count} certificate(s)", file=out)
    return 0


def run_zips(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from signer.cli import COMMUNES_DIR, report_zips
    from signer.communes import commune_zips, write_zips

    out = out or sys.stdout
    if not ns.out.is_dir():
        raise ConfigError(f"not a folder: {ns.out}")
    dest = ns.dest or ns.out / COMMUNES_DIR
    if ns.ledger is None:
        zips = commune_zips(ns.out, dest)
    else:
        from signer.batch import BatchOutput, write_manifest

        ledger = open_existing(ns)
        try:
            with BatchOutput(ns.out) as output:
                write_manifest(ledger, output)
                zips = write_zips(output.path, dest)
        finally:
            ledger.close()
    for z in zips.zips:
        if z.changed:
            print(f"written: {z.path} ({z.certificates} certificate(s))", file=out)
    for name in zips.removed:
        print(f"removed: {zips.dest / name} (no current certificate)", file=out)
    report_zips(zips, out)
    return 0


def register_revoke(subparsers: Any) -> None:
    """``revoke --ledger DB (--uvci U | --record-id ID | --kid KID) --reason TEXT``."""
    from signer.cli import MAX_NOTE, text_arg

    p = subparsers.add_parser(
        "revoke",
        help="revoke certificates in the ledger: one UVCI, a record's current one, or all of a DSC",
        description="Marks the certificates revoked (with the reason, who and when, in the audit "
        "trail) and lists them. Publish with 'signer ledger export-revoked' and "
        "'python -m keys export-trust-list --revoked-uvcis FILE'. A record whose certificate "
        "was revoked is not issued again by 'signer batch' ('signer reissue --revoked' does).",
    )
    add_ledger_argument(p)
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--uvci", metavar="UVCI")
    which.add_argument("--record-id", metavar="ID", help="the record's current certificate")
    which.add_argument(
        "--kid",
        metavar="BASE64",
        help="every certificate signed with this DSC (after 'python -m keys revoke-dsc'); lists them",
    )
    p.add_argument("--centre", metavar="NAME", help="with --record-id: the health centre")
    p.add_argument("--reason", required=True, type=text_arg("the reason", MAX_NOTE), metavar="TEXT")
    p.add_argument("--operator", type=text_arg("the operator", MAX_NOTE), metavar="NAME", help="default: $USER")
    p.set_defaults(func=run_revoke)


def run_revoke(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    actor = (ns.operator or os.environ.get("USER") or "").strip() or "unknown"
    ledger = Ledger.open(ns.ledger, actor=actor, create=False)
    try:
        if ns.uvci:
            cert = ledger.by_uvci(ns.uvci.strip())
            if cert is None:
                raise ConfigError("no certificate with this UVCI in the ledger")
            if cert.state not in ("written", "superseded"):
                raise ConfigError(f"{cert.uvci} is {cert.state}: only issued certificates can be revoked")
            targets = [cert]
        elif ns.record_id:
            targets = [c for c in ledger.by_record(ns.record_id, ns.centre) if c.state == "written"]
            if len({c.centre for c in targets}) > 1:
                raise ConfigError("this record id is current at several centres: say which with --centre")
            if not targets:
                raise ConfigError("this record has no current certificate in the ledger")
        else:
            targets = [c for c in ledger.by_kid(ns.kid) if c.state in ("written", "superseded")]
        ledger.revoke(targets, ns.reason)
        for cert in targets:
            print(f"revoked {cert.uvci} (record {cert.record_id}, {cert.centre}, was {cert.state})", file=out)
        refresh_manifests(ledger, {c.out_dir for c in targets}, out)
    finally:
        ledger.close()
    print(
        f"{len(targets)} certificate(s) revoked; publish: signer ledger export-revoked, then "
        "python -m keys export-trust-list --revoked-uvcis FILE",
        file=out,
    )
    return 0


def refresh_manifests(ledger: Ledger, folders: set[str], out: TextIO) -> None:
    """Make the manifests of these batch folders again now (after a revocation),
    so that they, and the commune ZIPs made from them, list only current
    certificates. Best effort: a folder that is not here (another machine's
    storage) or in use by a batch (which makes its manifest when it ends)
    keeps the flag that says its manifest is out of date."""
    from signer.batch import BatchOutput, write_manifest
    from signer.cli import COMMUNES_DIR
    from signer.communes import SOURCE_MARK

    for folder in sorted(folders):
        path = Path(folder)
        if not path.is_dir():
            continue
        try:
            with BatchOutput(path) as output:
                count = write_manifest(ledger, output)
        except (ConfigError, OSError) as err:
            print(f"note: the manifest of {path} was not made again now ({err}); the next batch there makes it", file=out)
            continue
        if count is not None:
            print(f"manifest: {path / 'manifest.jsonl'} ({count} certificate(s))", file=out)
        if (path / COMMUNES_DIR / SOURCE_MARK).exists():
            print(f"commune ZIPs in {path / COMMUNES_DIR} still hold the revoked certificate(s): "
                  f"signer ledger zips {path}", file=out)  # fmt: skip


def run_export_revoked(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ledger = open_existing(ns)
    try:
        uvcis = ledger.revoked_uvcis()
    finally:
        ledger.close()
    try:
        write_atomic(ns.out, "".join(f"{u}\n" for u in uvcis).encode("ascii"), mode=0o644)
    except OSError as err:
        raise ConfigError(f"cannot write {ns.out}: {err.strerror or err}") from None
    print(f"{len(uvcis)} UVCI(s) written to {ns.out}", file=out)
    return 0


def run_verify(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ledger = open_existing(ns)
    try:
        problems = verify_ledger(ledger)
        seq, head = ledger.head()
        counts = ledger.counts()
    finally:
        ledger.close()
    if problems:
        for line in summarise(problems):
            print(f"ledger verify: {line}", file=out)
        print(f"ledger verify: FAILED, {len(problems)} problem(s) in {ns.ledger}", file=out)
        return 1
    states = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
    print(f"ledger ok: {seq} event(s), {sum(counts.values())} certificate(s) ({states or 'none'}), head {head[:16]}", file=out)
    return 0


def run_status(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ledger = open_existing(ns)
    try:
        seq, head = ledger.head()
        counts = ledger.counts()
    finally:
        ledger.close()
    for state, n in sorted(counts.items()):
        print(f"{state:10} {n}", file=out)
    print(f"events     {seq} (head {head})", file=out)
    return 0


def read_citizen_id(stdin: TextIO | None = None) -> str:
    stdin = stdin or sys.stdin
    value = getpass.getpass("citizen ID (not echoed): ") if stdin.isatty() else stdin.readline()
    value = value.strip()
    if not value:
        raise ConfigError("no citizen ID given on stdin")
    return value


def run_show(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ledger = open_existing(ns)
    try:
        found: list[Certificate]
        if ns.uvci:
            cert = ledger.by_uvci(ns.uvci.strip())
            found = [cert] if cert else []
        elif ns.record_id:
            found = ledger.by_record(ns.record_id, ns.centre)
        elif ns.citizen:
            found = ledger.by_citizen(read_citizen_id())
        elif ns.kid:
            found = ledger.by_kid(ns.kid)
        else:
            if not ns.centre:
                raise ConfigError("--date needs --centre NAME")
            try:
                day = dt.date.fromisoformat(ns.date)
            except ValueError:
                raise ConfigError(f"--date: not a date (YYYY-MM-DD): {ns.date[:40]!r}") from None
            found = ledger.by_centre_and_day(ns.centre, day, VN_TZ)
        if ns.centre and not ns.date:
            found = [c for c in found if c.centre == ns.centre]
    finally:
        ledger.close()
    for cert in found:
        print(json.dumps(cert.to_json(), ensure_ascii=False), file=out)
    if not found:
        print("no certificate found", file=sys.stderr)
        return 1
    return 0
