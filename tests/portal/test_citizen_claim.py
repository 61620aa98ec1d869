"""Claim codes: `signer portal claim-codes` writes the slips (0600), the claim
page sets the phone and the normal code page follows; single use, expiry,
bound to its record."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from tests.portal.citizen_helpers import HUONG, NO_PHONE, code_for, enter_code, handles, post
from tests.portal.conftest import CENTRE, PortalClient


def _slips(pc: PortalClient, tmp_path: Path, *args: str) -> list[dict[str, str]]:
    from signer.cli import main

    out = tmp_path / f"claim-{len(list(tmp_path.glob('claim-*')))}.csv"
    assert main(["portal", "claim-codes", "--ledger", str(pc.ledger), "--centre", CENTRE, *args, "--out", str(out)]) == 0
    assert out.stat().st_mode & 0o777 == 0o600
    with out.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _claim(pc: PortalClient, person: dict[str, str], code: str, phone: str = "0987 654 321") -> int:
    r = post(pc, "/claim", "/claim", id_number=person["id_number"], birth_date=person["birth_date"],
             claim_code=code, phone=phone)
    return r.status_code


def test_claim_codes_for_records_without_a_phone(portal_client: PortalClient, tmp_path: Path) -> None:
    pc = portal_client
    rows = _slips(pc, tmp_path, "--missing-phone")
    assert [r["record_id"] for r in rows] == ["HCM-000006", "HCM-000007"]
    assert all(r["commune"] and len(r["claim_code"]) == 23 and r["expires"].endswith("Z") for r in rows)
    with sqlite3.connect(pc.ledger) as conn:
        stored = [h for (h,) in conn.execute("SELECT code_hash FROM claim_codes")]
    assert len(stored) == 2 and not any(r["claim_code"].replace("-", "") in h for r in rows for h in stored)


def test_claim_flow_sets_the_phone_and_signs_in(portal_client: PortalClient, tmp_path: Path) -> None:
    pc = portal_client
    (row,) = _slips(pc, tmp_path, "--record-id", "HCM-000006")
    typed = row["claim_code"].lower().replace("-", " ")  # as a person may type it
    assert _claim(pc, NO_PHONE, typed) == 303
    r = enter_code(pc, code_for(pc, "+84987654321"))
    assert r.status_code == 303
    assert handles(pc.client.get("/passport").text)
    assert "Phone number set" in pc.client.get("/access?lang=en").text
    with sqlite3.connect(pc.ledger) as conn:
        enc, source = conn.execute("SELECT phone_enc, phone_source FROM holders WHERE record_id = 'HCM-000006'").fetchone()
    assert source == "claim" and pc.portal.keys.open_phone(enc, CENTRE, "HCM-000006") == "+84987654321"
    # single use
    assert _claim(pc, NO_PHONE, row["claim_code"]) == 400


def test_claim_code_must_match_the_person(portal_client: PortalClient, tmp_path: Path) -> None:
    pc = portal_client
    (row,) = _slips(pc, tmp_path, "--record-id", "HCM-000006")
    assert _claim(pc, {**NO_PHONE, "birth_date": "25/12/1957"}, row["claim_code"]) == 400
    assert _claim(pc, HUONG, row["claim_code"]) == 400  # another person's slip
    assert _claim(pc, NO_PHONE, "AAAAA-AAAAA-AAAAA-AAAAA") == 400
    assert pc.new_messages() == []
    assert _claim(pc, NO_PHONE, row["claim_code"]) == 303  # the mismatches did not use it up


def test_claim_code_expires(portal_client: PortalClient, tmp_path: Path) -> None:
    pc = portal_client
    (row,) = _slips(pc, tmp_path, "--record-id", "HCM-000007", "--days", "60")
    pc.clock.advance(60 * 86400 + 1)
    assert _claim(pc, {"id_number": "031099007788", "birth_date": "17/02/1999"}, row["claim_code"]) == 400


def test_claim_codes_cli_refusals(portal_client: PortalClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from signer.cli import main

    pc = portal_client
    out = tmp_path / "x-claim.csv"
    assert main(["portal", "claim-codes", "--ledger", str(pc.ledger), "--centre", CENTRE, "--record-id", "NOPE",
                 "--out", str(out)]) == 2
    assert "no holder row" in capsys.readouterr().err and not out.exists()
    out.write_text("keep")
    assert main(["portal", "claim-codes", "--ledger", str(pc.ledger), "--centre", CENTRE, "--missing-phone",
                 "--out", str(out)]) == 2
    assert out.read_text() == "keep"


def test_claim_code_shape() -> None:
    from signer.web.claims import new_claim_code, normalise_claim_code

    codes = {new_claim_code() for _ in range(500)}
    assert len(codes) == 500
    assert all(normalise_claim_code(c) == c.replace("-", "") for c in codes)
    assert normalise_claim_code("0AAAA-1AAAA-8AAAA-AAAAA") == "OAAAAIAAAABAAAAAAAAA"
    assert normalise_claim_code("AAAA") is None and normalise_claim_code("AAAAA-AAAAA-AAAAA-AAAA9") is None
