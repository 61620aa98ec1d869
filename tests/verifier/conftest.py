"""Fixtures for the verifier tests: isolated state dir, DSC trust from the test PKI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.factory import pem, write
from verifier.trust import TrustStore, load_trust


@pytest.fixture(autouse=True)
def verifier_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Rollback counters and pins go to a temp dir, never to ~/.local/state."""
    state = tmp_path / "verifier-state"
    monkeypatch.setenv("VNDCC_VERIFIER_STATE", str(state))
    return state


@pytest.fixture()
def dsc_pem(test_pki: pki_fixture.TestPki, tmp_path: Path) -> str:
    """One PEM file holding the three test DSCs (EC, RSA, test-only)."""
    return write(
        tmp_path / "dscs.pem",
        pem(
            test_pki.dsc_ec.certificate,
            test_pki.dsc_rsa.certificate,
            test_pki.dsc_test_only.certificate,
        ),
    )


@pytest.fixture()
def dsc_trust(dsc_pem: str) -> TrustStore:
    return load_trust([dsc_pem], now=NOW)
