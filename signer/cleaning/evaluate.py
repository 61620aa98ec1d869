"""Score a cleaning run against the generator's ground truth (precision/recall).

    >>> from signer.cleaning.evaluate import evaluate
    >>> evaluate("synth-out/truth.jsonl", "cleaning-out")["record_recall"]   # doctest: +SKIP
    1.0

Reads the run's outputs only (``verified.jsonl`` and the reconciliation
CSVs), as a user would, and matches them to ``truth.jsonl`` by line number.

- An injected error is *found* when every expected code is among the codes
  reported for its line (extra codes are consequences, e.g. a changed ID is
  also not in the registry).
- A record is a *false positive* when it was clean but flagged; a *false
  negative* when it was injected but its expected codes were not all found.
- Per-code precision, strict: of the records flagged with a code, the share
  whose injected error expects that code (an extra code on another kind's
  record counts against it: one cause, one reason); per-code recall: of the
  injected errors expecting a code, the share that got it.
- Exact match per kind: the share of a kind's records reported with exactly
  the expected codes, and which extra codes the others got.
- Suggestions: expected for every injected ID error (``true_id``, the person's
  real ID); right when exactly that ID was suggested, wrong when another one
  was (or any on a line without an ID error). Precision = right / made,
  recall = right / expected.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


def _reported(out_dir: Path) -> tuple[dict[int, set[str]], dict[int, str]]:
    codes: dict[int, set[str]] = {}
    suggestions: dict[int, str] = {}
    rec_dir = out_dir / "reconciliation"
    for path in rec_dir.rglob("*.csv"):
        with path.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                line = int(row["line"])
                if "reason_code" in row:
                    codes.setdefault(line, set()).add(row["reason_code"])
                else:
                    codes.setdefault(line, set()).update(row["reason_codes"].split())
                    if row.get("suggested_id"):
                        suggestions[line] = row["suggested_id"]
    return codes, suggestions


def evaluate(truth_path: str | Path, out_dir: str | Path, verified_lines: int | None = None) -> dict[str, Any]:
    out = Path(out_dir)
    reported, suggestions = _reported(out)
    truth = [json.loads(line) for line in Path(truth_path).read_text("utf-8").splitlines() if line.strip()]
    injected = {t["line"]: t for t in truth}
    per_kind: dict[str, list[int]] = {}
    exact_kind: dict[str, int] = {}
    extra_codes: dict[str, dict[str, int]] = {}
    found = 0
    sugg_expected = sugg_right = 0
    for line, t in injected.items():
        got = reported.get(line, set())
        ok = set(t["expected"]) <= got
        found += ok
        per_kind.setdefault(t["kind"], [0, 0])
        per_kind[t["kind"]][0] += 1
        per_kind[t["kind"]][1] += ok
        exact_kind[t["kind"]] = exact_kind.get(t["kind"], 0) + (got == set(t["expected"]))
        for c in got - set(t["expected"]):
            extra_codes.setdefault(t["kind"], {})
            extra_codes[t["kind"]][c] = extra_codes[t["kind"]].get(c, 0) + 1
    unique_expected = unique_right = 0
    for line, t in injected.items():  # the true person: "true_id" (every ID error), else the unique "suggestion"
        true_id = t.get("true_id") or t.get("suggestion")
        if true_id:
            sugg_expected += 1
            sugg_right += suggestions.get(line) == true_id
        if t.get("suggestion"):  # the only registry person with that name, date of birth and sex
            unique_expected += 1
            unique_right += suggestions.get(line) == t["suggestion"]
    sugg_made = len(suggestions)
    sugg_wrong = sum(1 for line, v in suggestions.items()
                     if v != (injected.get(line, {}).get("true_id") or injected.get(line, {}).get("suggestion")))  # fmt: skip
    false_positive = sorted(line for line in reported if line not in injected)
    flagged_injected = sum(1 for line in reported if line in injected)
    # Per code, strictly: a code is right only on a line whose injected error expects it
    # (another injected error's extra code counts against the code's precision).
    per_code: dict[str, list[int]] = {}
    for line, codes in reported.items():
        expected = set(injected[line]["expected"]) if line in injected else set()
        for c in codes:
            per_code.setdefault(c, [0, 0, 0])
            per_code[c][0] += 1
            per_code[c][1] += c in expected
    expected_by_code: dict[str, int] = {}
    for t in injected.values():
        for c in t["expected"]:
            expected_by_code[c] = expected_by_code.get(c, 0) + 1
    verified = 0
    vpath = out / "verified.jsonl"
    if vpath.exists():
        with vpath.open(encoding="utf-8") as fh:
            verified = sum(1 for _ in fh)
    flagged = len(reported)
    return {
        "injected": len(injected),
        "found": found,
        "record_recall": found / len(injected) if injected else 1.0,
        "flagged": flagged,
        "false_positives": len(false_positive),
        "false_positive_lines": false_positive[:20],
        "record_precision": flagged_injected / flagged if flagged else 1.0,
        "verified": verified,
        "recall_by_kind": {k: v[1] / v[0] for k, v in sorted(per_kind.items())},
        "exact_by_kind": {k: exact_kind[k] / v[0] for k, v in sorted(per_kind.items())},
        "extra_codes_by_kind": {k: dict(sorted(v.items())) for k, v in sorted(extra_codes.items())},
        "injected_by_kind": {k: v[0] for k, v in sorted(per_kind.items())},
        "precision_by_code": {k: v[1] / v[0] for k, v in sorted(per_code.items())},
        "recall_by_code": {c: min(1.0, per_code.get(c, [0, 0])[1] / n) for c, n in sorted(expected_by_code.items())},
        "suggestions_expected": sugg_expected,
        "suggestions_made": sugg_made,
        "suggestions_unique_expected": unique_expected,
        "suggestions_unique_right": unique_right,
        "suggestions_right": sugg_right,
        "suggestions_wrong": sugg_wrong,
        "missed": sorted(line for line, t in injected.items() if not set(t["expected"]) <= reported.get(line, set()))[:20],
    }

