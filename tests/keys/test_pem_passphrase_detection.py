"""Encrypted PEM keys are recognised wherever their header is, and the error says the truth.

`openssl pkcs12 -in x.p12 -out key.pem` writes "Bag Attributes" lines before the
key: the first 200 bytes used to be all that was looked at, so such a key was
opened without its passphrase and reported as "not encrypted but a passphrase
was given" (the opposite of what happened).
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from keys.loader import PemKeySpec, open_key
from keys.secrets import KEY_PASSPHRASE_ENV
from keys.software import SoftwareKey
from tests.fixtures.pki import TestPki as Pki
from verifier.errors import KeyBackendError

BAG = (
    b"Bag Attributes\n"
    b"    localKeyID: 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14 15 16 17 18 19 1A\n"
    b"    friendlyName: Tram Y te Phuong Ben Nghe document signer key, exported from PKCS#12\n"
    b"Key Attributes: <No Attributes>\n"
)


def _files(test_pki: Pki, tmp_path: Path, passphrase: bytes | None) -> tuple[Path, Path]:
    enc = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    key = test_pki.dsc_ec.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
    )
    key_path, cert_path = tmp_path / "dsc.key.pem", tmp_path / "dsc.pem"
    key_path.write_bytes(BAG + key)
    cert_path.write_bytes(test_pki.dsc_ec.certificate.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def test_encrypted_key_after_bag_attributes_opens(
    test_pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passphrase = secrets.token_urlsafe(12)
    key_path, cert_path = _files(test_pki, tmp_path, passphrase.encode())
    assert len(BAG) > 200
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, passphrase)
    with open_key(PemKeySpec(key_path=key_path, cert_path=cert_path)) as key:
        assert key.certificate == test_pki.dsc_ec.certificate


def test_messages_say_which_way_round(test_pki: Pki, tmp_path: Path) -> None:
    key_path, cert_path = _files(test_pki, tmp_path, b"secret-pass")
    with pytest.raises(KeyBackendError, match="key is encrypted: a passphrase is needed"):
        SoftwareKey.from_pem_files(key_path, cert_path, passphrase=None)
    plain_dir = tmp_path / "plain"
    plain_dir.mkdir()
    key_path, cert_path = _files(test_pki, plain_dir, None)
    with pytest.raises(KeyBackendError, match="not encrypted but a passphrase was given"):
        SoftwareKey.from_pem_files(key_path, cert_path, passphrase=b"x")
