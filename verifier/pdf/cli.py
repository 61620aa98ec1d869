"""``python -m verifier pdf``: verify a signed PDF passport offline.

    $ python -m verifier pdf --trust trustlist.cbor --trust csca.pem passport.pdf
    $ python -m verifier pdf --trust csca.pem --json --at 2026-06-01T12:00:00Z passport.pdf

Exit codes as ``verifier qr``: 0 valid, 1 invalid, 2 usage, configuration or
internal error. ``--json`` prints :meth:`verifier.pdf.verify.PdfVerdict.to_json`.

One file gets at most :data:`WALL_LIMIT` seconds: the checks bound their own
work (:mod:`verifier.pdf.budget`), and this last guard turns anything they
missed into an invalid verdict (``pdf_too_complex``) instead of a hang.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.errors import ConfigError
from verifier.util import jobs_arg

if TYPE_CHECKING:
    from verifier.pdf.verify import PdfVerdict

# verifier.pdf.signature / .verify import pyHanko (~0.5 s): only when a PDF is
# verified, so that `python -m verifier qr` starts fast at a checkpoint.

EXIT_VALID, EXIT_INVALID = 0, 1
#: Seconds for one file, all checks together (a passport takes about 0.2 s with the start-up).
WALL_LIMIT = 20.0

_LABELS = {
    "en": {"valid": "VALID", "invalid": "INVALID", "signer": "signed by", "at": "on"},
    "vi": {"valid": "HỢP LỆ", "invalid": "KHÔNG HỢP LỆ", "signer": "ký bởi", "at": "lúc"},
}


def _read_pdf(path: str) -> bytes:
    from verifier.pdf.report import MAX_PDF_BYTES

    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PDF_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    return data


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def render_human(verdict: PdfVerdict, *, path: str, lang: str = "en") -> str:
    """Short verdict: name, UVCI, signer, then what failed."""
    labels = _LABELS.get(lang, _LABELS["en"])
    lines = [f"{Path(path).name}: {labels['valid'] if verdict.valid else labels['invalid']}"]
    dcc = (verdict.payload or {}).get("hcert") if verdict.payload else None
    if isinstance(dcc, dict):
        # the payload is untrusted (a QR may hold any CBOR): only text is shown
        nam = dcc.get("nam")
        nam = nam if isinstance(nam, dict) else {}
        name = " ".join(_text(nam.get(k)) for k in ("fn", "gn")).strip()
        entries = dcc.get("v")
        first = entries[0] if isinstance(entries, list) and entries else {}
        ci = first.get("ci") if isinstance(first, dict) else None
        lines.append(f"  {name}, {_text(dcc.get('dob'))}, {_text(ci)}")
    if verdict.signer:
        lines.append(
            f"  {labels['signer']} {verdict.signer.get('subject')} "
            f"{labels['at']} {verdict.signer.get('signing_time')}"
            + (f" (PAdES {verdict.signer['pades_level']})" if verdict.signer.get("pades_level") else "")
        )
        if verdict.signer.get("timestamp"):
            lines.append(f"  TSA {verdict.signer.get('tsa')}: {verdict.signer['timestamp']}")
    for e in verdict.errors:
        lines.append(f"  - {e.check}: {e.reason}: {e.message}")
    return "\n".join(lines)


def one_line(verdict: PdfVerdict, *, path: str, lang: str = "en") -> str:
    """One line per file (folder mode): path, verdict, then the failed checks' reasons."""
    labels = _LABELS.get(lang, _LABELS["en"])
    head = f"{path}: {labels['valid'] if verdict.valid else labels['invalid']}"
    if verdict.errors:
        head += " (" + ", ".join(f"{e.check}: {e.reason}" for e in verdict.errors) + ")"
    return head


class _Overrun(BaseException):
    """SIGALRM at the wall limit; a BaseException so that no ``except Exception`` keeps it."""


def _raise_overrun(signum: int, frame: object) -> None:
    raise _Overrun


