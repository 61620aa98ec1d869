"""What the issuance ledger costs: `signer sign` and `signer batch` side by side, and a resume.

    .venv/bin/python bench/ledger.py                       # 3,000 records, --jobs 1 and 2
    .venv/bin/python bench/ledger.py --records 1000 --pdf --jobs 1
    .venv/bin/python bench/ledger.py --ledger-url 'postgresql://...'   # DBN -> bench0, bench1...
    .venv/bin/python bench/ledger.py --resume                # kill at 90 %, time the rest

Same seeded synthetic records as bench/sign_run.py (stamped as verified),
a fresh software ES256 key, HC1 + PNG (+ PDF). Per round: `sign`, `batch`
into a new ledger, and `batch` again (everything skipped); wall clock and
the CPU time of the command's processes (user + system, workers included;
not a PostgreSQL server's). Kept here rather than in bench/ until
tests/test_bench_smoke.py lists it. No target: the numbers for
docs/ledger.md, "Measured".
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from signing_setup import ROOT, setup  # bench/ is on the path when run as a script


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall, user + system CPU, system CPU) of one command and its child processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # 1: some synthetic records refused, in both commands alike
        sys.exit(f"{' '.join(command[:4])} failed:\n{proc.stderr[-2000:]}")
    system = after.ru_stime - before.ru_stime
    return wall, after.ru_utime - before.ru_utime + system, system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pdf", action="store_true")
    parser.add_argument("--ledger-url", help="postgresql:// URL; DBN is replaced by bench0, bench1, ... (created beforehand)")
    parser.add_argument("--resume", action="store_true", help="kill a batch at 90 %% of its files, time the resume")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        common, env, count = setup(work, args.records)
        centre = ["--centre", "Bench health centre"]
        extra = ["--pdf", "--crl", str(work / "crl.der"), *centre] if args.pdf else []
        source = str(work / "in.jsonl")
        py = [sys.executable, "-m", "signer"]
        print(f"{count} synthetic records, HC1 + PNG{' + PDF' if args.pdf else ''}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
        if args.resume:
            return resume(py, source, work, common, env, count, centre)
        databases = iter(range(1000))
        for jobs in args.jobs:
            for r in range(args.rounds):
                out = work / f"out-{jobs}-{r}"
                ledger = (
                    args.ledger_url.replace("DBN", f"bench{next(databases)}") if args.ledger_url
                    else str(work / f"ledger-{jobs}-{r}.sqlite")
                )  # fmt: skip
                batch = [*py, "batch", source, "--out", str(out), "--ledger", ledger, "--progress", "none",
                         *common, "--jobs", str(jobs), *(extra or centre)]  # fmt: skip
                runs = {
                    "sign": [*py, "sign", source, "--out", str(work / f"sign-{jobs}-{r}"), *common, "--jobs", str(jobs), *extra],
                    "batch": batch,
                    "rerun": batch,
                }
                for kind, command in runs.items():
                    wall, cpu, system = timed(command, env)
                    print(f"  --jobs {jobs} round {r} {kind:5}: {wall:6.2f} s wall ({count / wall:5.0f}/s), "
                          f"{cpu:6.2f} s CPU = {1000 * cpu / count:.2f} ms per record (system {system:.2f} s)",
                          flush=True)  # fmt: skip
    return 0


def resume(py: list[str], source: str, work: Path, common: list[str], env: dict[str, str], count: int, centre: list[str]) -> int:
    def command(name: str) -> list[str]:
        return [*py, "batch", source, "--out", str(work / name), "--ledger", str(work / f"{name}.sqlite"),
                "--progress", "none", *common, *centre]  # fmt: skip

    full, _, _ = timed(command("full"), env)
    proc = subprocess.Popen(command("killed"), env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    files = 0
    while proc.poll() is None and files < 0.9 * count:
        try:
            files = sum(1 for name in os.listdir(work / "killed") if name.endswith(".hc1.txt"))
        except OSError:
            files = 0
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    t0 = time.perf_counter()
    done = subprocess.run(command("killed"), env=env, cwd=ROOT, capture_output=True, text=True)
    again = time.perf_counter() - t0
    print(f"  full run {full:.1f} s; killed (SIGKILL, process group) at {files} HC1 files; "
          f"the same command then took {again:.2f} s = {100 * again / full:.1f} % of the full run")
    print("  " + done.stdout.strip().replace("\n", "\n  "))
    return 0


if __name__ == "__main__":
    sys.exit(main())
