"""Package layout rules (docs/design.md "Package rules").

* ``verifier/`` imports nothing from ``signer/`` or ``keys/`` (AST walk).
* ``verifier/`` runs alone: copied by itself into a temp dir, with only its
  third-party dependencies available, ``python -m verifier qr --json``
  verifies a valid QR.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from keys.software import SoftwareKey
from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from verifier import codec

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {"signer", "keys"}


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level >= 2:  # relative import climbing out of verifier/
                found.append((node.lineno, "." * node.level + (node.module or "")))
            elif node.level == 0 and node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):  # importlib.import_module("keys...") / __import__
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.append((node.lineno, arg.value))
    return found


def test_verifier_imports_nothing_from_signer_or_keys() -> None:
    files = sorted((ROOT / "verifier").rglob("*.py"))
    assert len(files) >= 10
    bad = []
    for path in files:
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for line, module in _imported_modules(tree):
            top = module.lstrip(".").split(".")[0]
            if module.startswith("..") or top in FORBIDDEN:
                bad.append(f"{path.relative_to(ROOT)}:{line}: {module}")
    assert not bad, "verifier/ must stand alone:\n" + "\n".join(bad)


def test_ast_walk_catches_forbidden_imports() -> None:
    sample = "import keys\nfrom signer.issue import x\nfrom ..keys import y\nimportlib.import_module('keys.pki')\n"
    assert [m for _, m in _imported_modules(ast.parse(sample))] == [
        "keys",
        "signer.issue",
        "..keys",
        "keys.pki",
    ]


_BOOTSTRAP = """
import runpy, sys
sys.path.append({site!r})   # third-party packages only: no .pth files, no editable finder
sys.argv = ["verifier", *sys.argv[1:]]
runpy.run_module(sys.argv.pop(1), run_name="__main__", alter_sys=True)
"""


def _run_alone(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    site = sysconfig.get_paths()["purelib"]
    env = {
        "PYTHONPATH": str(tmp),
        "VNDCC_VERIFIER_STATE": str(tmp / "state"),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-S", "-c", _BOOTSTRAP.format(site=site), *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_verifier_runs_from_a_copy_of_itself(test_pki: pki_fixture.TestPki, tmp_path: Path) -> None:
    copy = tmp_path / "alone"
    shutil.copytree(
        ROOT / "verifier", copy / "verifier", ignore=shutil.ignore_patterns("__pycache__")
    )
    key: SoftwareKey = test_pki.dsc_ec
    from tests.verifier.factory import make_cose, pem

    (copy / "dsc.pem").write_bytes(pem(key.certificate))
    text = codec.to_qr_text(make_cose(key, now=NOW))

    # Only the copied verifier is importable; keys/ and signer/ are not.
    site = sysconfig.get_paths()["purelib"]
    for module, should_import in (("verifier", True), ("keys", False), ("signer", False)):
        check = subprocess.run(
            [
                sys.executable,
                "-S",
                "-c",
                f"import sys; sys.path.append({site!r}); import {module}; print({module}.__file__)",
            ],
            cwd=copy,
            env={"PYTHONPATH": str(copy)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if should_import:
            assert check.returncode == 0 and check.stdout.startswith(str(copy)), check.stderr
        else:
            assert check.returncode != 0 and "ModuleNotFoundError" in check.stderr

    done = _run_alone(
        copy, "verifier", "qr", "--trust", "dsc.pem", "--json", "--at", NOW.isoformat(), text
    )
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["valid"] is True and verdict["checks"]["schema"] is True

    where = _run_alone(
        copy, "verifier", "qr", "--trust", "dsc.pem", "--json", "--at", "2099-01-01", text
    )
    assert where.returncode == 1 and json.loads(where.stdout)["stage_failed"] == "expiry"
