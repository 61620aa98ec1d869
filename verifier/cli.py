"""Command line of the offline verifier (a thin shell over :mod:`verifier.hc1`).

    $ python -m verifier qr --trust trustlist.cbor --trust csca.pem 'HC1:NCF...'
    $ python -m verifier qr --trust dsc.pem --json --at 2026-06-01T12:00:00Z --image qr.png
    $ python -m verifier trust pin csca.pem
    $ python -m verifier trust show trustlist.cbor

Exit codes: 0 valid, 1 invalid, 2 usage, configuration or internal error
(issue 2, "Command-line contract"). With ``--json`` one JSON object is
printed (:meth:`verifier.result.Verdict.to_json`).

Subcommands plug in through ``register(subparsers)`` functions: each adds
its parser and sets ``run`` (``args -> exit code``) with ``set_defaults``.
Shared options and helpers for them: :func:`add_trust_arguments`,
:func:`load_trust_from_args`, :func:`parse_at`, :func:`exit_code`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from verifier import daemon
from verifier.errors import ConfigError, PassportError
from verifier.hc1 import qr_text_from_file, verify_qr_image, verify_qr_text
from verifier.human import LANGS, render
from verifier.image import MAX_IMAGE_BYTES
from verifier.result import Reason, Verdict
from verifier.trust import TrustStore, load_trust, load_trust_material, pin_csca
from verifier.util import CommandLineParser, jobs_arg, parse_iso_time


def _lazy_module(name: str) -> ModuleType:
    """``name`` imported on first use: ``verifier pdf`` needs neither the rules nor the
    scanner server (their imports were 30 ms of its start, issue 13)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.loader is not None, name
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


rules_cli = _lazy_module("verifier.rules_cli")
serve = _lazy_module("verifier.serve")

EXIT_VALID, EXIT_INVALID, EXIT_ERROR = 0, 1, 2
#: Subcommand modules that register themselves when installed.
OPTIONAL_SUBCOMMANDS = ("verifier.pdf.cli",)
_MAX_QR_FILE = 64 * 1024


