"""Business rules (issue 11): `python -m verifier rules test DIR` contract on the EU/AT/DE rule
tests and our VN profiles, rule selection, the external parameters, fail-closed results,
hostile rule files, and `verifier qr --rules` on signed QRs."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import doctest
import importlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.factory import DCC, TEST_DCC, make_hc1
from verifier.rules import (
    CertificateType,
    Outcome,
    RuleFormatError,
    check_certificate,
    default_rules_path,
    external_parameters,
    load_rules,
    parse_rule,
    select_rules,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "certlogic" / "rules"
VN_RULES = ROOT / "verifier" / "data" / "rules"
Pki = pki_fixture.TestPki


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    """In-process ``python -m verifier`` (cheaper than a subprocess on a shared machine)."""
    from verifier import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return subprocess.CompletedProcess(list(argv), code, out.getvalue(), err.getvalue())


def _rule(**changes: Any) -> dict[str, Any]:
    rule = json.loads((VN_RULES / "VN" / "VR-VN-0001" / "rule.json").read_text("utf-8"))
    rule.update(changes)
    return rule


# --------------------------------------------------------------------------
# `rules test DIR`: the command-line contract


@pytest.mark.parametrize(
    ("folder", "count"),
    [(VECTORS, 1364), (VN_RULES, 53)],
    ids=["EU-and-15-countries", "VN"],
)
def test_rules_test_all_agree(folder: Path, count: int) -> None:
    done = _run("rules", "test", str(folder))
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [f"{count} passed, 0 failed"]


def test_rules_test_reports_each_disagreement(tmp_path: Path) -> None:
    shutil.copytree(VECTORS / "EU" / "VR-EU-0001", tmp_path / "EU" / "VR-EU-0001")
    shutil.copytree(VN_RULES / "VN" / "TR-VN-0000", tmp_path / "VN" / "TR-VN-0000")
    flipped = tmp_path / "EU" / "VR-EU-0001" / "tests" / "test001.json"
    test = json.loads(flipped.read_text("utf-8"))
    test["expected"] = not test["expected"]
    flipped.write_text(json.dumps(test), "utf-8")
    unknown = tmp_path / "VN" / "TR-VN-0000" / "rule.json"
    unknown.write_text(json.dumps(_rule(Logic={"!==": [{"var": "payload.t.0.tr"}, "x"]})), "utf-8")
    done = _run("rules", "test", str(tmp_path))
    lines = done.stdout.splitlines()
    assert done.returncode == 1 and done.stderr == ""
    assert lines[-1] == "14 passed, 4 failed"  # 1 flipped + 3 VN tests of the unknown operation
    assert len(lines) == 5 and lines[0].startswith(f"{flipped}: expected ")
    assert all("got error unknown_operation" in line for line in lines[1:4])


def test_rules_test_validation_clock_outside_the_rule(tmp_path: Path) -> None:
    target = tmp_path / "VN" / "VR-VN-0002"
    shutil.copytree(VN_RULES / "VN" / "VR-VN-0002", target)
    rule = json.loads((target / "rule.json").read_text("utf-8"))
    rule["ValidTo"] = "2021-09-15T00:00:00Z"
    (target / "rule.json").write_text(json.dumps(rule), "utf-8")
    done = _cli("rules", "test", str(tmp_path))
    assert done.returncode == 1
    assert "outside the rule's validity" in done.stdout
    assert done.stdout.splitlines()[-1].endswith(" failed") and "0 failed" not in done.stdout


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[1, 2]",
        json.dumps(_rule(Identifier=None)).encode(),
        json.dumps(_rule(CertificateType="Passport")).encode(),
        json.dumps(_rule(ValidFrom="yesterday")).encode(),
        b'{"Logic": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # beyond the JSON parser
        json.dumps(_rule(Logic=12345.5)).replace("12345.5", "NaN").encode(),
        json.dumps(_rule()).encode().replace(b"Full", b"\xff"),
    ],
    ids=["not-json", "array", "no-id", "bad-type", "bad-time", "json-too-deep", "nan", "bad-utf8"],
)
def test_bad_rule_files_exit_2(tmp_path: Path, content: bytes) -> None:
    target = tmp_path / "VN" / "VR-VN-0001"
    shutil.copytree(VN_RULES / "VN" / "VR-VN-0001", target)
    (target / "rule.json").write_bytes(content)
    for argv in (("rules", "test", str(tmp_path)), ("rules", "list", "--rules", str(tmp_path))):
        done = _cli(*argv)
        assert done.returncode == 2, argv
        assert done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1
        assert "Traceback" not in done.stderr


def test_bad_rule_file_subprocess(tmp_path: Path) -> None:
    target = tmp_path / "VN" / "VR-VN-0001"
    shutil.copytree(VN_RULES / "VN" / "VR-VN-0001", target)
    (target / "rule.json").write_bytes(b'{"Logic": ' + b"[" * 100_000 + b"}")
    done = _run("rules", "test", str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_bad_rules_dir_exit_2(tmp_path: Path) -> None:
    for folder in (tmp_path / "absent", tmp_path):
        done = _cli("rules", "test", str(folder))
        assert done.returncode == 2 and done.stderr.startswith("error: ")


def test_logic_nested_deeper_than_the_evaluator_fails_closed(tmp_path: Path) -> None:
    # parseable JSON, but deeper than verifier.certlogic.MAX_DEPTH: an error, never a crash
    target = tmp_path / "VN" / "VR-VN-0001"
    shutil.copytree(VN_RULES / "VN" / "VR-VN-0001", target)
    text = json.dumps(_rule()).replace('"Logic": {', '"Logic": ' + '{"!": [' * 200 + "{", 1)
    text = text[:-1] + "]}" * 200 + "}"
    (target / "rule.json").write_text(text, "utf-8")
    done = _cli("rules", "test", str(tmp_path))
    assert done.returncode == 1 and "got error too_deep" in done.stdout
    rules = load_rules(tmp_path)
    report = check_certificate(rules, DCC, country="VN", profile=None, at=NOW)
    deep = [r for r in report.results if r.rule.identifier == "VR-VN-0001"]
    assert deep[0].result is Outcome.OPEN and deep[0].reason == "too_deep"
    assert not report.passed


# --------------------------------------------------------------------------
# loading, selection, external parameters


def test_default_rules_are_the_vn_profiles() -> None:
    rules = load_rules(default_rules_path())
    assert {r.country for r in rules.rules} == {"VN"}
    assert rules.default_profiles == {"VN": "primary"}
    assert {name for _, name in rules.profiles} == {"primary", "booster", "vaccinated-only"}


def test_vn_accepted_products_cover_what_the_signer_emits() -> None:
    vaccines = json.loads((ROOT / "templates" / "vaccines.json").read_text("utf-8"))["vaccines"]
    rule = json.loads((VN_RULES / "VN" / "VR-VN-0000" / "rule.json").read_text("utf-8"))
    accepted = rule["Logic"]["in"][1]
    assert {v["mp"] for v in vaccines.values()} <= set(accepted)


def test_selection_by_country_type_clock_and_version() -> None:
    base = _rule()
    rules = [
        parse_rule(base),
        parse_rule({**base, "Version": "1.1.0", "Logic": False}),
        parse_rule({**base, "Identifier": "VR-VN-0099", "ValidFrom": "2027-01-01T00:00:00Z"}),
        parse_rule({**base, "Identifier": "TR-VN-0099", "CertificateType": "Test"}),
        parse_rule({**base, "Identifier": "GR-VN-0099", "CertificateType": "General"}),
        parse_rule({**base, "Identifier": "VR-DE-0099", "Country": "DE"}),
        parse_rule({**base, "Identifier": "IR-VN-0099", "Type": "Invalidation"}),
    ]
    chosen = select_rules(rules, country="VN", certificate_type=CertificateType.VACCINATION, at=NOW)
    assert [(r.identifier, r.version) for r in chosen] == [
        ("GR-VN-0099", "1.0.0"),
        ("VR-VN-0001", "1.1.0"),
    ]
    # ValidTo is exclusive, ValidFrom inclusive
    end = dt.datetime(2030, 6, 1, tzinfo=dt.UTC)
    assert select_rules(rules, country="VN", certificate_type=None, at=end) == ()


def test_external_parameters_as_the_eu_apps_build_them() -> None:
    external = external_parameters(
        at=dt.datetime(2026, 6, 1, 19, 0, tzinfo=dt.timezone(dt.timedelta(hours=7))),
        country="VN",
        value_sets={"disease-agent-targeted": ["840539006"]},
        exp=NOW.timestamp() + 86400 * 30,
        iat=1_780_000_000.5,
        issuer_country="VN",
        kid=b"\x01\x02",
    )
    assert external == {
        "validationClock": "2026-06-01T12:00:00Z",
        "valueSets": {"disease-agent-targeted": ["840539006"]},
        "countryCode": "VN",
        "exp": "2026-07-01",
        "iat": "2026-05-28",
        "issuerCountryCode": "VN",
        "region": "",
        "kid": "AQI=",
    }


# --------------------------------------------------------------------------
# results: fail closed


def _check(dcc: dict[str, Any], profile: str | None, **kw: Any) -> Any:
    return check_certificate(load_rules(VN_RULES), dcc, country="VN", profile=profile, at=NOW, **kw)


def test_profiles_on_the_factory_certificates() -> None:
    primary = _check(DCC, "primary")
    assert primary.passed and len(primary.results) == 5
    booster = _check(DCC, "booster")
    assert not booster.passed
    failed = [r for r in booster.results if r.result is not Outcome.PASSED]
    assert [(r.rule.identifier, r.result, r.reason) for r in failed] == [
        ("VR-VN-0003", Outcome.FAILED, "rule_failed")
    ]
    assert failed[0].to_dict()["description"].keys() == {"en", "vi"}
    assert _check(TEST_DCC, "primary").passed
    refused = _check(TEST_DCC, "vaccinated-only")
    assert (refused.passed, refused.refusal) == (False, "no_rules")
    assert {r.rule.certificate_type for r in refused.results} == {CertificateType.GENERAL}
    boosted = copy.deepcopy(DCC)
    boosted["v"][0].update(dn=3, sd=2, dt="2026-05-01")
    assert _check(boosted, "booster").passed
    assert not _check(boosted, "booster", sets={}).passed  # no value sets: GR-VN-0001 open


def test_missing_data_fails_closed() -> None:
    report = _check({"ver": "1.3.0", "v": [{}]}, "primary")
    assert not report.passed
    assert all(
        r.result is not Outcome.PASSED for r in report.results if r.rule.identifier[:2] == "VR"
    )


def test_unknown_operation_and_non_boolean_are_open() -> None:
    rules = load_rules(VN_RULES)
    odd = [
        parse_rule(_rule(Logic={"!==": [1, 2]})),
        parse_rule(_rule(Identifier="VR-VN-0098", Logic={"var": "payload.v.0.dn"})),
    ]
    report = check_certificate(type(rules)(tuple(odd)), DCC, country="VN", at=NOW)
    assert [(r.result, r.reason) for r in report.results] == [
        (Outcome.OPEN, "unknown_operation"),
        (Outcome.OPEN, "not_boolean"),
    ]
    assert not report.passed


def test_incompatible_rules_are_open() -> None:
    rules = [
        parse_rule(_rule(Engine="JSONLOGIC")),
        parse_rule(_rule(Identifier="VR-VN-0097", EngineVersion="2.0.0")),
        parse_rule(_rule(Identifier="VR-VN-0096", SchemaVersion="1.4.0")),
    ]
    report = check_certificate(type(load_rules(VN_RULES))(tuple(rules)), DCC, country="VN", at=NOW)
    assert [r.reason for r in report.results] == [
        "engine_unsupported",
        "schema_version_mismatch",
        "engine_unsupported",
    ]


def test_rules_check_command(tmp_path: Path) -> None:
    payload = tmp_path / "dcc.json"
    payload.write_text(json.dumps(DCC), "utf-8")
    at = ("--at", NOW.isoformat())
    done = _cli("rules", "check", "--payload", str(payload), "--json", *at)
    assert done.returncode == 0 and json.loads(done.stdout)["passed"] is True
    done = _cli("rules", "check", "--payload", str(payload), "--profile", "booster", *at)
    assert done.returncode == 1 and "VR-VN-0003  failed" in done.stdout
    wrapped = tmp_path / "qr.json"
    wrapped.write_text(json.dumps({"valid": True, "payload": {"iss": "VN", "hcert": DCC}}), "utf-8")
    done = _cli("rules", "check", "--payload", str(wrapped), "--json", *at)
    assert done.returncode == 0 and len(json.loads(done.stdout)["rules"]) == 5
    done = _cli("rules", "check", "--payload", str(payload), "--profile", "nope", *at)
    assert done.returncode == 2 and "no profile 'nope'" in done.stderr


# --------------------------------------------------------------------------
# verifier qr --rules


def test_qr_with_rules(test_pki: Pki, dsc_pem: str) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW)
    base = ("qr", "--trust", dsc_pem, "--json", "--at", NOW.isoformat())
    plain = _run(*base, text)
    assert plain.returncode == 0, plain.stderr
    plain_json = json.loads(plain.stdout)
    assert "rules" not in plain_json and "rules" not in plain_json["checks"]

    done = _run(*base, "--rules", str(VN_RULES), text)
    verdict = json.loads(done.stdout)
    assert done.returncode == 0 and verdict["valid"] is True
    assert verdict["checks"]["rules"] is True
    assert [r["rule"] for r in verdict["rules"]] == [
        "GR-VN-0000",
        "GR-VN-0001",
        "VR-VN-0000",
        "VR-VN-0001",
        "VR-VN-0002",
    ]
    assert {k: v for k, v in verdict.items() if k not in ("rules", "checks")} == {
        k: v for k, v in plain_json.items() if k != "checks"
    }

    done = _cli(*base, "--rules", str(VN_RULES), "--profile", "booster", text)
    verdict = json.loads(done.stdout)
    assert done.returncode == 1 and (verdict["valid"], verdict["stage_failed"]) == (False, "rules")
    assert [(e["stage"], e["reason"]) for e in verdict["errors"]] == [("rules", "rule_failed")]

    test_text = make_hc1(test_pki.dsc_test_only, now=NOW, payload=TEST_DCC)
    done = _cli(*base, "--rules", str(VN_RULES), "--profile", "vaccinated-only", test_text)
    verdict = json.loads(done.stdout)
    assert done.returncode == 1 and len(verdict["rules"]) == 2  # the General rules
    assert [e["reason"] for e in verdict["errors"]] == ["no_rules"]

    human = _cli(
        *base[:3],
        "--at",
        NOW.isoformat(),
        "--lang",
        "vi",
        "--rules",
        str(VN_RULES),
        "--profile",
        "booster",
        text,
    )
    assert human.returncode == 1 and "quy định nhập cảnh" in human.stdout


def test_qr_with_bad_rules_exit_2(dsc_pem: str, tmp_path: Path) -> None:
    bad = tmp_path / "rules.json"
    bad.write_text("{", "utf-8")
    for argv in (
        ("--rules", str(bad)),
        ("--rules", str(tmp_path / "absent")),
        ("--rules", str(VN_RULES), "--profile", "nope"),
    ):
        done = _cli("qr", "--trust", dsc_pem, *argv, "HC1:x")
        assert done.returncode == 2 and done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr


def test_qr_rules_not_run_on_undecodable_qr(dsc_pem: str) -> None:
    done = _cli("qr", "--trust", dsc_pem, "--json", "--rules", str(VN_RULES), "HC1:garbage")
    verdict = json.loads(done.stdout)
    assert done.returncode == 1 and verdict["stage_failed"] == "base45"
    assert verdict["rules"] == [] and verdict["checks"]["rules"] is None


@pytest.mark.parametrize("name", ["verifier.certlogic", "verifier.rules"])
def test_module_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0


def test_bundle_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "rules.json"
    done = _cli("rules", "bundle", str(VN_RULES), "-o", str(out))
    assert done.returncode == 0, done.stderr
    from_dir, from_file = load_rules(VN_RULES), load_rules(out)
    assert sorted(r.identifier for r in from_file.rules) == sorted(
        r.identifier for r in from_dir.rules
    )
    assert from_file.profiles == from_dir.profiles
    assert from_file.default_profiles == {"VN": "primary"}
    assert (
        _check(DCC, "booster").passed
        is check_certificate(from_file, DCC, country="VN", profile="booster", at=NOW).passed
        is False
    )
    # an array of rules (no profiles) is a rule set too
    array = tmp_path / "array.json"
    array.write_text(json.dumps(json.loads(out.read_text("utf-8"))["rules"]), "utf-8")
    assert len(load_rules(array).rules) == 10
    array.write_text('{"rules": [], "profiles": {}}', "utf-8")
    with pytest.raises(RuleFormatError):
        load_rules(array)


def test_hostile_rule_tests_are_disagreements(tmp_path: Path) -> None:
    target = tmp_path / "VN" / "TR-VN-0000"
    shutil.copytree(VN_RULES / "VN" / "TR-VN-0000", target)
    deep = target / "tests" / "test001.json"
    deep.write_text('{"payload": {}, "expected": ' + "[" * 900 + "]" * 900 + "}", "utf-8")
    odd = target / "tests" / "test002.json"
    odd.write_text('{"payload": {}, "expected": "line one\\nline two"}', "utf-8")
    done = _cli("rules", "test", str(tmp_path))
    assert done.returncode == 1 and done.stderr == ""
    assert done.stdout.splitlines()[-1] == "1 passed, 2 failed"
    assert len(done.stdout.splitlines()) == 3
