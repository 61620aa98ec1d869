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


def test_cbor_tags_decode_as_cbor2_does() -> None:
    """Semantic tags cbor2 checks when decoding (dates, decimal fractions, bigfloats, rationals,
    regexes, UUIDs, sets, IP addresses and networks): the JS decoder accepts and refuses the
    same contents, and dates read as the same text (the Python verifier's JSON view)."""
    import cbor2

    from verifier.errors import CodecError
    from verifier.hc1 import _json_view
    from verifier.strict_cbor import loads_strict

    tag = cbor2.CBORTag
    values = [
        tag(4, [-2, 12345]), tag(4, "x"), tag(4, [1]), tag(4, [1.5, 2]), tag(5, [1, 3]), tag(5, "ver"),
        tag(30, [1, 2]), tag(30, [1, 0]), tag(35, "a+"), tag(35, "("), tag(36, "x"), tag(36, 1),
        tag(37, b"\0" * 16), tag(37, b"abc"), tag(100, 5), tag(100, 2932897), tag(258, [1, 2]),
        tag(258, "x"), tag(260, b"\x01\x02\x03\x04"), tag(260, b"abc"), tag(261, {b"\x01\x02\x03\x00": 24}),
        tag(1004, "2020-02-29"), tag(1004, "2100-02-29"), tag(1, 1.5), tag(1, 10**15),
        tag(0, "2021-05-25T10:27Z"), tag(0, "2021-05-25T10:27:15,5+0200"), tag(0, "2021-05-25T10:27:15"),
        tag(0, "2021-05-25t10:27:15z"), tag(0, "2021-13-01T00:00:00Z"), tag(0, "20210525T102715-00:00"),
        tag(24, "x"), tag(40, [1]),
    ]  # fmt: skip
    cases = []
    for value in values:
        data = cbor2.dumps({"a": value})
        try:
            decoded = _json_view(loads_strict(data, malformed="malformed"))["a"]
            want = decoded if isinstance(decoded, str) else "ok"
        except CodecError as err:
            want = err.reason
        cases.append({"hex": data.hex(), "want": want, "name": repr(value)[:60]})
    script = (
        'import { loadsStrict } from "./scanner/src/verify/cbor.js";\n'
        'import { readFileSync } from "node:fs";\n'
        "const out = [];\n"
        'for (const c of JSON.parse(readFileSync(0, "utf-8"))) {\n'
        '  let got = "ok";\n'
        '  try { const v = loadsStrict(Uint8Array.from(Buffer.from(c.hex, "hex")), "malformed").get("a");\n'
        "        if (v && v.text !== undefined) got = v.text; } catch (e) { got = e.reason; }\n"
        "  if (got !== c.want) out.push(`${c.name}: python ${c.want}, js ${got}`);\n"
        "}\n"
        "console.log(JSON.stringify(out));\n"
    )
    proc = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps(cases),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
