"""Fixtures for the signer tests: example records (stamped as verified) and key files."""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from keys.software import SoftwareKey
from signer.records import Record, read_records, record_fingerprint
from tests.fixtures.pki import TestPki

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: Passphrase for the test key files, random per run (never committed).
TEST_PASSPHRASE = secrets.token_urlsafe(16)


def stamp(record: Record) -> Record:
    """The record as the registry checks leave it: with a current stamp."""
    return replace(record, verified=record_fingerprint(record))


@pytest.fixture(scope="session")
def example_records() -> list[Record]:
    recs = [r for r in read_records(EXAMPLES / "records.jsonl") if isinstance(r, Record)]
    assert len(recs) >= 8
    return [stamp(r) for r in recs]


def write_key_files(key: SoftwareKey, directory: Path, *, passphrase: str = TEST_PASSPHRASE) -> tuple[Path, Path]:
    """Encrypted PKCS#8 PEM key + certificate PEM; returns (key path, cert path)."""
    key_path = directory / "dsc.key.pem"
    cert_path = directory / "dsc.pem"
    key_path.write_bytes(
        key.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    cert_path.write_bytes(key.certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture()
def ec_key_files(test_pki: TestPki, tmp_path: Path) -> tuple[Path, Path]:
    return write_key_files(test_pki.dsc_ec, tmp_path)
