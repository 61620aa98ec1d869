"""The log scan of the whole run (tests/fixtures/logscan.py) finds what it must."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tests.fixtures.logscan import log_dir, personal_values, scan, secrets_of_the_run


def test_example_ids_names_and_phones_are_scanned_for() -> None:
    values = personal_values()
    first = json.loads(Path("examples/records.jsonl").read_text("utf-8").splitlines()[0])
    assert values[first["id_number"]] == "citizen ID"
    assert values[first["full_name"]] == "name"
    assert "VN" not in values and "1985" not in values  # too short to be personal alone


def test_scan_names_the_kind_and_place_not_the_value(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("GET /c/abc 200\nlookup for 079185001234 failed\n", "utf-8")
    hits = list(scan([log], {"079185001234": "citizen ID"}))
    assert hits == ["server.log:2: citizen ID"]


def test_codes_of_the_run_come_from_outboxes_and_slips(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    outbox.write_text(json.dumps({"to": "+84900000001", "text": "Ma xac thuc: 493021", "at": 1}) + "\n")
    slips = tmp_path / "claim-codes.csv"
    slips.write_text("record_id,claim_code\nHCM-1,ABCDE-FGHIJ-KLMN2-PQRS7\n")
    found = secrets_of_the_run([outbox, slips])
    assert found["493021"] == "one-time code"
    assert found["ABCDE-FGHIJ-KLMN2-PQRS7"] == "claim code"


def test_a_one_time_code_is_found_as_a_token_not_inside_a_hex_id(tmp_path: Path) -> None:
    """A one-time code is a hit wherever it stands on its own in a line, but
    not as digits inside a longer token (a random hex job id of a test once held
    "081639" and failed a whole run); citizen IDs are still found anywhere."""
    log = tmp_path / "server.log"
    log.write_text(
        'GET /api/v1/jobs/a7012c7081639230c0b981319d59c68a 404\n'
        "sent code=081639 to the phone\n"
        '{"otp": "081639"}\n'
        "code 081639.\n"
        "lookup id079185001234 failed\n",
        "utf-8",
    )
    hits = list(scan([log], {"081639": "one-time code", "079185001234": "citizen ID"}))
    assert hits == [
        "server.log:2: one-time code", "server.log:3: one-time code", "server.log:4: one-time code",
        "server.log:5: citizen ID",
    ]  # fmt: skip


def test_this_run_logs_to_the_scanned_folder() -> None:
    logging.getLogger("signer.test").info("log scan probe")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert any("log scan probe" in p.read_text("utf-8") for p in log_dir().glob("pytest-*.log"))
