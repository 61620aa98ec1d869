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
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from signing_setup import ROOT, setup  # bench/ is on the path when run as a script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pdf", action="store_true", help="also sign a PDF passport per record")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        common, env, count = setup(work, args.records)
        extra = ["--pdf", "--centre", "Bench health centre", "--crl", str(work / "crl.der")] if args.pdf else []

        kinds = "HC1 + PNG" + (" + PDF" if args.pdf else "")
        print(
            f"signing run benchmark: {count} synthetic records, {kinds}, wall clock, "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}"
        )
        base = None
        for jobs in args.jobs:
            out = work / f"out-{jobs}"
            command = [
                sys.executable, "-m", "signer", "sign", str(work / "in.jsonl"), "--out", str(out),
                *common, "--jobs", str(jobs), *extra,
            ]  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            proc = subprocess.run(
                command, capture_output=True, text=True, cwd=ROOT,
                env=env,
            )  # fmt: skip
            elapsed = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            rate = count / elapsed
            base = base or rate
            print(
                f"  --jobs {jobs}: {elapsed:6.1f} s  {rate:7.0f} records/s  "
                f"({1000 / rate:5.2f} ms per record; x{rate / base:.2f} vs the first); "
                f"CPU {cpu:6.1f} s = {1000 * cpu / count:5.2f} ms per record"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
