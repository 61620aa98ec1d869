"""The citizen flow on a PostgreSQL ledger (the throwaway server of
tests/cleaning/pg.py): a real `signer batch --pdf` into it, then sign-in,
download, the lock and the claim code that undoes it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from signer.ledger.secret import LEDGER_KEY_ENV
from tests.cleaning.pg import pg_dsn  # noqa: F401  (the session's PostgreSQL server)
from tests.ledger.conftest import new_pg_database  # noqa: F401
from tests.portal.citizen_helpers import HUONG, code_for, enter_code, handles, lookup, post, sign_in
from tests.portal.conftest import CENTRE, PKI_ENV, Clock, DemoBatch, PortalClient


@pytest.fixture()
def pg_portal(demo_batch: DemoBatch, new_pg_database: str, tmp_path: Path,  # noqa: F811
              monkeypatch: pytest.MonkeyPatch) -> Iterator[PortalClient]:
    from keys.pki import load_index
    from signer.cli import main
    from signer.web.app import create_app
    from signer.web.settings import PortalSettings

    monkeypatch.setenv(LEDGER_KEY_ENV, secrets.token_hex(32))
    for k, v in PKI_ENV.items():
        monkeypatch.setenv(k, v)
    pki = demo_batch.pki
    index = load_index(pki)
    dsc = index.dscs[-1]
    out = tmp_path / "out"
    assert main(["batch", str(demo_batch.dir / "checks" / "verified.jsonl"), "--out", str(out),
                 "--ledger", new_pg_database, "--centre", CENTRE, "--pdf", "--crl", str(pki / index.crls[-1].der),
                 "--key", str(pki / str(dsc.key_file)), "--cert", str(pki / dsc.cert), "--chain",
                 str(pki / "csca.pem"), "--progress", "none"]) == 0
    import time

    clock = Clock(time.time())
    settings = PortalSettings(ledger=new_pg_database, data_dir=tmp_path / "data",
                              limits={"lock_failures": 5, "lock_seconds": 300})
    app = create_app(settings, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield PortalClient(client=client, clock=clock, data_dir=tmp_path / "data", ledger=tmp_path / "unused",
                           batch=demo_batch, app=app)


def test_flow_lock_and_claim_on_postgresql(pg_portal: PortalClient) -> None:
    from signer.web import claims

    pc = pg_portal
    assert pc.portal.ledger.db.dialect == "postgresql"
    handle = handles(sign_in(pc, HUONG))[0]
    pdf = pc.client.get(f"/passport/{handle}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert "Tải PDF" in pc.client.get("/access").text
    post(pc, "/signout", "/passport")
    # five wrong codes lock the look-up; a claim code undoes it
    lookup(pc, HUONG)
    for _ in range(5):
        assert enter_code(pc, "000000").status_code == 400
    assert lookup(pc, HUONG).status_code == 429
    (issued,) = claims.issue(pc.portal.ledger.db, pc.portal.keys, centre=CENTRE, record_ids=["HCM-000001"],
                             now=int(pc.clock.now), days=60, created_by="test")
    r = post(pc, "/claim", "/claim", id_number=HUONG["id_number"], birth_date=HUONG["birth_date"],
             claim_code=issued.code, phone="0912345678")
    assert r.status_code == 303
    assert enter_code(pc, code_for(pc, "+84912345678")).status_code == 303
    (new_handle,) = handles(pc.client.get("/passport").text)
    assert new_handle != handle  # handles are per session
    assert pc.client.get(f"/passport/{handle}/pdf").status_code == 404
    assert pc.client.get(f"/passport/{new_handle}/pdf").status_code == 200
