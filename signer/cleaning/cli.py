"""Commands ``check`` and ``synth`` for ``python -m signer`` (and ``python -m signer.cleaning``).

    $ python -m signer synth --out synth/ --records 10000 --seed 1
    $ python -m signer check synth/records.jsonl --registry synth/registry.csv --out cleaning/
    $ python -m signer sign cleaning/verified-new.jsonl --out signed/ ...

``check`` exit codes: 0 the run completed (flagged records are listed in the
reconciliation files, not errors); 2 bad usage, a missing or unreadable
records file or registry (one line on stderr). Unreadable rows are reported
on stderr by line number and reason only: no citizen ID or name is printed.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from verifier.errors import ConfigError, PassportError
from verifier.util import parse_iso_time

from .outputs import format_summary
from .run import CheckOptions, run_checks
from .synth import SynthConfig, generate

MAX_PROBLEM_LINES = 20


def register(subparsers: Any) -> None:
    """Add ``check`` and ``synth`` to an argparse subparsers object."""
    p = subparsers.add_parser(
        "check",
        help="check records against the population registry (data cleaning)",
        description="Check a records export (CSV/JSONL) against a population-registry extract; "
        "write DIR/verified.jsonl, DIR/verified-new.jsonl, per-commune reconciliation lists in "
        "DIR/reconciliation/ and DIR/summary.json. See docs/cleaning.md.",
    )
    p.add_argument("records", type=Path, help="records export (.jsonl or .csv)")
    p.add_argument(
        "--registry", required=True, metavar="SOURCE",
        help="registry extract: FILE.csv, FILE.sqlite/.db (with --registry-table) or postgresql://... URL",
    )  # fmt: skip
    p.add_argument("--registry-table", metavar="NAME", help="table of a SQLite/PostgreSQL registry (default: registry)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument(
        "--state-dir", type=Path, metavar="DIR",
        help="registry index and results store, reused by later runs (default: DIR/state)",
    )  # fmt: skip
    p.add_argument("--at", metavar="ISO-8601", help="the check date for 'not in the future' (default: now)")
    p.add_argument("--columns", metavar="FILE", help="CSV column mapping (default templates/columns.json)")
    p.add_argument(
        "--show-registry-values", action="store_true",
        help="authorised staff only: add the registry's name/date of birth/sex to the reconciliation lists",
    )  # fmt: skip
    p.add_argument("--formats", default="csv,xlsx", help="reconciliation formats: csv, xlsx or csv,xlsx (default)")
    p.add_argument(
        "--xlsx-engine", choices=("fast", "openpyxl"), default="fast",
        help="XLSX writer: our streaming writer (default) or openpyxl (about 10x slower)",
    )  # fmt: skip
    p.add_argument("--workers", type=int, default=0, metavar="N", help="worker processes (default: 2 for big files)")
    p.add_argument("--rebuild-index", action="store_true", help="re-index the registry even if unchanged")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_check)

    s = subparsers.add_parser(
        "synth",
        help="generate a synthetic registry and records export with known errors",
        description="Write DIR/registry.csv (or .sqlite), DIR/records.jsonl (or .csv) and the ground "
        "truth of the injected errors DIR/truth.jsonl. Seeded: the same seed gives the same files.",
    )
    s.add_argument("--out", type=Path, required=True, metavar="DIR")
    s.add_argument("--records", type=int, default=1000, metavar="N")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--error-rate", type=float, default=0.2, help="share of records with an injected error")
    s.add_argument("--registry-extra", type=float, default=0.05, help="registry people without a record (share)")
    s.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    s.add_argument("--headers", choices=("vi", "en"), default="vi", help="CSV header language")
    s.add_argument(
        "--shape", choices=("person-rows", "dose-rows"), default="person-rows",
        help="one person per row (doses in numbered columns, default) or one row per dose (CSV; implies --format csv)",
    )  # fmt: skip
    s.add_argument("--registry-format", choices=("csv", "sqlite"), default="csv")
    s.add_argument("--malformed-rows", type=int, default=0, metavar="N", help="default: records/500")
    s.add_argument("--no-phones", dest="phones", action="store_false",
                   help="no phone column (the export header of issue 9 has none)")  # fmt: skip
    s.set_defaults(func=cmd_synth)


def cmd_check(ns: argparse.Namespace) -> int:
    formats = tuple(f.strip() for f in ns.formats.split(",") if f.strip())
    if not formats or set(formats) - {"csv", "xlsx"}:
        raise ConfigError("--formats must be csv, xlsx or csv,xlsx")
    if ns.workers < 0:
        raise ConfigError("--workers must be 0 (automatic) or more")
    opts = CheckOptions(
        records=ns.records,
        registry=str(ns.registry),
        registry_table=ns.registry_table,
        out_dir=ns.out,
        state_dir=ns.state_dir,
        now=parse_iso_time(ns.at) if ns.at else dt.datetime.now(dt.UTC),
        column_map=ns.columns,
        show_registry_values=ns.show_registry_values,
        formats=formats,
        workers=ns.workers,
        xlsx_engine=ns.xlsx_engine,
        rebuild_index=ns.rebuild_index,
    )
    result = run_checks(opts)
    _report_problems(Path(ns.out) / "reconciliation" / "_unreadable-rows.csv")
    if ns.json:
        print(json.dumps(result, ensure_ascii=False, indent=1))
    else:
        print(format_summary(result))
        print(f"outputs: {ns.out}/verified.jsonl, verified-new.jsonl, reconciliation/, summary.json")
    return 0


def _report_problems(path: Path) -> None:
    """Unreadable rows on stderr: line number and reason only."""
    if not path.exists():
        return
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows[:MAX_PROBLEM_LINES]:
        print(f"line {row['line']}: {row['reason_code']} ({row['reason_en']})", file=sys.stderr)
    if len(rows) > MAX_PROBLEM_LINES:
        print(f"... and {len(rows) - MAX_PROBLEM_LINES} more unreadable rows, see {path}", file=sys.stderr)


def cmd_synth(ns: argparse.Namespace) -> int:
    if ns.records < 1 or not 0 <= ns.error_rate <= 1:
        raise ConfigError("--records must be >= 1 and --error-rate within 0..1")
    cfg = SynthConfig(
        records=ns.records, seed=ns.seed, error_rate=ns.error_rate, registry_extra=ns.registry_extra,
        fmt=ns.format, headers=ns.headers, shape=ns.shape.replace("-", "_"), registry_fmt=ns.registry_format, malformed_rows=ns.malformed_rows,
        phones=ns.phones,
    )  # fmt: skip
    try:
        paths = generate(ns.out, cfg)
    except OSError as err:
        raise ConfigError(f"cannot write {ns.out}: {err.strerror}") from None
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m signer.cleaning``: the same two commands on their own."""
    parser = argparse.ArgumentParser(prog="python -m signer.cleaning", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    ns = parser.parse_args(argv)
    try:
        return int(ns.func(ns))
    except PassportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
