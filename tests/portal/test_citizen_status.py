"""What the passport page says: valid, expiring soon (< 30 days), expired,
revoked with its reason (no QR or PDF then); several holder rows of one
person (two centres) get the code on each distinct phone."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.portal.citizen_helpers import HUONG, code_for, handles, lookup, sign_in
from tests.portal.conftest import CENTRE, PKI_ENV, Clock, DemoBatch, PortalClient


def _exp(pc: PortalClient) -> int:
    row = pc.portal.ledger.db.fetchone("SELECT exp FROM certificates WHERE record_id = 'HCM-000001'")
    return int(row[0])


def test_expiring_soon_and_expired(portal_client: PortalClient) -> None:
    pc = portal_client
    for days_left, shown in ((40, "Valid"), (10, "Expiring soon (under 30 days)"), (-1, "Expired")):
        pc.clock.now = _exp(pc) - days_left * 86400
        pc.client.cookies.clear()
        sign_in(pc, HUONG)
        page = pc.client.get("/passport?lang=en").text
        assert f'<p class="status">{shown}</p>' in page, days_left


def test_revoked_shows_the_reason_and_serves_nothing(portal_client: PortalClient) -> None:
    pc = portal_client
    handle = handles(sign_in(pc, HUONG))[0]
    ledger = pc.portal.ledger
    (cert,) = [c for c in ledger.by_citizen("079185001234") if c.state == "written"]
    ledger.revoke([cert], "issued on a wrong dose date")
    page = pc.client.get("/passport?lang=en").text
    assert "Revoked" in page and "issued on a wrong dose date" in page and cert.uvci in page
    assert handles(page) == [] and 'class="qr"' not in page
    assert pc.client.get(f"/passport/{handle}/pdf").status_code == 404
    assert pc.client.get(f"/passport/{handle}/qr.png").status_code == 404


def test_one_person_at_two_centres_gets_the_code_on_each_phone(portal_client: PortalClient) -> None:
    pc = portal_client
    db, keys, ledger = pc.portal.ledger.db, pc.portal.keys, pc.portal.ledger
    citizen_hash = ledger.key.citizen_hash("079185001234")
    for centre, record_id, phone in (("Trạm Y tế Phường 2", "P2-0001", "+84911111111"),
                                     ("Trạm Y tế Phường 3", "P3-0001", "+84900000001")):  # same phone twice
        db.execute(
            "INSERT INTO holders (centre, record_id, citizen_hash, lookup_hash, phone_enc, phone_hash, phone_source,"
            " record_phone, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'record', ?, '2026-01-01T00:00:00Z')",
            (centre, record_id, citizen_hash, keys.lookup_hash("079185001234", "1985"),
             keys.seal_phone(phone, centre, record_id), keys.phone_hash(phone), keys.phone_hash(phone)),
        )
    assert lookup(pc, HUONG).status_code == 303
    sent = sorted(m["to"] for m in pc.new_messages())
    assert sent == ["+84900000001", "+84911111111"]
    pc.seen = 0
    assert code_for(pc, "+84911111111")


def test_superseded_shows_when_it_was_reissued(demo_batch: DemoBatch, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A corrected record re-signed by a second `signer batch`: the old certificate
    shows as superseded with the new one's date, only the new one is served."""
    from dataclasses import replace

    from keys.pki import load_index
    from signer.cli import main
    from signer.records import Record, read_records, write_jsonl
    from tests.signer.conftest import stamp

    for k, v in PKI_ENV.items():
        monkeypatch.setenv(k, v)
    pki = demo_batch.pki
    index = load_index(pki)
    dsc = index.dscs[-1]
    (huong,) = [r for r in read_records(demo_batch.dir / "checks" / "verified.jsonl")
                if isinstance(r, Record) and r.record_id == "HCM-000001"]
    ledger = tmp_path / "ledger" / "ledger.sqlite"
    args = ["--out", str(tmp_path / "out"), "--ledger", str(ledger), "--centre", CENTRE, "--pdf",
            "--crl", str(pki / index.crls[-1].der), "--key", str(pki / str(dsc.key_file)),
            "--cert", str(pki / dsc.cert), "--chain", str(pki / "csca.pem"), "--progress", "none"]
    for n, record in enumerate((huong, stamp(replace(huong, full_name="Nguyễn Thị Thanh Hường")))):
        source = tmp_path / f"in-{n}.jsonl"
        with source.open("w", encoding="utf-8") as fh:
            write_jsonl([record], fh)
        at = dt.datetime.now(dt.UTC) + dt.timedelta(days=n)
        assert main(["batch", str(source), *args, "--at", at.strftime("%Y-%m-%dT%H:%M:%SZ")]) == 0
    from signer.web.app import create_app
    from signer.web.settings import PortalSettings

    clock = Clock(time.time())
    app = create_app(PortalSettings(ledger=str(ledger), data_dir=tmp_path / "data"), clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        pc = PortalClient(client=client, clock=clock, data_dir=tmp_path / "data", ledger=ledger,
                          batch=demo_batch, app=app)
        sign_in(pc, HUONG)
        page = client.get("/passport?lang=en").text
        assert page.count('<section class="card cert') == 2
        assert '<p class="status">Superseded</p>' in page and f"Re-issued on</dt><dd>{at:%d/%m/%Y}</dd>" in page
        (handle,) = handles(page)
        assert client.get(f"/passport/{handle}/pdf").content == (tmp_path / "out" / "HCM-000001.pdf").read_bytes()
