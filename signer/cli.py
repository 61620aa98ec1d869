"""Command line of the signer: ``python -m signer COMMAND`` (``vn-dcc-sign``).

    $ export VNDCC_KEY_PASSPHRASE=...            # never on the command line
    $ python -m signer sign examples/records.jsonl --out out/ \\
          --key dsc.key.pem --cert dsc.pem --issuer "Ministry of Health of Viet Nam"

Each command lives in a ``register(subparsers)`` function that adds its
parser and sets ``func`` (``Namespace -> exit code``); adding a command is
one line in :data:`REGISTRARS` (its command names and ``"module:function"``:
a run imports only its own command's module). The shell is thin: the work is done by
:mod:`signer.issue`, :mod:`signer.qr` and :mod:`signer.manifest`.

Exit codes: 0 all records signed; 1 some records failed (each reported on
stderr with its line, record id and reason; the others are signed); 2 bad
usage, unreadable input, unusable key or configuration (one line on stderr).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib
import os
import re
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from keys.loader import add_key_arguments, key_secret, key_spec_from_args, open_key
from signer.issue import DEFAULT_DEFLATE_LEVEL, DEFAULT_VALIDITY_DAYS
from verifier.errors import ConfigError, PassportError
from verifier.util import CommandLineParser, parse_iso_time

if TYPE_CHECKING:
    from signer.manifest import Override

DEFAULT_ISSUER = "Ministry of Health of Viet Nam"

Registrar = Callable[[Any], None]


parse_time = parse_iso_time  # ISO 8601 with or without fraction and zone (no zone = UTC)

#: ``--centre`` and ``--location``: shown on every passport and signed into
#: the PDF signature; longer names are a mistake (and the layout's fitting
#: took 38 s per record for 30,000 characters).
MAX_CENTRE = 200
#: ``--override-reason`` and ``--operator``, recorded in the manifest.
MAX_NOTE = 500
#: ``--jobs``: each worker is a forked process holding the key.
MAX_JOBS = 64
MAX_URL = 2000


def text_arg(what: str, max_len: int) -> Callable[[str], str]:
    """argparse type: 1 to ``max_len`` characters, no control characters, not only spaces."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"{what} must not be empty")
        if len(text) > max_len:
            raise argparse.ArgumentTypeError(
                f"{what} has {len(text)} characters; at most {max_len}"
            )
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
            raise argparse.ArgumentTypeError(f"{what} must not contain control characters")
        return text

    return parse


def _country(text: str) -> str:
    """``--country``: ISO 3166-1 alpha-2, as the CWT ``iss``, ``v.co`` and the UVCI need."""
    if not re.fullmatch(r"[A-Z]{2}", text):
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise argparse.ArgumentTypeError(f"not an ISO 3166-1 alpha-2 code such as VN: {shown!r}")
    return text


def _url(text: str) -> str:
    """``--tsa-url``: an http(s) URL with a host name that can be looked up."""
    shown = text if len(text) <= 60 else text[:60] + "..."
    try:
        parts = urllib.parse.urlsplit(text)
        host = parts.hostname or ""
        host.encode("idna")  # a label over 63 characters, or an empty one, fails here
        _ = parts.port  # raises ValueError for a bad port
    except (ValueError, UnicodeError):
        raise argparse.ArgumentTypeError(f"not a usable URL: {shown!r}") from None
    if len(text) > MAX_URL or parts.scheme not in ("http", "https") or not host:
        raise argparse.ArgumentTypeError(f"not an http(s) URL: {shown!r}")
    return text


# --------------------------------------------------------------------------
# sign


