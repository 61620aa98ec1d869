"""Differential test: verifier.certlogic against certlogic-js, the reference implementation the
browser page uses, on random valid expressions (values, date-times and errors must agree).

certlogic-js comes from scanner/package-lock.json (``scripts/setup.sh --dev`` runs
``npm ci`` there; ``CERTLOGIC_JS=<package folder>`` points elsewhere); without node or the
package the test fails, it never skips. Inputs stay inside
what CertLogic defines (valid dates, no JavaScript properties such as ``"abc".length``); there
the two are expected to differ (docs/rules.md, "The evaluator").
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from verifier.certlogic import CertLogicError, DateTime, evaluate, validate

ROOT = Path(__file__).resolve().parents[2]
CASES = 3000

_RUNNER = """
const { evaluate } = require(process.argv[1])
const enc = (v) => {
  if (v instanceof Date) return { $date: isNaN(v.getTime()) ? null : v.toISOString() }
  if (Array.isArray(v)) return v.map(enc)
  if (v && typeof v === "object") { const o = {}; for (const k of Object.keys(v)) o[k] = enc(v[k]); return o }
  return v
}
const out = require("fs").readFileSync(0, "utf8").split("\\n").filter(Boolean).map((line) => {
  const { expr, data } = JSON.parse(line)
  try { return JSON.stringify({ ok: enc(evaluate(expr, data)) }) } catch (e) { return '{"err": true}' }
})
process.stdout.write(out.join("\\n") + "\\n")
"""


def _certlogic_js() -> Path | None:
    env = os.environ.get("CERTLOGIC_JS")
    if env:
        return Path(env)
    for pattern in (
        "node_modules/certlogic-js",
        "*/node_modules/certlogic-js",
        "*/*/node_modules/certlogic-js",
    ):
        for found in ROOT.glob(pattern):
            if (found / "package.json").is_file():
                return found
    return None


DATES = [
    "2021-01-31", "2020-02-29", "2021-06-01T12:00:00Z", "2021-06-01T12:00:00+07:00",
    "2021-06-01T23:30:00-0130", "2004", "2004-02", "2021-12-31T23:59:59.9999Z",
    "2021-03-28T01:30:00+1", "2022-10-30T02:30:00", "1999-12-31",
]  # fmt: skip
PATHS = ["a", "b", "c", "d", "arr", "arr.0", "arr.5", "obj", "obj.x", "obj.y.z", "obj.1",
         "dates.0", "dates.1", "s", "n", "", "nested.0.k"]  # fmt: skip


def _data(r: random.Random) -> dict[str, Any]:
    return {
        "a": r.choice([0, 1, 2, -3, 5]), "b": r.choice([True, False, None]),
        "c": r.choice(["", "x", "0", "EU/1/20/1528"]), "d": r.choice(DATES),
        "arr": r.choice([[], [1], [1, 2, 3], ["x", None], [[1], {}]]),
        "obj": r.choice([{}, {"x": 1}, {"x": "a", "y": {"z": 3}, "1": "one"}]),
        "dates": r.sample(DATES, 2), "s": r.choice(["URN:UVCI:01:VN:ABC#K", "a::c/#/f", ""]),
        "n": None, "nested": [{"k": r.choice([1, 2])}, {"k": 3}],
    }  # fmt: skip


def _expr(r: random.Random, depth: int) -> Any:
    if depth <= 0 or r.random() < 0.25:
        if r.random() < 0.5:
            return {"var": r.choice(PATHS)}
        return r.choice([0, 1, 2, -1, True, False, "", "x", [], [1, 2], ["x", "EU/1/20/1528"]])

    def sub() -> Any:
        return _expr(r, depth - 1)

    def when() -> Any:
        source = r.choice([{"var": "d"}, {"var": "dates.0"}, r.choice(DATES)])
        return {
            "plusTime": [
                source,
                r.choice([0, 1, -1, 14, -18]),
                r.choice(["year", "month", "day", "hour"]),
            ]
        }

    op = r.choice(["if", "===", "and", "<", "<=", "in", "+", "!", "plusTime", "reduce",
                   "after", "not-before", "extractFromUVCI", "dccDateOfBirth", "array"])  # fmt: skip
    if op == "array":
        return [sub() for _ in range(r.randint(0, 3))]
    if op == "if":
        return {"if": [sub(), sub(), sub()]}
    if op in ("===", "in", "+"):
        return {op: [sub(), sub()]}
    if op == "and":
        return {"and": [sub() for _ in range(r.randint(2, 3))]}
    if op in ("<", "<="):
        return {op: [sub() for _ in range(r.randint(2, 3))]}
    if op == "!":
        return {"!": [sub()]}
    if op == "plusTime":
        return when()
    if op in ("after", "not-before"):
        return {op: [when() if r.random() < 0.85 else sub() for _ in range(r.randint(2, 3))]}
    if op == "reduce":
        lam = r.choice([{"+": [{"var": "accumulator"}, 1]}, {"var": "current"}, sub()])
        return {"reduce": [r.choice([{"var": "arr"}, {"var": "nested"}, sub()]), lam, sub()]}
    if op == "extractFromUVCI":
        return {
            "extractFromUVCI": [r.choice([{"var": "s"}, {"var": "c"}, sub()]), r.randint(-1, 5)]
        }
    return {"dccDateOfBirth": [r.choice([{"var": "d"}, r.choice(DATES), sub()])]}


def _ours(expr: Any, data: Any) -> Any:
    def enc(v: Any) -> Any:
        if isinstance(v, DateTime):
            return {"$date": v.isoformat()}
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        return v

    try:
        return {"ok": enc(evaluate(expr, data))}
    except CertLogicError:
        return {"err": True}


def test_agrees_with_certlogic_js() -> None:
    package = _certlogic_js()
    node = shutil.which("node")
    if package is None or node is None:
        pytest.fail("node or certlogic-js missing: run bash scripts/setup.sh --dev")
    r = random.Random(11)
    cases: list[tuple[Any, Any]] = []
    while len(cases) < CASES:
        expr = _expr(r, r.randint(1, 4))
        if not validate(expr):
            cases.append((expr, _data(r)))
    stdin = "".join(json.dumps({"expr": e, "data": d}) + "\n" for e, d in cases)
    done = subprocess.run(
        [node, "-e", _RUNNER, str(package.resolve())],
        input=stdin, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(theirs) == CASES
    ours = [_ours(e, d) for e, d in cases]
    disagreements = [
        (case, mine, other)
        for case, mine, other in zip(cases, ours, theirs, strict=True)
        if json.dumps(mine, sort_keys=True) != json.dumps(other, sort_keys=True)
    ]
    assert disagreements == []
