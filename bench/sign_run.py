"""End-to-end signing runs: ``python -m signer sign`` on synthetic records, records per second.

    .venv/bin/python bench/sign_run.py                 # 3,000 records, HC1 + PNG, --jobs 1 and 2
    .venv/bin/python bench/sign_run.py --records 10000 --pdf --jobs 1 2

Measures the whole command as a health centre runs it (process start, key
loading, reading the records, HC1, signature self-check, QR PNG, optional
signed PDF, atomic file writes and the manifest), in wall-clock time and in
CPU time (user + system of the command's processes: the figure that does
not depend on the other load of the machine), once per ``--jobs`` value, on the same seeded synthetic records (stamped as
verified) with a fresh software ES256 key, and prints each rate and the
speed-up against ``--jobs 1`` measured in the same run. No target: a
figure for docs/benchmarks.md (the per-certificate targets are in
bench/hc1.py, bench/pdf.py and bench/qr.py).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402

from keys.certs import make_csca, make_dsc, new_private_key  # noqa: E402
from signer.cleaning.synth import SynthConfig, generate  # noqa: E402
from signer.records import Record, read_records, record_fingerprint, write_jsonl  # noqa: E402

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pdf", action="store_true", help="also sign a PDF passport per record")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = generate(work / "synth", SynthConfig(records=args.records, seed=11, error_rate=0.0, malformed_rows=0))
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
        extra: list[str] = []
        if args.pdf:
            crl = (
                x509.CertificateRevocationListBuilder()
                .issuer_name(csca.subject)
                .last_update(NOW - dt.timedelta(hours=1))
                .next_update(NOW + dt.timedelta(days=7))
                .add_extension(x509.CRLNumber(1), critical=False)
                .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
            )
            (work / "crl.der").write_bytes(crl.public_bytes(serialization.Encoding.DER))
            extra = ["--pdf", "--centre", "Bench health centre", "--crl", str(work / "crl.der")]

        kinds = "HC1 + PNG" + (" + PDF" if args.pdf else "")
        print(
            f"signing run benchmark: {len(records)} synthetic records, {kinds}, wall clock, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}"
        )
        base = None
        for jobs in args.jobs:
            out = work / f"out-{jobs}"
            command = [
                sys.executable, "-m", "signer", "sign", str(work / "in.jsonl"), "--out", str(out),
                "--key", str(work / "dsc.key.pem"), "--cert", str(work / "dsc.pem"),
                "--chain", str(work / "csca.pem"), "--at", NOW.isoformat(), "--jobs", str(jobs), *extra,
            ]  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(
                command, capture_output=True, text=True, cwd=ROOT,
                env={**os.environ, "VNDCC_KEY_PASSPHRASE": passphrase},
            )  # fmt: skip
            elapsed = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            rate = len(records) / elapsed
            base = base or rate
            print(
                f"  --jobs {jobs}: {elapsed:6.1f} s  {rate:7.0f} records/s  "
                f"({1000 / rate:5.2f} ms per record; x{rate / base:.2f} vs the first); "
                f"CPU {cpu:6.1f} s = {1000 * cpu / len(records):5.2f} ms per record"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
