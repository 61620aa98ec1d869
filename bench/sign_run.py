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

Issue 10's target ("a whole signing run, HC1 + PNG + PDF, with the ledger,
at least 3x today's records per CPU-second"):

    .venv/bin/python bench/sign_run.py --records 3000 --baseline 393cbdd
    .venv/bin/python bench/sign_run.py --records 2000 --pdf --baseline 393cbdd

``--baseline REV`` extracts that revision (``git archive``; 393cbdd is the
code of the issue's filing, before the QR work) and runs, in alternating
order for ``--rounds`` rounds, its ``signer sign --jobs 1`` and this tree's
``signer batch --jobs 1`` (SQLite ledger) on the same records; it prints
the CPU per record of each (user and system) and the median of the
per-round ratios. ``--out-root DIR`` puts the output folders there: on ext4
creating a file in a block group where many files were deleted within the
last minutes costs far more system time (the inode allocator skips each
recently deleted inode; docs/benchmarks.md), so where the folders go moves
the system time of both commands.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from signing_setup import ROOT, setup  # bench/ is on the path when run as a script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pdf", action="store_true", help="also sign a PDF passport per record")
    parser.add_argument(
        "--baseline", metavar="REV", help="REV's `sign` against this tree's `batch` (issue 10's 3x)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --baseline: paired rounds")
    parser.add_argument(
        "--out-root", type=Path, help="with --baseline: where the output folders go"
    )
    args = parser.parse_args()
    if args.baseline:
        return against_baseline(args)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        common, env, count = setup(work, args.records)
        extra = (
            ["--pdf", "--centre", "Bench health centre", "--crl", str(work / "crl.der")]
            if args.pdf
            else []
        )

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


def cpu_of(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(user, system) CPU seconds of one command and its child processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command[2:5])} failed:\n{proc.stderr[-2000:]}")
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def against_baseline(args: argparse.Namespace) -> int:
    """Paired rounds: REV's `sign --jobs 1` and this tree's `batch --jobs 1` (ledger)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True
        )
        base = work / "baseline"
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(base, filter="data")
        # byte-compiled as an installed tree is (else each run of it compiles every module:
        # about 0.25 s of CPU per process that the current tree, already compiled, does not pay)
        packages = [str(base / name) for name in ("signer", "verifier", "keys", "templates")]
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", *packages], capture_output=True, check=True
        )
        common, env, count = setup(work, args.records)
        pdf = ["--pdf", "--crl", str(work / "crl.der")] if args.pdf else []
        centre = ["--centre", "Bench health centre"]
        source = str(work / "in.jsonl")
        out_root = args.out_root or work
        out_root.mkdir(parents=True, exist_ok=True)
        tag = f"{os.getpid()}-{time.time_ns()}"
        py = [sys.executable, "-m", "signer"]
        kinds = "HC1 + PNG" + (" + PDF" if args.pdf else "")
        print(f"issue 10 target: {count} synthetic records, {kinds}, --jobs 1, {args.rounds} paired rounds; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; Python {sys.version.split()[0]}")  # fmt: skip
        results: dict[str, list[tuple[float, float]]] = {"baseline": [], "current": []}
        for r in range(args.rounds):
            out = out_root / f"sign-run-{tag}-{r}"
            runs = {
                "baseline": ([*py, "sign", source, "--out", f"{out}-baseline", *common, "--jobs", "1", *pdf,
                              *(centre if args.pdf else [])], base, {**env, "PYTHONPATH": str(base)}),
                "current": ([*py, "batch", source, "--out", f"{out}-current", "--ledger", f"{out}-current.sqlite",
                             "--progress", "none", *common, "--jobs", "1", *pdf, *centre], ROOT, env),
            }  # fmt: skip
            for name in list(runs) if r % 2 == 0 else list(runs)[::-1]:
                command, cwd, run_env = runs[name]
                user, system = cpu_of(command, cwd, run_env)
                results[name].append((user, system))
                print(f"  round {r} {name:8} ({'sign' if name == 'baseline' else 'batch'}): "
                      f"{1000 * (user + system) / count:5.2f} ms CPU per record (user {1000 * user / count:.2f}, "
                      f"system {1000 * system / count:.2f}); load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
        ratios = [
            (bu + bs) / (cu + cs)
            for (bu, bs), (cu, cs) in zip(results["baseline"], results["current"], strict=True)
        ]
        for name, label in (
            ("baseline", f"{args.baseline} sign"),
            ("current", "this tree's batch"),
        ):
            median = statistics.median(1000 * (u + s) / count for u, s in results[name])
            print(f"  {label:18}: median {median:5.2f} ms CPU per record")
        ratio = statistics.median(ratios)
        print(f"  ratio baseline / current: {ratio:.2f}x (rounds {min(ratios):.2f}x-{max(ratios):.2f}x); "
              f"target 3x: {'met' if ratio >= 3 else 'not met'}")  # fmt: skip
        return 0 if ratio >= 3 else 1


if __name__ == "__main__":
    sys.exit(main())