def _verify_within_limit(data: bytes, trust: Any, now: Any) -> PdfVerdict:
    """:func:`verify_pdf`, cut off after :data:`WALL_LIMIT` seconds.

    The timer is a signal: only in the main thread of a system that has
    SIGALRM; elsewhere the checks' own bounds are all there is.
    """
    from verifier.pdf.budget import PDF_TOO_COMPLEX
    from verifier.pdf.report import CheckError
    from verifier.pdf.verify import CHECKS, PdfVerdict, verify_pdf

    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        return verify_pdf(data, trust, now=now)
    previous = signal.signal(signal.SIGALRM, _raise_overrun)
    signal.setitimer(signal.ITIMER_REAL, WALL_LIMIT)
    try:
        return verify_pdf(data, trust, now=now)
    except _Overrun:
        checks: dict[str, bool | None] = dict.fromkeys(CHECKS)
        checks["pdf_signature"] = False
        message = f"verifying this PDF takes longer than {WALL_LIMIT:.0f} s"
        return PdfVerdict(
            valid=False, checks=checks, errors=(CheckError("pdf_signature", PDF_TOO_COMPLEX, message),),
            signer=None, payload=None, qr_text=None,
        )  # fmt: skip
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_pdf(args: argparse.Namespace) -> int:
    from verifier.cli import EXIT_ERROR, exit_code, now_from_args
    from verifier.trust import load_trust_material

    # pyHanko logs every failed check as a warning with its traceback; with no
    # logging configured Python prints those on stderr. The verdict already
    # names the failure: keep stderr for our one-line errors.
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logging.getLogger(name).addHandler(logging.NullHandler())
    now = now_from_args(args)
    if Path(args.file).is_dir():
        return _run_folder(args, now)
    data = _read_pdf(args.file)
    # the trust material may hold no DSC at all (a current trust list leaves
    # expired ones out): a PDF signed by one is then an invalid verdict, not exit 2
    trust = load_trust_material(args.trust, now=now)
    verdict = _verify_within_limit(data, trust, now)
    if args.json:
        print(verdict.to_json())
    else:
        print(render_human(verdict, path=args.file, lang=args.lang))
    if verdict.qr is not None and exit_code(verdict.qr) == EXIT_ERROR:
        return EXIT_ERROR  # the QR verification itself broke (a bug), as `verifier qr` reports it
    return EXIT_VALID if verdict.valid else EXIT_INVALID


def _run_folder(args: argparse.Namespace, now: Any) -> int:
    from verifier.pdf.folder import PDF_SUFFIXES, default_jobs, list_files, pdf_task, run_folder
    from verifier.trust import load_trust_material

    load_trust_material(args.trust, now=now)  # a bad trust file: exit 2 before any work
    files = list_files(Path(args.file), PDF_SUFFIXES)
    return run_folder(
        files, factory=pdf_task, factory_args=(tuple(args.trust), now.isoformat(), args.json, args.lang),
        jobs=args.jobs or default_jobs(),
    )  # fmt: skip


def register(subparsers: Any) -> None:
    """Add the ``pdf`` subcommand to ``python -m verifier``."""
    from verifier.cli import add_trust_arguments

    parser = subparsers.add_parser(
        "pdf",
        help="verify a signed PDF passport (PAdES signature + QR)",
        description="Verify a signed PDF vaccine passport offline. "
        "Exit 0 valid, 1 invalid, 2 error.",
    )
    add_trust_arguments(parser)
    parser.add_argument(
        "file", metavar="FILE.pdf|DIR",
        help="the PDF passport, or a folder: every *.pdf in it (recursively), one line "
        "(with --json one JSON object) per file, in parallel (--jobs)",
    )
    parser.add_argument(
        "--jobs", type=jobs_arg, default=None, metavar="N",
        help="worker processes for a folder (default: the CPUs available)",
    )
    parser.set_defaults(run=run_pdf)
