"""The scanner's JavaScript unit tests (``node --test scanner/test/``) and CertLogic runs.

``scripts/verify-js rules test DIR`` (certlogic-js 1.2.2) over the EU/AT/DE rules with their
tests (tests/vectors/certlogic/rules) and our VN profiles (verifier/data/rules): every test
passes, the output keeps the contract of ``python -m verifier rules test DIR`` and both
count the same.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VERIFY_JS = ROOT / "scripts" / "verify-js"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (ROOT / "scanner" / "node_modules" / "ajv").is_dir(),
    reason="node or the scanner's npm packages are missing (scripts/setup.sh --dev)",
)


def test_node_unit_tests() -> None:
    proc = subprocess.run(
        ["node", "--test", "scanner/test/"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout


def _rules_test(tool: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*tool, "rules", "test", str(folder)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("folder", ["tests/vectors/certlogic/rules", "verifier/data/rules"])
def test_rules_pass_with_certlogic_js(folder: str) -> None:
    js = _rules_test([str(VERIFY_JS)], ROOT / folder)
    assert js.returncode == 0, js.stdout[-3000:] + js.stderr
    lines = js.stdout.splitlines()
    assert lines[-1].endswith(" passed, 0 failed") and len(lines) == 1
    assert int(lines[-1].split()[0]) > 40


def test_rules_disagreements_reported_like_python(tmp_path: Path) -> None:
    """One line per disagreement, `N passed, M failed`, exit 1: the same as Python."""
    source = ROOT / "verifier" / "data" / "rules" / "VN"
    target = tmp_path / "VN"
    shutil.copytree(source, target)
    tests = sorted(target.glob("*/tests/*.json"))
    assert len(tests) >= 3
    for test_file in tests[:2]:
        case = json.loads(test_file.read_text("utf-8"))
        case["expected"] = "neither true nor false"
        test_file.write_text(json.dumps(case), "utf-8")
    js = _rules_test([str(VERIFY_JS)], tmp_path)
    py = _rules_test([str(ROOT / ".venv" / "bin" / "python"), "-m", "verifier"], tmp_path)
    assert js.returncode == py.returncode == 1
    js_lines, py_lines = js.stdout.splitlines(), py.stdout.splitlines()
    assert js_lines[-1] == py_lines[-1] == f"{len(tests) - 2} passed, 2 failed"
    assert [line.split(": ")[0] for line in js_lines[:-1]] == [
        line.split(": ")[0] for line in py_lines[:-1]
    ]


def test_rules_usage_errors(tmp_path: Path) -> None:
    assert _rules_test([str(VERIFY_JS)], tmp_path / "missing").returncode == 2
    assert _rules_test([str(VERIFY_JS)], tmp_path).returncode == 2  # no rule.json
