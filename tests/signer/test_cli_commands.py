"""The signer's command line registers only the command that runs (lazy registrars).

``build_parser(command)`` must give that command exactly the parser the full
list gives it, every command must be listed in ``REGISTRARS``, and a ``batch``
run must not import the other commands' modules nor python-pkcs11 (start-up
CPU of every signing run).
"""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from signer.cli import REGISTRARS, build_parser

from .conftest import ROOT

NAMES = [name for names, _ in REGISTRARS for name in names]


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_is_listed_once() -> None:
    assert sorted(subcommands(build_parser())) == sorted(NAMES)
    assert len(set(NAMES)) == len(NAMES)
    assert {"sign", "pdf", "batch", "reissue", "ledger", "revoke", "check", "synth", "serve", "portal", "worker", "demo"} <= set(NAMES)


@pytest.mark.parametrize("command", NAMES)
def test_one_command_parser_equals_its_parser_in_the_full_list(command: str) -> None:
    alone = subcommands(build_parser(command))
    assert set(alone) <= {command, *next(n for n, _ in REGISTRARS if command in n)}
    assert alone[command].format_help() == subcommands(build_parser())[command].format_help()


def test_unknown_or_missing_command_gets_the_full_list() -> None:
    assert sorted(subcommands(build_parser("no-such-command"))) == sorted(NAMES)
    assert sorted(subcommands(build_parser(None))) == sorted(NAMES)
    assert sorted(subcommands(build_parser("--help"))) == sorted(NAMES)


def test_unknown_command_is_refused_with_the_choices() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "signer", "sgin"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid choice: 'sgin'" in proc.stderr and "'batch'" in proc.stderr


def test_batch_imports_neither_other_commands_nor_pkcs11() -> None:
    code = (
        "import sys; from signer.cli import build_parser; "
        "ns = build_parser('batch').parse_args(['batch', 'r.jsonl', '--out', 'o', '--ledger', 'l.sqlite', "
        "'--key', 'k.pem', '--cert', 'c.pem', '--centre', 'C']); "
        "from keys.loader import key_spec_from_args; key_spec_from_args(ns); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pkcs11', 'uvicorn', 'celery') "
        "or m.startswith(('signer.cleaning.cli', 'signer.web', 'signer.demo', 'signer.worker', "
        "'signer.ledger.cli', 'keys.pkcs11_key'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