def parse_at(text: str) -> dt.datetime:
    """ISO-8601 with or without fractional seconds and zone; no zone means UTC."""
    try:
        return parse_iso_time(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--at: ")) from None


def add_trust_arguments(parser: argparse.ArgumentParser) -> None:
    """``--trust`` (repeatable), ``--at``, ``--json`` and ``--lang``."""
    parser.add_argument(
        "--trust",
        action="append",
        required=True,
        metavar="FILE",
        help="trust list, CSCA or DSC certificate (PEM, DER, base64 DER); repeatable",
    )
    parser.add_argument(
        "--at",
        type=parse_at,
        metavar="ISO-8601",
        help="verify as of this time (default: now; no zone means UTC)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lang", choices=LANGS, default="en", help="language of the verdict")


def now_from_args(args: argparse.Namespace) -> dt.datetime:
    at: dt.datetime | None = args.at
    return at if at is not None else dt.datetime.now(dt.UTC)


def load_trust_from_args(args: argparse.Namespace, now: dt.datetime) -> TrustStore:
    """Load ``--trust`` files (raises ``TrustError``: exit 2)."""
    trust_files: list[str] = args.trust
    return load_trust(trust_files, now=now)


def exit_code(verdict: Verdict) -> int:
    """0 valid, 1 invalid, 2 when verification itself broke (a bug)."""
    if any(e.reason == Reason.INTERNAL for e in verdict.errors):
        return EXIT_ERROR
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def print_verdict(verdict: Verdict, args: argparse.Namespace) -> None:
    if args.json:
        print(verdict.to_json())
    else:
        print(render(verdict, lang=args.lang))


# --------------------------------------------------------------------------
# qr


def _read_qr_file(path: str) -> str:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(_MAX_QR_FILE + 1)
        else:
            with open(path, "rb") as fh:
                data = fh.read(_MAX_QR_FILE + 1)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    return qr_text_from_file(data)  # one final line ending dropped, nothing stripped


def _read_image(path: str) -> bytes:
    """The image bytes, capped (one byte over the cap is refused by verify_qr_image)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(MAX_IMAGE_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None


def run_qr(args: argparse.Namespace) -> int:
    now = now_from_args(args)
    # issue 11: --rules (exit 2 if unusable; a signed set's age on stderr)
    rule_set = rules_cli.load_rules_from_args(args, now=now, report=True)
    if args.image is not None and os.path.isdir(args.image):
        return _run_image_folder(args, now)
    if args.image is not None:
        image = _read_image(args.image)
        trust = load_trust_from_args(args, now)
        verdict = verify_qr_image(image, trust, now=now)
    else:
        text = args.text if args.text is not None else _read_qr_file(args.qr_file)
        trust = load_trust_from_args(args, now)
        verdict = verify_qr_text(text, trust, now=now)
    verdict = rules_cli.apply_rules(verdict, rule_set, args, now)
    print_verdict(verdict, args)
    return exit_code(verdict)


def _run_image_folder(args: argparse.Namespace, now: dt.datetime) -> int:
    """``--image DIR``: one line (JSON with --json) per image, in parallel (issue 13)."""
    from verifier.pdf.folder import (
        IMAGE_SUFFIXES,
        default_jobs,
        list_files,
        qr_image_task,
        run_folder,
    )

    load_trust_from_args(args, now)  # a bad trust file: exit 2 before any work
    files = list_files(Path(args.image), IMAGE_SUFFIXES)
    worker_args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "run"})
    return run_folder(files, factory=qr_image_task, factory_args=(worker_args, now.isoformat()),
                      jobs=args.jobs or default_jobs())  # fmt: skip


def register_qr(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "qr",
        help="verify an HC1 QR code (text or image)",
        description="Verify an EU DCC HC1 QR offline. Exit 0 valid, 1 invalid, 2 error.",
    )
    add_trust_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("text", nargs="?", metavar="'HC1:...'", help="the QR text")
    source.add_argument("--qr-file", metavar="FILE", help="file holding the QR text ('-': stdin)")
    source.add_argument(
        "--image", metavar="FILE|DIR",
        help="PNG/JPEG image of the QR code; a folder: every image in it, one line "
        "(JSON with --json) per file, in parallel (--jobs)",
    )
    parser.add_argument("--jobs", type=jobs_arg, default=None, metavar="N",
                        help="worker processes for --image DIR (default: the CPUs available)")
    rules_cli.add_qr_arguments(parser)
    parser.set_defaults(run=run_qr)


# --------------------------------------------------------------------------
# trust


def run_trust_pin(args: argparse.Namespace) -> int:
    target = pin_csca(args.csca)
    print(f"pinned {args.csca} -> {target}")
    return EXIT_VALID


def run_trust_show(args: argparse.Namespace) -> int:
    now = now_from_args(args)
    store = load_trust_material(args.files, now=now)
    for anchor in store.anchors:
        print(
            f"CSCA  {anchor.describe()}  valid {anchor.not_before:%Y-%m-%d} .. {anchor.not_after:%Y-%m-%d}"
        )
    for tl in store.trust_lists:
        print(
            f"LIST  {tl.path}: seq {tl.seq}, {tl.country}, issued {tl.issued_at:%Y-%m-%d %H:%M}Z, "
            f"{tl.dscs} DSCs, {tl.revoked_dscs} revoked DSCs, {tl.revoked_uvcis} revoked UVCIs, "
            f"{tl.crls} CRLs"
        )
    for entry in store.dscs:
        info = entry.info
        types = "any" if info.dcc_types is None else "".join(sorted(info.dcc_types))
        state = []
        if entry.listed and not entry.chain_ok:
            state.append("UNTRUSTED CHAIN")
        if entry.revoked_at is not None:
            state.append(f"revoked {entry.revoked_at:%Y-%m-%d}")
        if not info.valid_at(now):
            state.append("outside validity")
        origin = "list" if entry.listed else "file"
        print(
            f"DSC   kid {info.kid.hex()}  {entry.country or '??'}  types {types}  "
            f"valid {info.not_before:%Y-%m-%d} .. {info.not_after:%Y-%m-%d}  ({origin})"
            f"  {info.describe()}" + (f"  [{', '.join(state)}]" if state else "")
        )
    return EXIT_VALID


def register_trust(subparsers: Any) -> None:
    parser = subparsers.add_parser("trust", help="pin a CSCA or show trust material")
    actions = parser.add_subparsers(dest="trust_command", required=True, metavar="ACTION")
    pin = actions.add_parser("pin", help="pin a CSCA certificate as a trust-list anchor")
    pin.add_argument("csca", metavar="CSCA.pem")
    pin.set_defaults(run=run_trust_pin)
    show = actions.add_parser("show", help="list what trust files hold (checks them too)")
    show.add_argument("files", nargs="+", metavar="FILE")
    show.add_argument("--at", type=parse_at, metavar="ISO-8601")
    show.set_defaults(run=run_trust_show)


# --------------------------------------------------------------------------


def _register_optional(subparsers: Any, module_name: str) -> None:
    """Call ``module.register(subparsers)`` if that module is installed.

    A module that is present but broken must not take ``qr`` down with it:
    its command is replaced by one that reports the problem (exit 2).
    """
    try:
        found = importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return
    try:
        register: Callable[[Any], None] = importlib.import_module(module_name).register
        register(subparsers)
    except Exception as err:
        command = module_name.split(".")[-2]
        problem = f"the {command} command is unavailable: {type(err).__name__}: {err}"

        def unavailable(_: argparse.Namespace) -> int:
            raise ConfigError(problem)

        if command not in subparsers.choices:
            broken = subparsers.add_parser(command, help=f"({problem})", add_help=False)
            broken.add_argument("rest", nargs=argparse.REMAINDER)
            broken.set_defaults(run=unavailable)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command="pdf"`` only ``pdf`` (a faster start)."""
    parser = CommandLineParser(
        prog="python -m verifier",
        description="Offline verifier for Vietnam / EU DCC vaccine passports.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if command == "pdf":
        for module_name in OPTIONAL_SUBCOMMANDS:
            _register_optional(subparsers, module_name)
        return parser
    register_qr(subparsers)
    register_trust(subparsers)
    rules_cli.register(subparsers)  # issue 11: `rules test|list|check`
    serve.register(subparsers)  # issue 11: the scanner page (verifier/serve.py)
    daemon.register(subparsers)  # issue 13: a long-lived verifier (verifier/daemon.py)
    # PDF verifier (issue 3): verifier/pdf/cli.py provides register(subparsers) -> `pdf`.
    for module_name in OPTIONAL_SUBCOMMANDS:
        _register_optional(subparsers, module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (argparse usage errors exit 2 itself)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_parsed(build_parser(argv[0] if argv else None).parse_args(argv))


def run_parsed(args: argparse.Namespace) -> int:
    """:func:`main` after parsing: run the command ``args`` names (the verifier daemon
    parses a request's argv once, with :func:`build_parser`, and calls this)."""
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        code = int(run(args))
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # output piped into e.g. `head`: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except PassportError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # one line, never a traceback
        print(f"internal error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_ERROR
