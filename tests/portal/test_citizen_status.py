"""What the passport page says: valid, expiring soon (< 30 days), expired,
revoked with its reason (no QR or PDF then); several holder rows of one
person (two centres) get the code on each distinct phone."""

from __future__ import annotations

from tests.portal.citizen_helpers import HUONG, code_for, handles, lookup, sign_in
from tests.portal.conftest import PortalClient


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
