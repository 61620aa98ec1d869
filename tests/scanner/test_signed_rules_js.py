"""Signed rule sets under Node (scripts/verify-js, the page's code) against the Python
verifier: the same sequence of ``qr --rules FILE.cbor`` runs, each tool with its own state
folder, gives the same exit codes, the same verdicts and the same one-line refusals
(tampered, foreign, rollback, too old, trust list given as rules...), and the same age
warnings."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.verifier import signed_rules
from tests.verifier.cli_run import run_cli

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def verify_js(*args: str, state: Path) -> tuple[int, str, str]:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "verify-js"), *args],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "VNDCC_VERIFIER_STATE": str(state)},
    )  # fmt: skip
    return proc.returncode, proc.stdout, proc.stderr


#: (rule set, extra options) in the order both tools run them: rollback depends on the order.
STEPS: list[tuple[str, tuple[str, ...]]] = [
    ("rules-1", ()),
    ("rules-1", ("--profile", "booster")),
    ("tampered", ()),
    ("foreign", ()),
    ("dsc-signed", ()),
    ("no-content-type", ()),
    ("bad-bundle", ()),
    ("trustlist", ()),
    ("old", ()),  # seq 3, 20 days: a warning
    ("rules-2", ()),  # seq 2 after 3: rollback
    ("old", ("--rules-warn-days", "5", "--rules-max-age-days", "10")),
    ("too-old", ()),  # 90 days
    ("too-old", ("--rules-max-age-days", "100")),
    ("old", ()),  # seq 3 after 4: rollback
    ("rules-1", ("--rules-warn-days", "30", "--rules-max-age-days", "20")),
]


def test_node_and_python_agree_on_signed_rule_sets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = signed_rules.make(tmp_path / "material", NOW)
    qr_file = tmp_path / "qr.txt"
    qr_file.write_text(m.qr)
    monkeypatch.setenv("VNDCC_VERIFIER_STATE", str(tmp_path / "py-state"))
    seen = []
    for name, extra in STEPS:
        rules = m.trust_list if name == "trustlist" else m.files[name]
        args = (
            "qr", "--trust", str(m.trust_list), "--trust", str(m.csca), "--json",
            "--at", NOW.isoformat(), "--rules", str(rules), *extra, "--qr-file", str(qr_file),
        )  # fmt: skip
        py = run_cli(*args)
        js = verify_js(*args, state=tmp_path / "js-state")
        assert py[0] == js[0], (name, extra, py, js)
        if py[0] == 2:
            assert py[1] == js[1] == ""
            # one line each; the same text (the CertLogic bundle's own messages aside)
            assert py[2].count("\n") == js[2].count("\n") == 1, (py, js)
            if name != "bad-bundle":
                assert py[2] == js[2], (name, extra, py[2], js[2])
        else:
            p, j = json.loads(py[1]), json.loads(js[1])
            assert (p["valid"], p["stage_failed"], p["checks"]) == (
                j["valid"],
                j["stage_failed"],
                j["checks"],
            )
            assert [(r["rule"], r["result"]) for r in p["rules"]] == [
                (r["rule"], r["result"]) for r in j["rules"]
            ]
            py_warn = [x for x in py[2].splitlines() if x.startswith("warning:")]
            js_warn = [x for x in js[2].splitlines() if x.startswith("warning:")]
            assert py_warn == js_warn, (name, py[2], js[2])
        seen.append((name, extra, py[0], py[2].splitlines()[-1] if py[2] else ""))
    codes = [c for _, _, c, _ in seen]
    assert codes == [0, 1, 2, 2, 2, 2, 2, 2, 0, 2, 2, 2, 0, 2, 2], seen
    assert "rule-set signature does not verify" in seen[2][3]
    assert "rule set sequence 2 is older than the accepted 3" in seen[9][3]
    assert "is 90 days old, more than the 60 accepted" in seen[11][3]
    assert "more than 14 days old" in seen[8][3]
    # both tools keep the rule-set counter apart from the trust list's, in the same format
    py_state = json.loads((tmp_path / "py-state" / "rules-seq.json").read_text())
    js_state = json.loads((tmp_path / "js-state" / "rules-seq.json").read_text())
    assert py_state == js_state and list(py_state.values()) == [4]


def test_node_refuses_a_rule_set_as_trust_list(tmp_path: Path) -> None:
    m = signed_rules.make(tmp_path / "material", NOW)
    code, out, err = verify_js(
        "qr", "--trust", str(m.files["rules-1"]), "--trust", str(m.csca), "--at", NOW.isoformat(), m.qr,
        state=tmp_path / "state",
    )  # fmt: skip
    assert code == 2 and out == "" and "this is a signed rule set, not a trust list" in err
    code, _, err = verify_js(
        "qr", "--trust", str(m.csca), "--rules-warn-days", "x", m.qr, state=tmp_path / "state"
    )
    assert code == 2 and "not a whole number of days" in err
