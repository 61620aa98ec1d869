"""``python -m keys sign-rules``: the Ministry signs a rule set with its trust-list signer;
the verifier accepts it against the CSCA, sequence numbers grow, and a folder whose rule
tests disagree is not signed."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
from pathlib import Path

import pytest

from keys.cli import main
from keys.secrets import CSCA_PASSPHRASE_ENV
from tests.verifier.cli_run import run_cli
from verifier.rules import default_rules_path

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture()
def pki_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CSCA_PASSPHRASE_ENV, "csca-" + secrets.token_hex(8))
    monkeypatch.setenv("VNDCC_VERIFIER_STATE", str(tmp_path / "state"))
    d = tmp_path / "pki"
    assert main(["init-csca", "--pki", str(d), "--now", T0.isoformat()]) == 0
    return d


def keys(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([args[0], "--pki", *args[1:]])
    out, err = capfd.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_sign_rules_then_verify(
    pki_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code, _, err = keys(capfd, "sign-rules", str(pki_dir), str(default_rules_path()), "--now", T0.isoformat())
    assert code == 2 and "no trust-list signer yet; run init-tl-signer" in err
    assert keys(capfd, "init-tl-signer", str(pki_dir), "--now", T0.isoformat())[0] == 0
    out1 = tmp_path / "rules-vn.cbor"
    code, out, err = keys(
        capfd, "sign-rules", str(pki_dir), str(default_rules_path()), "--out", str(out1),
        "--now", T0.isoformat(),
    )  # fmt: skip
    assert code == 0, err
    assert "rule set seq 1 (VN, 10 rules, 3 profiles)" in out
    assert (pki_dir / "rules" / "rules-1.cbor").read_bytes() == out1.read_bytes()
    later = (T0 + dt.timedelta(days=1)).isoformat()
    code, out, _ = keys(capfd, "sign-rules", str(pki_dir), str(default_rules_path()), "--now", later)
    assert code == 0 and "seq 2" in out
    # the verifier takes it with the CSCA, and shows its age
    code, out, err = run_cli(
        "rules", "show", "--trust", str(pki_dir / "csca.pem"),
        "--at", (T0 + dt.timedelta(days=3)).isoformat(), str(pki_dir / "rules" / "rules-2.cbor"),
    )  # fmt: skip
    assert code == 0, err
    assert "seq 2, VN, 10 rules, issued 2026-03-02 09:00Z (2 days old)" in out
    code, _, err = run_cli(
        "rules", "show", "--trust", str(pki_dir / "csca.pem"),
        "--at", (T0 + dt.timedelta(days=3)).isoformat(), str(out1),
    )  # fmt: skip
    assert code == 2 and "rule set sequence 1 is older than the accepted 2" in err


def test_a_rule_set_that_fails_its_tests_is_not_signed(
    pki_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert keys(capfd, "init-tl-signer", str(pki_dir), "--now", T0.isoformat())[0] == 0
    rules = tmp_path / "rules"
    shutil.copytree(default_rules_path(), rules)
    test = sorted((rules / "VN" / "VR-VN-0003" / "tests").glob("*.json"))[0]
    obj = json.loads(test.read_text("utf-8"))
    obj["expected"] = not obj["expected"]
    test.write_text(json.dumps(obj), "utf-8")
    code, out, err = keys(capfd, "sign-rules", str(pki_dir), str(rules), "--now", T0.isoformat())
    assert code == 2 and out == ""
    assert "1 rule tests disagree (52 pass): not signed" in err and test.name in err
    assert err.count("\n") == 1
    assert not (pki_dir / "rules").exists()


def test_bad_input_is_one_line(pki_dir: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert keys(capfd, "init-tl-signer", str(pki_dir), "--now", T0.isoformat())[0] == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", "utf-8")
    code, _, err = keys(capfd, "sign-rules", str(pki_dir), str(bad), "--now", T0.isoformat())
    assert code == 2 and "not valid JSON" in err and err.count("\n") == 1
    code, _, err = keys(capfd, "sign-rules", str(pki_dir), str(tmp_path / "missing"), "--now", T0.isoformat())
    assert code == 2 and "no rules at" in err
    code, _, err = keys(
        capfd, "sign-rules", str(pki_dir), str(default_rules_path()), "--country", "vn", "--now", T0.isoformat()
    )
    assert code == 2 and "country must be ISO 3166-1 alpha-2" in err