_COMMANDS = {
    "sign": (
        "sign verified records into HC1 QR texts and images (and PDF passports with --pdf)",
        "Sign each record of a JSON Lines or CSV file into DIR/<record_id>.hc1.txt and "
        "DIR/<record_id>.png (+ .svg, + the signed PDF passport .pdf), and add them to "
        "DIR/manifest.jsonl.",
    ),
    "pdf": (
        "sign verified records into signed PDF passports (PAdES) with their QR",
        "Same as 'sign --pdf' without the PNG: DIR/<record_id>.pdf (certified PAdES signature, "
        "QR inside) and DIR/<record_id>.hc1.txt per record, listed in DIR/manifest.jsonl.",
    ),
    "batch": (
        "sign records exactly once, recorded in the issuance ledger (resumable after a crash)",
        "Like 'sign', with the issuance ledger: each record gets one certificate, whatever "
        "happens; a record already issued with the same data is skipped, a changed record gets "
        "a new certificate that supersedes the old one, and a run that was killed is finished "
        "by running the same command again. DIR/manifest.jsonl is made from the ledger; refused "
        "records are listed in DIR/errors.csv. See docs/ledger.md.",
    ),
    "reissue": (
        "batch, also re-issuing current certificates that expire soon (and revoked ones, --revoked)",
        "A 'batch' run that also gives a new certificate (new UVCI, new validity, PDF too) to each "
        "record whose current certificate expires within --expiring-within, superseding it, and "
        "with --revoked to each record whose certificate was revoked. Records are read from the "
        "same kind of file as 'batch' (the ledger holds no personal data to sign from).",
    ),
}


def register_sign(subparsers: Any, name: str = "sign") -> None:
    """``sign RECORDS --out DIR <key options>`` (and its ``pdf`` variant)."""
    p = add_signing_arguments(subparsers, name)
    p.set_defaults(func=run_sign, png=True, pdf=False, svg=False)


def add_signing_arguments(subparsers: Any, name: str) -> argparse.ArgumentParser:
    """The parser of ``name`` with the options ``sign``, ``pdf`` and ``batch`` share."""
    help_text, description = _COMMANDS[name]
    p: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=description)
    p.add_argument("records", type=Path, help="records file (.jsonl or .csv)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--issuer", default=DEFAULT_ISSUER, help="certificate issuer name (v.is)")
    p.add_argument(
        "--country", type=_country, default="VN", help="issuing country (CWT iss, v.co, UVCI)"
    )
    p.add_argument(
        "--validity-days",
        type=int,
        default=DEFAULT_VALIDITY_DAYS,
        metavar="N",
        help="QR validity in days (default 365 = 12 months; never beyond the DSC's expiry)",
    )
    p.add_argument("--at", metavar="ISO-8601", help="signing time (default: now)")
    p.add_argument(
        "--deflate-level",
        type=int,
        choices=range(10),
        default=DEFAULT_DEFLATE_LEVEL,
        metavar="0-9",
        help="zlib level of the QR text: 0 (default) stores the bytes, fastest; 9 makes the "
        "QR about 1%% smaller for about 16 us more per certificate",
    )
    if name != "pdf":
        p.add_argument("--svg", action="store_true", help="also write DIR/<record_id>.svg")
    p.add_argument("--columns", metavar="FILE", help="CSV column mapping (default templates/columns.json)")
    p.add_argument(
        "--jobs",
        type=_job_count,
        default=1,
        metavar="N",
        help=f"signing processes, this one included: N - 1 workers are forked, each opening the "
        f"key itself, and this process signs too while they are busy (default 1; 0 = one per CPU; "
        f"at most {MAX_JOBS})",
    )
    p.add_argument(
        "--allow-unverified",
        action="store_true",
        help="also sign records without a current verification stamp (needs --override-reason)",
    )
    p.add_argument(
        "--override-reason",
        type=text_arg("the reason", MAX_NOTE),
        metavar="TEXT",
        help="why unverified records are signed",
    )
    p.add_argument(
        "--operator",
        type=text_arg("the operator", MAX_NOTE),
        metavar="NAME",
        help="who overrides (default: $USER)",
    )
    add_pdf_arguments(p, required=name == "pdf")
    add_key_arguments(p)
    return p


