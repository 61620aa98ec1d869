"""What users install is what the tests test (issue 8, point 1).

* The venv running these tests holds exactly the locked versions: the
  runtime lock's pins, the dev lock's test tools, nothing else.
* The dev lock cannot move a runtime package (it is compiled with the
  runtime lock as constraints; checked here statically too), and the
  checkpoint lock (requirements/verifier.txt) is a subset of the runtime lock.
* Every lock covers its pyproject's dependencies and pins with hashes.

``scripts/test-latest.sh`` deselects this file: it runs the suite against
the newest releases on purpose.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
sys.path.insert(0, str(ROOT / "scripts"))
import lockcheck  # noqa: E402

#: Packages a checkpoint must not install (issue 8, point 3).
NOT_AT_CHECKPOINT = {"reportlab", "openpyxl", "fastapi", "psycopg", "psycopg-binary",
                     "python-pkcs11", "qrcode", "fonttools", "starlette", "pydantic"}


def _pins(name: str) -> dict[str, str]:
    return {n: v for n, (v, _) in lockcheck.read_lock(REQ / name).items()}


def _declared(pyproject: Path, extra: str | None = None) -> set[str]:
    project = tomllib.loads(pyproject.read_text())["project"]
    deps = project["optional-dependencies"][extra] if extra else project["dependencies"]
    return {lockcheck.normalise(re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0]) for d in deps}


def test_installed_packages_are_exactly_the_lock() -> None:
    wrong, extra = lockcheck.differences([REQ / "dev.txt", REQ / "build.txt"])
    assert wrong == [] and extra == []


def test_installed_runtime_packages_match_the_runtime_lock() -> None:
    wrong, _ = lockcheck.differences([REQ / "runtime.txt"])
    assert wrong == []


def test_dev_lock_keeps_every_runtime_version() -> None:
    runtime, dev = _pins("runtime.txt"), _pins("dev.txt")
    assert {n: dev.get(n) for n in runtime} == runtime


def test_verifier_lock_is_a_subset_of_the_runtime_lock() -> None:
    runtime, verifier = _pins("runtime.txt"), _pins("verifier.txt")
    assert {n: runtime.get(n) for n in verifier} == verifier
    assert not NOT_AT_CHECKPOINT & set(verifier)


@pytest.mark.parametrize(
    ("lock", "pyproject", "extra"),
    [("runtime.txt", "pyproject.toml", None), ("dev.txt", "pyproject.toml", "dev"),
     ("verifier.txt", "verifier/pyproject.toml", None)],
)
def test_lock_covers_its_pyproject(lock: str, pyproject: str, extra: str | None) -> None:
    assert _declared(ROOT / pyproject, extra) <= set(_pins(lock))


def test_verifier_distribution_declares_what_the_verifier_imports() -> None:
    """Every third-party import under verifier/ is a dependency of vn-dcc-verifier."""
    import_names = {"cryptography": "cryptography", "cbor2": "cbor2", "zxingcpp": "zxing-cpp",
                    "jsonschema_rs": "jsonschema-rs", "asn1crypto": "asn1crypto",
                    "pyhanko": "pyhanko", "pyhanko_certvalidator": "pyhanko-certvalidator",
                    "PIL": "pillow"}
    found = set()
    for path in (ROOT / "verifier").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            found.update(t for t in tops if t != "verifier" and t not in sys.stdlib_module_names)
    assert found <= set(import_names), found - set(import_names)
    assert {import_names[t] for t in found} <= _declared(ROOT / "verifier" / "pyproject.toml")


@pytest.mark.parametrize("lock", sorted(p.name for p in REQ.glob("*.txt")))
def test_every_pin_has_hashes(lock: str) -> None:
    text = (REQ / lock).read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text)
    pinned = [b for b in blocks if re.match(r"[A-Za-z0-9][\w.-]*==", b)]
    assert pinned and all("--hash=sha256:" in b for b in pinned)


def test_lockcheck_reports_a_moved_version(tmp_path: Path) -> None:
    """The check itself: a pin that differs from what is installed is reported."""
    lock = tmp_path / "lock.txt"
    lock.write_text("cbor2==0.0.1 \\\n    --hash=sha256:00\nnot-a-real-dist==1.0 ; sys_platform == 'nope'\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "lockcheck.py"), str(lock)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "cbor2: locked 0.0.1, installed" in done.stderr
    assert "not-a-real-dist" not in done.stderr.split("is installed")[0]


def test_root_requirements_is_the_runtime_lock() -> None:
    lines = [x for x in (ROOT / "requirements.txt").read_text().splitlines() if x and not x.startswith("#")]
    assert lines == ["-r requirements/runtime.txt"]
