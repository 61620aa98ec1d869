"""Portal fixtures (citizen pages and health-centre API): a demo PKI and a real
ledger batch with PDFs, made once per session from examples/records.jsonl,
and a fresh copy of that ledger + a TestClient (https://testserver, so Secure
cookies flow) per test.

    def test_x(portal_client): ...          # portal_client.client, .clock, .outbox(), .ledger
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from signer.demo import environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CENTRE = "Trung tâm Y tế Quận 1"
#: Test-only passphrases of the throwaway PKI (made here, never committed keys).
PKI_ENV = {"VNDCC_CSCA_PASSPHRASE": "portal-test-csca-pass", "VNDCC_KEY_PASSPHRASE": "portal-test-dsc-pass"}


class Clock:
    """The app's clock: tests move it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class DemoBatch:
    dir: Path
    pki: Path
    ledger: Path  # SQLite ledger (key file beside it)
    out: Path  # the batch's folder: PDFs, PNGs, HC1 texts
    trust: tuple[Path, ...]  # --trust arguments for the verifier
    records: tuple[dict[str, Any], ...]  # the signed records (JSON objects)


def _run(main: Any, argv: list[str]) -> None:
    code = main(argv)
    assert code == 0, f"{argv[0]} exited {code}"


@pytest.fixture(scope="session")
def demo_batch(tmp_path_factory: pytest.TempPathFactory) -> DemoBatch:
    """Demo PKI (CSCA, DSC, trust-list signer, CRL, trust list), the example
    records checked against the example registry, and `signer batch --pdf` into a ledger."""
    from keys.cli import main as keys_main
    from keys.pki import load_index
    from signer.cli import main as signer_main

    base = tmp_path_factory.mktemp("portal-demo")
    pki, checks, out = base / "pki", base / "checks", base / "out"
    with environment(PKI_ENV):  # the PKI's passphrases for the commands, restored after
        _run(keys_main, ["init-csca", "--pki", str(pki), "--name", "Portal test CSCA"])
        _run(keys_main, ["issue-dsc", "--pki", str(pki), "--name", CENTRE])
        _run(keys_main, ["init-tl-signer", "--pki", str(pki)])
        _run(keys_main, ["issue-crl", "--pki", str(pki)])
        _run(keys_main, ["export-trust-list", "--pki", str(pki), "--out", str(pki / "trustlist.cbor")])
        index = load_index(pki)
        dsc = index.dscs[-1]
        crl = pki / index.crls[-1].der
        _run(signer_main, ["check", str(EXAMPLES / "records.jsonl"), "--registry", str(EXAMPLES / "registry.csv"),
                           "--out", str(checks)])
        _run(signer_main, ["batch", str(checks / "verified.jsonl"), "--out", str(out),
                           "--ledger", str(base / "ledger" / "ledger.sqlite"), "--centre", CENTRE, "--pdf",
                           "--crl", str(crl), "--key", str(pki / str(dsc.key_file)), "--cert", str(pki / dsc.cert),
                           "--chain", str(pki / "csca.pem"), "--progress", "none"])
    ledger = base / "ledger" / "ledger.sqlite"
    with sqlite3.connect(ledger) as conn:  # everything in the main file, so a copy is whole
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    records = tuple(json.loads(line) for line in (checks / "verified.jsonl").read_text("utf-8").splitlines())
    return DemoBatch(dir=base, pki=pki, ledger=ledger, out=out,
                     trust=(pki / "csca.pem", pki / "trustlist.cbor"), records=records)


def copy_ledger(batch: DemoBatch, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for path in batch.ledger.parent.iterdir():
        if path.name.startswith("ledger.sqlite") and not path.name.endswith(("-wal", "-shm")):
            shutil.copy2(path, target / path.name)
    return target / "ledger.sqlite"


@dataclass
class PortalClient:
    client: TestClient
    clock: Clock
    data_dir: Path
    ledger: Path
    batch: DemoBatch
    app: Any
    seen: int = field(default=0)

    @property
    def portal(self) -> Any:
        return self.app.state.portal

    def outbox(self) -> list[dict[str, Any]]:
        """Every message the development sender wrote so far (after the queue drained)."""
        self.portal.extra["citizen"].sender.flush()
        path = self.data_dir / "outbox.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text("utf-8").splitlines()]

    def new_messages(self) -> list[dict[str, Any]]:
        messages = self.outbox()
        fresh, self.seen = messages[self.seen :], len(messages)
        return fresh


def make_portal(batch: DemoBatch, tmp: Path, *, limits: dict[str, int] | None = None,
                settings: Callable[[Any], Any] = lambda s: s) -> Iterator[PortalClient]:
    """``settings`` may change the test's PortalSettings (e.g. another code sender)."""
    from signer.web.app import create_app
    from signer.web.settings import PortalSettings

    ledger = copy_ledger(batch, tmp / "ledger")
    data = tmp / "data"
    clock = Clock(time.time())
    config = settings(PortalSettings(ledger=str(ledger), data_dir=data, limits=dict(limits or {})))
    app = create_app(config, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        yield PortalClient(client=client, clock=clock, data_dir=data, ledger=ledger, batch=batch, app=app)


@pytest.fixture()
def portal_client(demo_batch: DemoBatch, tmp_path: Path) -> Iterator[PortalClient]:
    yield from make_portal(demo_batch, tmp_path)
