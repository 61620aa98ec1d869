"""Rate limits and the look-up lock (docs/portal.md "Rate limits and lock"),
with small limits: the network throttle, the per-phone cap, the lock after
failed codes, its fixed length that a stranger cannot extend, and a claim
code that undoes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.portal.citizen_helpers import HUONG, UNKNOWN, code_for, enter_code, lookup, post
from tests.portal.conftest import DemoBatch, PortalClient, make_portal

# resend_seconds 0: these tests repeat look-ups at once (the cool-down: test_citizen_review)
LIMITS = {"resend_seconds": 0, "otp_attempts": 5, "lock_failures": 5, "lock_sends": 50, "lock_seconds": 120, "network_lookups": 100,
          "network_codes": 200, "phone_sends": 50}


@pytest.fixture()
def small(demo_batch: DemoBatch, tmp_path: Path) -> Iterator[PortalClient]:
    yield from make_portal(demo_batch, tmp_path, limits=LIMITS)


def _browser(pc: PortalClient) -> TestClient:
    return TestClient(pc.app, base_url="https://testserver")


def _as(pc: PortalClient, client: TestClient) -> PortalClient:
    from dataclasses import replace

    return replace(pc, client=client)


def _wrong(pc: PortalClient, n: int) -> None:
    for _ in range(n):
        r = enter_code(pc, "000000")
        assert r.status_code == 400


def test_network_throttle(demo_batch: DemoBatch, tmp_path: Path) -> None:
    for pc in make_portal(demo_batch, tmp_path, limits={"network_lookups": 3, "window": 600, "resend_seconds": 0}):
        for _ in range(3):
            assert lookup(pc, UNKNOWN).status_code == 303
        r = lookup(pc, UNKNOWN)
        assert r.status_code == 429 and "Quá nhiều yêu cầu" in r.text
        pc.clock.advance(601)
        assert lookup(pc, UNKNOWN).status_code == 303


def test_per_phone_cap_sends_no_more_but_answers_the_same(demo_batch: DemoBatch, tmp_path: Path) -> None:
    for pc in make_portal(demo_batch, tmp_path, limits={"phone_sends": 2, "resend_seconds": 0}):
        for _ in range(4):
            assert lookup(pc, HUONG).status_code == 303
        assert len(pc.new_messages()) == 2


def test_lock_after_failed_codes_then_it_ends_on_time_and_a_stranger_cannot_extend_it(small: PortalClient) -> None:
    pc = small
    stranger = [_as(pc, _browser(pc)) for _ in range(3)]
    for s in stranger:  # three challenges for Huong's details, made before any failure
        assert lookup(s, HUONG).status_code == 303
    _wrong(stranger[0], 5)  # the fifth failure locks the look-up
    started = pc.clock.now
    r = lookup(pc, HUONG)
    assert r.status_code == 429 and "mã nhận" in r.text and 'href="/claim"' in r.text  # the way out
    pc.new_messages()
    # during the lock the stranger burns the other challenges: 10 more failures
    pc.clock.advance(60)
    _wrong(stranger[1], 5)
    _wrong(stranger[2], 5)
    assert lookup(_as(pc, _browser(pc)), HUONG).status_code == 429
    pc.clock.now = started + LIMITS["lock_seconds"] - 1
    assert lookup(pc, HUONG).status_code == 429
    pc.clock.now = started + LIMITS["lock_seconds"]  # the cap: exactly lock_seconds, however many failures
    assert lookup(pc, HUONG).status_code == 303
    code = code_for(pc, HUONG["phone"])
    # the failures made during the lock do not count towards the next one
    assert lookup(stranger[0], HUONG).status_code == 303
    _wrong(stranger[0], 1)
    assert enter_code(pc, code).status_code == 303


def test_an_outstanding_code_of_the_owner_still_works_during_a_lock(small: PortalClient) -> None:
    pc = small
    assert lookup(pc, HUONG).status_code == 303
    code = code_for(pc, HUONG["phone"])
    stranger = _as(pc, _browser(pc))
    lookup(stranger, HUONG)
    _wrong(stranger, 5)
    assert lookup(_as(pc, _browser(pc)), HUONG).status_code == 429
    assert enter_code(pc, code).status_code == 303


def test_decoy_look_ups_lock_the_same_way(small: PortalClient) -> None:
    pc = small
    lookup(pc, UNKNOWN)
    _wrong(pc, 5)
    r = lookup(pc, UNKNOWN)
    assert r.status_code == 429 and "mã nhận" in r.text


def test_too_many_codes_sent_lock_too(demo_batch: DemoBatch, tmp_path: Path) -> None:
    for pc in make_portal(demo_batch, tmp_path, limits={"lock_sends": 3, "lock_seconds": 900, "resend_seconds": 0}):
        for _ in range(3):
            assert lookup(pc, HUONG).status_code == 303
        assert lookup(pc, HUONG).status_code == 429
        pc.clock.advance(900)
        assert lookup(pc, HUONG).status_code == 303


def test_a_claim_code_undoes_the_lock(small: PortalClient) -> None:
    from signer.web import claims

    pc = small
    stranger = _as(pc, _browser(pc))
    lookup(stranger, HUONG)
    _wrong(stranger, 5)
    assert lookup(pc, HUONG).status_code == 429
    db = pc.portal.ledger.db
    (issued,) = claims.issue(db, pc.portal.keys, centre=pc.portal.ledger.db.fetchone(
        "SELECT centre FROM holders WHERE record_id = 'HCM-000001'")[0], record_ids=["HCM-000001"],
        now=int(pc.clock.now), days=60, created_by="test")
    r = post(pc, "/claim", "/claim", id_number=HUONG["id_number"], birth_date=HUONG["birth_date"],
             claim_code=issued.code, phone="0912 345 678")
    assert r.status_code == 303 and r.headers["location"] == "/code"
    assert enter_code(pc, code_for(pc, "+84912345678")).status_code == 303
    # and the look-up works again from a fresh browser
    assert lookup(_as(pc, _browser(pc)), HUONG).status_code == 303


def test_limits_are_checked_when_loaded() -> None:
    from signer.web.limits import Limits
    from verifier.errors import ConfigError

    assert Limits.from_settings({"lock_seconds": 60}).lock_seconds == 60
    with pytest.raises(ConfigError, match="lock_secs"):
        Limits.from_settings({"lock_secs": 60})
    with pytest.raises(ConfigError, match="non-negative"):
        Limits.from_settings({"lock_seconds": -1})


def test_purge_drops_only_rows_older_than_every_window(small: PortalClient) -> None:
    from signer.web import otp

    pc = small
    lookup(pc, UNKNOWN)
    db = pc.portal.ledger.db
    limiter = pc.portal.extra["citizen"].limiter
    before = db.fetchone("SELECT COUNT(*) FROM rate_hits")[0]
    assert before > 0
    limiter.purge()
    otp.purge(db, int(pc.clock.now))
    assert db.fetchone("SELECT COUNT(*) FROM rate_hits")[0] == before
    assert db.fetchone("SELECT COUNT(*) FROM otp_challenges")[0] == 1
    pc.clock.advance(2 * 3600 + 1)
    limiter.purge()
    otp.purge(db, int(pc.clock.now))
    assert db.fetchone("SELECT COUNT(*) FROM rate_hits")[0] == 0
    pc.clock.advance(86400)
    otp.purge(db, int(pc.clock.now))
    assert db.fetchone("SELECT COUNT(*) FROM otp_challenges")[0] == 0
