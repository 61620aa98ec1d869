"""Shared set-up of the signing benchmarks (bench/sign_run.py, bench/ledger.py):
synthetic verified records, a fresh CSCA + DSC (its key encrypted with a random
passphrase handed over in the environment, never argv) and a CRL."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402

from keys.certs import make_csca, make_dsc, new_private_key  # noqa: E402
from signer.cleaning.synth import SynthConfig, generate  # noqa: E402
from signer.records import Record, read_records, record_fingerprint, write_jsonl  # noqa: E402

#: The benchmarks' clock: fixed, so that the synthetic doses and certificates are valid.
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def setup(work: Path, count: int) -> tuple[list[str], dict[str, str], int]:
    """Records, key, CRL; returns (common options, environment, records)."""
    paths = generate(work / "synth", SynthConfig(records=count, seed=11, error_rate=0.0, malformed_rows=0))
    records = [replace(r, verified=record_fingerprint(r)) for r in read_records(paths["records"]) if isinstance(r, Record)]
    with (work / "in.jsonl").open("w", encoding="utf-8") as fh:
        write_jsonl(records, fh)
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="Bench CSCA", now=NOW - dt.timedelta(days=10))
    dsc_key = new_private_key("ec-p256")
    dsc = make_dsc(csca, ca_key, dsc_key.public_key(), name="Bench DSC", now=NOW - dt.timedelta(days=1))
    passphrase = secrets.token_urlsafe(16)
    (work / "dsc.key.pem").write_bytes(
        dsc_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    (work / "dsc.pem").write_bytes(dsc.public_bytes(serialization.Encoding.PEM))
    (work / "csca.pem").write_bytes(csca.public_bytes(serialization.Encoding.PEM))
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    (work / "crl.der").write_bytes(crl.public_bytes(serialization.Encoding.DER))
    common = ["--key", str(work / "dsc.key.pem"), "--cert", str(work / "dsc.pem"), "--chain", str(work / "csca.pem"),
              "--at", NOW.isoformat()]  # fmt: skip
    env = {**os.environ, "VNDCC_KEY_PASSPHRASE": passphrase, "VNDCC_LEDGER_KEY": secrets.token_hex(32)}
    return common, env, len(records)
