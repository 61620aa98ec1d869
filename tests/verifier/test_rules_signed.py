"""Signed rule sets (docs/rules.md "Signed rule sets"): ``verifier qr --rules FILE.cbor`` and
``verifier rules show`` verify the signature against the pinned CSCA, refuse a tampered or
foreign set, a rollback and a set older than the refusal age, warn on an old one, and never
take a trust list for a rule set or the other way round."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.verifier import signed_rules
from tests.verifier.cli_run import run_cli
from verifier.errors import ConfigError
from verifier.rules_signed import AgePolicy, Freshness, freshness

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> signed_rules.Material:
    return signed_rules.make(tmp_path_factory.mktemp("signed-rules"), NOW)


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("VNDCC_VERIFIER_STATE", str(tmp_path / "state"))
    return tmp_path / "state"


def qr(m: signed_rules.Material, rules: str, *extra: str, at: dt.datetime = NOW) -> tuple[int, str, str]:
    return run_cli(
        "qr", "--trust", str(m.trust_list), "--trust", str(m.csca), "--json",
        "--at", at.isoformat(), "--rules", str(m.files.get(rules, rules)), *extra, m.qr,
    )  # fmt: skip


def test_signed_rule_set_applies_and_shows_its_age(material: signed_rules.Material) -> None:
    code, out, err = qr(material, "rules-1")
    assert code == 0, err
    verdict = json.loads(out)
    assert verdict["valid"] is True and verdict["checks"]["rules"] is True
    assert {r["rule"] for r in verdict["rules"]} >= {"VR-VN-0001", "VR-VN-0002"}
    assert "seq 1, VN, 10 rules" in err and "(0 days old)" in err and "warning" not in err
    # the same signed rules under the booster profile: dose 2 of 2 fails VR-VN-0003
    code, out, _ = qr(material, "rules-1", "--profile", "booster")
    assert code == 1 and json.loads(out)["stage_failed"] == "rules"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("tampered", "rule-set signature does not verify"),
        ("foreign", "rule-set signer does not chain to a pinned CSCA"),
        ("dsc-signed", "signer certificate lacks the trust-list-signing EKU"),
        ("no-content-type", "not a signed rule set (no rule-set content type"),
        ("bad-bundle", "bundle:"),
    ],
)
def test_bad_signed_rule_sets_are_refused(
    material: signed_rules.Material, name: str, message: str
) -> None:
    code, out, err = qr(material, name)
    assert code == 2 and out == "", (out, err)
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_trust_list_and_rule_set_are_not_interchangeable(material: signed_rules.Material) -> None:
    code, out, err = qr(material, str(material.trust_list))
    assert out == ""
    assert code == 2 and "a trust list? give it with --trust" in err, err
    code, _, err = run_cli(
        "qr", "--trust", str(material.files["rules-1"]), "--trust", str(material.csca),
        "--at", NOW.isoformat(), material.qr,
    )  # fmt: skip
    assert code == 2 and "this is a signed rule set, not a trust list" in err, err


def test_rollback_is_refused(material: signed_rules.Material, _state: Path) -> None:
    assert qr(material, "rules-2")[0] == 0
    assert json.loads((_state / "rules-seq.json").read_text()) == {
        next(iter(json.loads((_state / "rules-seq.json").read_text()))): 2
    }
    code, _, err = qr(material, "rules-1")
    assert code == 2 and "rule set sequence 1 is older than the accepted 2" in err, err
    # the trust list's counter is a separate one
    assert json.loads((_state / "trustlist-seq.json").read_text()) != {}
    assert qr(material, "rules-2")[0] == 0  # the same set again is accepted


def test_age_warns_then_refuses(material: signed_rules.Material, _state: Path) -> None:
    code, _, err = qr(material, "old")  # seq 3, 20 days old: warned, used
    assert code == 0 and "(20 days old)" in err
    assert "warning: the rule set is more than 14 days old (refused after 60)" in err
    # the ages are the checkpoint's to set
    code, _, err = qr(material, "old", "--rules-warn-days", "21", "--rules-max-age-days", "30")
    assert code == 0 and "warning" not in err
    code, _, err = qr(material, "old", "--rules-warn-days", "5", "--rules-max-age-days", "10")
    assert code == 2 and "20 days old, more than the 10 accepted" in err
    code, out, err = qr(material, "too-old")  # seq 4, 90 days
    assert code == 2 and out == ""
    assert "is 90 days old, more than the 60 accepted" in err, err
    held = json.loads((_state / "rules-seq.json").read_text())
    assert list(held.values()) == [3]  # refused: the state is unchanged
    code, _, err = qr(material, "too-old", "--rules-max-age-days", "100")
    assert code == 0 and "more than 14 days old" in err


def test_age_options_are_checked(material: signed_rules.Material) -> None:
    code, _, err = qr(material, "rules-1", "--rules-warn-days", "30", "--rules-max-age-days", "20")
    assert code == 2 and "warn days < refuse days" in err
    code, _, err = qr(material, "rules-1", "--rules-warn-days", "0")
    assert code == 2 and "must be 1 to 3650 days" in err


def test_issued_after_the_clock_is_a_warning(material: signed_rules.Material) -> None:
    code, _, err = qr(material, "rules-1", at=NOW - dt.timedelta(hours=2))
    assert code == 0 and "issued after the verification time" in err, err


def test_rules_show(material: signed_rules.Material) -> None:
    code, out, err = run_cli(
        "rules", "show", "--trust", str(material.csca), "--at", (NOW + dt.timedelta(days=15)).isoformat(),
        str(material.files["rules-1"]),
    )  # fmt: skip
    assert code == 0, err
    assert "seq 1, VN, 10 rules" in out and "(15 days old)" in out and "VR-VN-0003" in out
    assert "warning: the rule set is more than 14 days old" in out
    code, _, err = run_cli("rules", "show", "--trust", str(material.csca), str(material.trust_list))
    assert code == 2 and "not a signed rule set" in err


def test_unsigned_rule_sets_still_load(material: signed_rules.Material) -> None:
    """A folder or JSON bundle given by the checkpoint itself is used as before."""
    code, _, err = qr(material, str(Path("verifier/data/rules").resolve()))
    assert code == 0 and err == ""


@pytest.mark.parametrize(
    ("days", "state"),
    [(0, Freshness.FRESH), (14, Freshness.FRESH), (15, Freshness.OLD), (60, Freshness.OLD),
     (61, Freshness.TOO_OLD), (-1, Freshness.FUTURE)],
)  # fmt: skip
def test_freshness_thresholds(days: int, state: Freshness) -> None:
    issued = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    got, _ = freshness(issued, issued + dt.timedelta(days=days, hours=1), AgePolicy())
    assert got is state


def test_age_policy_bounds() -> None:
    with pytest.raises(ConfigError):
        AgePolicy(warn_days=10, refuse_days=10)
    with pytest.raises(ConfigError):
        AgePolicy(warn_days=1, refuse_days=4000)