def add_pdf_arguments(p: argparse.ArgumentParser, *, required: bool) -> None:
    """Options of the signed PDF passport (``sign --pdf`` and the ``pdf`` command)."""
    g = p.add_argument_group("PDF passport")
    if not required:  # the pdf command always writes the PDF
        g.add_argument(
            "--pdf",
            action="store_true",
            help="also write DIR/<record_id>.pdf, the signed PDF passport with the same QR",
        )
    g.add_argument(
        "--centre",
        type=text_arg("the centre", MAX_CENTRE),
        required=required,
        help=f"issuing health centre (shown and signed; at most {MAX_CENTRE} characters)",
    )
    g.add_argument(
        "--location",
        type=text_arg("the location", MAX_CENTRE),
        help="signature location (default: the centre)",
    )
    g.add_argument(
        "--crl",
        type=Path,
        action="append",
        required=required,
        default=[],
        metavar="FILE",
        help="the CSCA's current CRL (DER or PEM), embedded for offline validation; repeatable",
    )
    g.add_argument(
        "--tsa-url",
        type=_url,
        metavar="URL",
        help="RFC 3161 time-stamping authority (python -m keys tsa-serve): each PDF signature "
        "gets a signature timestamp and the TSA's certificate is embedded (PAdES B-LT); "
        "default: none (B-B with validation data)",
    )
    g.add_argument(
        "--pades-level",
        choices=("B-B", "B-LT", "B-LTA"),
        default=None,
        help="PAdES level of the PDF: B-B (default without --tsa-url), B-LT (default with it), "
        "B-LTA (B-LT plus a document timestamp after the validation data; needs --tsa-url)",
    )


def _override(ns: argparse.Namespace) -> Override | None:
    from signer.manifest import Override

    reason = (ns.override_reason or "").strip()
    if ns.allow_unverified and not reason:
        raise ConfigError("--allow-unverified needs --override-reason TEXT (recorded in the manifest)")
    if reason and not ns.allow_unverified:
        raise ConfigError("--override-reason is only meaningful with --allow-unverified")
    if not ns.allow_unverified:
        return None
    operator = (ns.operator or os.environ.get("USER") or "").strip()
    if not operator:
        raise ConfigError("--allow-unverified: say who you are with --operator (USER is not set)")
    return Override(operator=operator, reason=reason)


def _job_count(text: str) -> int:
    """``--jobs``: a whole number, 0 or more (argparse reports anything else, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text[:20]!r}") from None
    if not 0 <= value <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"must be 0 (one per CPU) to {MAX_JOBS}, got {text[:20]}")
    return value


def run_sign(ns: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from signer.records import read_records
    from signer.run import Options, SigningRun, WorkerSetup, build_signer, stop_signals

    out = out or sys.stdout
    err = err or sys.stderr
    now = parse_time(ns.at) if ns.at else dt.datetime.now(dt.UTC)
    if not ns.records.is_file():
        raise ConfigError(f"records file not found: {ns.records}")
    override = _override(ns)  # usage errors before asking for a passphrase
    if ns.pdf and not (ns.centre and ns.crl):
        raise ConfigError("--pdf needs --centre NAME and --crl FILE (the CSCA's current CRL)")
    jobs = ns.jobs if ns.jobs > 0 else len(os.sched_getaffinity(0))
    spec = key_spec_from_args(ns)
    try:
        ns.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {ns.out}: {exc.strerror}") from None
    options = Options(now=now, allow_unverified=override is not None, png=ns.png, svg=ns.svg)
    secret = key_secret(spec)  # asked once, also for the workers
    with stop_signals(), open_key(spec, secret=secret) as key:
        signer = build_signer(key, ns, options)  # checks key, DSC and PDF settings before any work
        workers = (jobs, WorkerSetup(spec=spec, secret=secret, ns=ns, options=options)) if jobs > 1 else None
        run = SigningRun(ns.out, signer=signer, override=override, err=err, workers=workers)
        try:
            run.sign_all(read_records(ns.records, column_map=ns.columns))
        finally:
            run.manifest.commit()  # what was signed stays findable, even after an abort
    if run.clamped:
        not_after = dt.datetime.fromtimestamp(signer.issuer.not_after, dt.UTC).date()
        print(
            f"warning: {run.clamped} certificate(s) expire with the DSC on {not_after}, "
            f"before {ns.validity_days} days",
            file=err,
        )
    total = run.signed + run.failed
    kinds = " + ".join(k for k, on in (("HC1", True), ("PNG", ns.png), ("SVG", ns.svg), ("PDF", ns.pdf)) if on)
    print(f"signed {run.signed} of {total} record(s) into {ns.out} ({kinds})", file=out)
    if run.failed:
        print(f"error: {run.failed} record(s) not signed (see the lines above)", file=err)
        return 1
    return 0


# --------------------------------------------------------------------------
# batch (with the issuance ledger)


def register_batch(subparsers: Any) -> None:
    """``batch RECORDS --out DIR --ledger DB --centre NAME <sign options>``."""
    from signer.celery_app import add_celery_arguments

    p = add_signing_arguments(subparsers, "batch")
    add_ledger_run_arguments(p)
    add_celery_arguments(p)
    p.set_defaults(func=run_batch, png=True, pdf=False, svg=False, expiring_within=None, revoked=False)


def register_reissue(subparsers: Any) -> None:
    """``reissue RECORDS --expiring-within 30d [--revoked] <batch options>``."""
    from signer.celery_app import add_celery_arguments

    p = add_signing_arguments(subparsers, "reissue")
    add_ledger_run_arguments(p)
    g = p.add_argument_group("re-issuance")
    g.add_argument(
        "--expiring-within",
        type=_duration_days,
        metavar="DAYS",
        help="re-issue current certificates whose expiry is within DAYS of the signing time (e.g. 30d)",
    )
    g.add_argument("--revoked", action="store_true", help="re-issue records whose certificate was revoked")
    add_celery_arguments(p)
    p.set_defaults(func=run_batch, png=True, pdf=False, svg=False)


def _duration_days(text: str) -> int:
    """``30d`` or ``30``: a whole number of days, 0 to 3650."""
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or not 0 <= int(value) <= 3650:
        raise argparse.ArgumentTypeError(f"a number of days such as 30d (0 to 3650), not {text[:20]!r}")
    return int(value)


def add_ledger_run_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("issuance ledger")
    g.add_argument(
        "--ledger",
        required=True,
        metavar="FILE|URL",
        help="the ledger: a SQLite file (created with its key file FILE.key, 0600) or a "
        "postgresql:// URL (key in $VNDCC_LEDGER_KEY)",
    )
    g.add_argument(
        "--errors",
        type=Path,
        metavar="FILE",
        help="CSV report of the refused records (default DIR/errors.csv; created 0600)",
    )
    g.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="progress on stderr: a bar on a terminal, a line every 10 s otherwise (auto)",
    )
    g.add_argument(
        "--check-files",
        choices=("size", "hash"),
        default="size",
        help="how the files of certificates already issued are checked before skipping them: "
        "present with their size (default), or their SHA-256 (reads every file)",
    )
    g.add_argument(
        "--zip-per-commune",
        action="store_true",
        help="at the end, one ZIP per commune of the folder's current certificates (PDFs, QR PNGs, "
        "index.csv) for distribution, in DIR/communes (or --zip-dir); see docs/ledger.md",
    )
    g.add_argument("--zip-dir", type=Path, metavar="DIR", help="with --zip-per-commune: where the ZIPs go")


def _actor(ns: argparse.Namespace) -> str:
    return (ns.operator or os.environ.get("USER") or "").strip() or "unknown"


def resume_settings(ns: argparse.Namespace, override: Override | None, reissue_before: int | None) -> dict[str, Any]:
    """What decides each record's fate in a batch run: a resume point
    (signer.batch_resume) is used only by a run with the same."""
    return {
        "centre": ns.centre, "ledger": ns.ledger, "out": str(ns.out.resolve()), "check_files": ns.check_files,
        "override": None if override is None else [override.operator, override.reason], "columns": ns.columns,
        "reissue_before": reissue_before, "reissue_revoked": bool(ns.revoked), "pdf": bool(ns.pdf),
        "svg": bool(ns.svg),
    }  # fmt: skip


def run_batch(ns: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from signer.batch import BatchOutput, LedgerRun, check_folder_centre, write_manifest
    from signer.batch_report import ErrorReport, Progress, estimate_records
    from signer.batch_resume import ResumePoint
    from signer.celery_app import run_distributed
    from signer.ledger import Ledger
    from signer.run import Options, WorkerSetup, build_signer, stop_signals

    out = out or sys.stdout
    err = err or sys.stderr
    now = parse_time(ns.at) if ns.at else dt.datetime.now(dt.UTC)
    if not ns.records.is_file():
        raise ConfigError(f"records file not found: {ns.records}")
    override = _override(ns)
    if not ns.centre:
        raise ConfigError("batch needs --centre NAME: the health centre the ledger records")
    if ns.pdf and not ns.crl:
        raise ConfigError("--pdf needs --crl FILE (the CSCA's current CRL)")
    if ns.command == "reissue" and ns.expiring_within is None and not ns.revoked:
        raise ConfigError("reissue needs --expiring-within DAYS, --revoked, or both")
    reissue_before = None if ns.expiring_within is None else int(now.timestamp()) + ns.expiring_within * 86400
    if ns.zip_dir is not None and not ns.zip_per_commune:
        raise ConfigError("--zip-dir is only meaningful with --zip-per-commune")
    if ns.celery:  # signed by 'signer worker' processes (docs/scale-out.md)
        code = run_distributed(ns, now=now, reissue_before=reissue_before, actor=_actor(ns), out=out, err=err)
        if ns.zip_per_commune:
            from signer.communes import commune_zips

            report_zips(commune_zips(ns.out, ns.zip_dir or ns.out / COMMUNES_DIR), out)
        return code
    jobs = ns.jobs if ns.jobs > 0 else len(os.sched_getaffinity(0))
    spec = key_spec_from_args(ns)
    ledger = Ledger.open(ns.ledger, actor=_actor(ns))
    try:
        options = Options(now=now, allow_unverified=override is not None, png=ns.png, svg=ns.svg, hash_outputs=True)
        secret = key_secret(spec)
        with stop_signals(), BatchOutput(ns.out) as output, open_key(spec, secret=secret) as key:
            check_folder_centre(ledger, output, ns.centre)  # first: a point is only for its own centre's runs
            # the input up to the point is checked in a thread meanwhile (the run's first change to the ledger waits)
            resume = ResumePoint.open(output.path, ns.records, resume_settings(ns, override, reissue_before))
            try:
                signer = build_signer(key, ns, options)
                # the workers write and flush the files themselves; this process renames them
                staging = dataclasses.replace(options, stage=str(output.partial))
                workers = (jobs, WorkerSetup(spec=spec, secret=secret, ns=ns, options=staging)) if jobs > 1 else None
                errors_path = ns.errors or ns.out / "errors.csv"
                report = ErrorReport(errors_path, tmp_dir=output.partial if ns.errors is None else None)
                progress = Progress(err, total=estimate_records(ns.records), mode=ns.progress)
                run = LedgerRun(
                    output, ledger=ledger, centre=ns.centre, report=report, progress=progress,
                    check_files=ns.check_files, signer=signer, override=override, err=err, workers=workers,
                    reissue_before=reissue_before, reissue_revoked=ns.revoked, resume=resume,
                )  # fmt: skip
            except BaseException:
                resume.close()  # its thread ends before the folder's lock is released
                raise
            if resume.line:
                print(
                    f"resuming after line {resume.line} of {ns.records}: the interrupted run finished the "
                    f"lines before ({run.counts.seen} record(s))",
                    file=err,
                )
                progress.update(run.counts.seen)
            completed = False
            try:
                run.sign_all(resume.items(ns.columns))
                completed = True
            finally:
                resume.close()
                progress.close()
                report.close()
                try:
                    listed = write_manifest(ledger, output)
                except Exception:
                    if completed:
                        raise
                    listed = None  # the run's own error is the one to report
            if ns.zip_per_commune:  # under the folder's lock, from the manifest just made
                from signer.communes import write_zips

                zips = write_zips(output.path, ns.zip_dir or output.path / COMMUNES_DIR)
            # only now: a run stopped in the manifest or the ZIPs (a large batch's
            # ZIPs take minutes) is resumed after its last record, not read again
            resume.finish()
        pending = run.pending_elsewhere()
    finally:
        ledger.close()
    counts = run.counts
    if run.clamped:
        not_after = dt.datetime.fromtimestamp(signer.issuer.not_after, dt.UTC).date()
        print(
            f"warning: {run.clamped} certificate(s) expire with the DSC on {not_after}, "
            f"before {ns.validity_days} days",
            file=err,
        )
    print(f"batch: {counts.summary_line()}", end="", file=out)
    if counts.refused:
        for line in counts.reason_lines():
            print(line, file=out)
        print(f"refused records: {errors_path} ({report.rows} row(s))", file=out)
    if listed is not None:
        print(f"manifest: {ns.out / 'manifest.jsonl'} ({listed} certificate(s))", file=out)
    if ns.zip_per_commune:
        report_zips(zips, out)
    if pending:
        print(
            f"warning: {pending} certificate(s) reserved in {ns.out} by an earlier run are not in "
            "this input; run the batch again with that input, or give them up with "
            "'signer ledger release'",
            file=err,
        )
    return 1 if counts.refused else 0


#: Where ``--zip-per-commune`` puts the ZIPs by default (inside the batch folder).
COMMUNES_DIR = "communes"


def report_zips(run: Any, out: TextIO) -> None:
    """One summary line for the commune ZIPs (:class:`signer.communes.ZipRun`)."""
    zips = run.zips
    changed = sum(z.changed for z in zips)
    removed = f", {len(run.removed)} removed" if run.removed else ""
    print(
        f"commune ZIPs: {len(zips)} in {run.dest} ({sum(z.certificates for z in zips)} certificate(s); "
        f"{changed} written, {len(zips) - changed} unchanged{removed})",
        file=out,
    )


# --------------------------------------------------------------------------
# entry point

#: One line per registrar: the commands it adds and where it is ("module:function");
#: other packages add theirs here. A registrar's module is imported only when
#: one of its commands runs (or for the whole list: no command, --help, a typo),
#: so a run of one command does not import every other command's dependencies.
REGISTRARS: list[tuple[tuple[str, ...], str]] = [
    (("sign",), "signer.cli:register_sign"),
    (("pdf",), "signer.pdf.cli:register"),
    (("batch",), "signer.cli:register_batch"),
    (("reissue",), "signer.cli:register_reissue"),
    (("ledger",), "signer.ledger.cli:register"),
    (("revoke",), "signer.ledger.cli:register_revoke"),
    (("check", "synth"), "signer.cleaning.cli:register"),
    (("demo",), "signer.demo:register"),
    (("worker",), "signer.worker:register"),
    (("serve", "portal"), "signer.web.cli:register"),
]


def _registrar(target: str) -> Registrar:
    module, name = target.split(":")
    register: Registrar = getattr(importlib.import_module(module), name)
    return register


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line parser: every command, or only ``command``'s when it is one of them."""
    parser = CommandLineParser(
        prog="vn-dcc-sign",
        description="Vietnam vaccine passport signer (EU DCC HC1 QR codes).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    known = any(command in names for names, _ in REGISTRARS)
    for names, target in REGISTRARS:
        if not known or command in names:
            _registrar(target)(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command; PassportError -> one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(args[0] if args else None)
    ns = parser.parse_args(args)
    try:
        code: int = ns.func(ns)
    except PassportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 2
    except OSError as exc:  # a file-system failure no command translated: one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except Exception as exc:  # last line of defence: no traceback for the operator
        if os.environ.get("VNDCC_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__} (set VNDCC_DEBUG=1 for details)", file=sys.stderr)
        return 2
    return code
