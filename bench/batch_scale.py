"""`signer batch` at scale, QR-only (HC1 + PNG) or with ``--pdf`` the signed PDF passports too: speed per --jobs,
peak memory, resume after a kill, ledger look-ups.

    .venv/bin/python bench/batch_scale.py --records 20000 --jobs 1 2 --resume --query
    .venv/bin/python bench/batch_scale.py --records 200000 --jobs 2          # memory at size
    .venv/bin/python bench/batch_scale.py --records 100000 --jobs 2 --resume --pdf   # HC1 + PNG + PDF
    .venv/bin/python bench/batch_scale.py --records 100000 --jobs 2 --resume --repeat 5 --keep   # issue 10's resume

Same seeded synthetic records and throw-away ES256 key as bench/ledger.py
(bench/signing_setup.py), SQLite ledger, software key. Per ``--jobs``
value: a fresh folder and ledger, wall clock, CPU of the command's
processes, and the peak resident memory of the whole process tree (the
sum over the run and its workers, sampled every 0.1 s from /proc) and of
its largest process (``ru_maxrss``). ``--resume`` (with the last --jobs
value): the same batch again into a new folder, SIGKILLed (process group)
once 90 % of the records are written in the ledger, then the same command
timed to the end, against the full run above and against the killed run's
own pace (:func:`pace_full`, a yardstick taken the minute before: a full run
timed minutes away may be 20 % slower or faster on a shared VM), and then
against the records it had left run alone, right after it (:func:`records_left`:
what any run of that many records costs, start and end included). ``--query``: median and
99th percentile of ``Ledger.by_record`` on random record ids of the
largest ledger built.

Where the files go: creating a file on this machine's ext4 root costs
about 0.35 ms more system CPU in a folder whose block group saw many files
deleted in the last minutes (the "recently deleted inode" scan), which
alone moved a 2 vs 1 ratio from 1.8x to 1.4x. So each bench run works in a
*fresh top-level folder* (``/bench-batch-<UTC time>-<pid>``, a new one per
run: ext4 spreads top-level folders over the block groups), or in a new
folder under ``--work DIR`` (made if missing; a warning when DIR is not a
new top-level folder). It is removed at the end unless ``--keep``:
removing 100,000s of files slows every file creation near them for some
minutes, so with others measuring, keep and remove later. Issue 10 targets: 2 processes >= 1.8x one; resume
< 10 % of the full run; 1,000,000 records under 500 MB (extrapolated from
the sizes measured); look-up < 1 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

from signing_setup import ROOT, setup  # bench/ is on the path when run as a script

TICK = os.sysconf("SC_CLK_TCK")
#: signer.batch_manifest.MANIFEST_TAIL (not imported: the bench's own process stays light)
MANIFEST_TAIL = "manifest-tail:"
#: The tail is committed with the next batch's change: it names the written
#: certificates one batch (signer.run.BATCH_SIZE) behind, so the kill is sent
#: when it reads 90 % less one batch (the count after the kill is exact)
TAIL_LAG = 256


def tree_rss(wrapper: int, cpu: dict[int, float] | None = None) -> tuple[int, int, int, int]:
    """(sum, largest, of the batch's own process) resident set in bytes of the
    descendants of ``wrapper`` (the batch and its workers), and the batch's
    pid; ``cpu`` gets each one's CPU seconds so far (user + system)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            child = int(stat.parent.name)
            parents[child] = int(fields[1])
            rss[child] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            if cpu is not None:
                cpu[child] = (int(fields[11]) + int(fields[12])) / TICK
    main = next((p for p, parent in parents.items() if parent == wrapper), 0)
    tree, todo = [], [main] if main else []
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += [p for p, parent in parents.items() if parent == current]
    if cpu is not None:
        for other in set(cpu) - set(tree):
            del cpu[other]
    values = [rss.get(p, 0) for p in tree]
    return sum(values), max(values, default=0), rss.get(main, 0), main


class Sampler(threading.Thread):
    """Peak RSS of a process tree (sum), of its largest process, and of the root process alone."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_sum, self.peak_one, self.peak_main = pid, 0, 0, 0
        self.cpu: dict[int, float] = {}  # last CPU seconds seen per process of the tree
        self.main_cpu = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            now: dict[int, float] = dict(self.cpu)
            total, one, main, main_pid = tree_rss(self.pid, now)
            self.cpu.update(now)
            self.main_cpu = self.cpu.get(main_pid, self.main_cpu)
            self.peak_sum, self.peak_one = max(self.peak_sum, total), max(self.peak_one, one)
            self.peak_main = max(self.peak_main, main)
            self.done.wait(0.1)


#: Runs the batch as its child and reports the largest resident set among the
#: batch's processes (``ru_maxrss`` of the waited-for children: exact, not sampled).
WRAPPER = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


def batch_command(work: Path, name: str, common: list[str], jobs: int) -> list[str]:
    return [sys.executable, "-m", "signer", "batch", str(work / "in.jsonl"), "--out", str(work / name),
            "--ledger", str(work / f"{name}.sqlite"), "--centre", "Bench health centre", "--progress", "none",
            *common, "--jobs", str(jobs)]  # fmt: skip


def timed_run(command: list[str], env: dict[str, str]) -> dict[str, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    sampler = Sampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t0
    sampler.done.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.exit(f"batch failed ({proc.returncode}):\n{err[-2000:]}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    maxrss = int(err.rsplit("MAXRSS ", 1)[1].split()[0]) * 1024
    return {"wall": wall, "cpu": cpu, "rss_sum": sampler.peak_sum, "rss_one": sampler.peak_one,
            "rss_main": sampler.peak_main, "main_cpu": sampler.main_cpu, "maxrss": maxrss,
            "summary": out.strip().splitlines()[0], "stderr": err}  # type: ignore[dict-item]  # fmt: skip


def written(ledger: Path) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)) as db:
            return int(db.execute("SELECT COUNT(*) FROM certificates WHERE state = 'written'").fetchone()[0])
    except sqlite3.Error:
        return 0


def manifested(ledger: Path, folder: Path) -> int:
    """The run's progress as its manifest's tail in the ledger names it
    (written certificates, one batch behind): one look-up by key, where
    :func:`written`'s count walks an index of the whole table (~14 ms of CPU
    at 90,000 rows, which polled every 0.2 s slowed the killed run ~1 %)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)) as db:
            row = db.execute("SELECT value FROM ledger_meta WHERE name = ?",
                             (MANIFEST_TAIL + str(folder.resolve()),)).fetchone()  # fmt: skip
    except sqlite3.Error:
        return 0
    try:
        return int(json.loads(row[0])["lines"]) if row else 0
    except (ValueError, KeyError, TypeError):
        return 0


class Resumed(NamedTuple):
    """A resume's wall time and CPU as fractions of the full run's, its wall
    time as a fraction of the killed run's own pace (:func:`pace_full`; None
    for a run too small to tell) and of the records left run alone
    (:func:`records_left`)."""

    wall: float
    cpu: float
    paced: float | None
    alone: float


def resume(work: Path, common: list[str], env: dict[str, str], jobs: int, count: int, full: float,
           full_cpu: float, name: str = "killed") -> Resumed:  # fmt: skip
    """Kill a batch into a new folder ``name`` at 90 %, time the same command
    again; prints it and returns how it compares (:class:`Resumed`). The killed run is
    started and watched as the timed runs are (the wrapper and the memory
    sampler: the same start and the same load), its progress read from the
    ledger by key every 0.05 s (:func:`manifested`)."""
    command = batch_command(work, name, common, jobs)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *command], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    sampler = Sampler(proc.pid)
    sampler.start()
    half, last = None, (0.0, 0)  # (seconds, certificates written as the manifest's tail names them)
    while proc.poll() is None and last[1] + TAIL_LAG < 0.9 * count:
        time.sleep(0.05)
        last = (time.perf_counter() - t0, manifested(work / f"{name}.sqlite", work / name))
        if half is None and last[1] >= count // 2:
            half = last
    with contextlib.suppress(ProcessLookupError):  # a small run may end before the kill
        os.killpg(proc.pid, signal.SIGKILL)
    killed = time.perf_counter() - t0
    proc.wait()
    sampler.done.set()
    sampler.join()
    done = written(work / f"{name}.sqlite")
    paced = pace_full(half, last, (killed, done), count)
    load = os.getloadavg()[0]
    again = timed_run(command, env)
    left = (count - done) / count
    print(f"  resume (--jobs {jobs}): killed with SIGKILL (process group) at {done} written ({100 * done / count:.1f} %); "
          f"the same command then took {again['wall']:.2f} s = {100 * again['wall'] / full:.1f} % of the full run "
          f"({full:.1f} s); CPU {again['cpu']:.1f} s = {100 * again['cpu'] / full_cpu:.1f} % of the full run's "
          f"{full_cpu:.1f} s (load {load:.1f} -> {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
    note = again["stderr"].strip().splitlines()
    print(f"    {next((ln for ln in note if ln.startswith('resuming')), '(read the whole input again)')}")
    print(f"    {again['summary']}")
    # the same records as a run of their own, right after: what they cost with a start and an end
    alone = timed_run(on_input(command, work, f"{name}-left", records_left(work, done, f"{name}-left.jsonl")), env)
    print(f"    the records left run alone ({count - done} records, a new folder and ledger, right after): "
          f"{alone['wall']:.2f} s wall, CPU {alone['cpu']:.1f} s; the resume took "
          f"{100 * again['wall'] / alone['wall']:.0f} % of that wall time, {100 * again['cpu'] / alone['cpu']:.0f} % "
          f"of its CPU", flush=True)  # fmt: skip
    # what a resume cannot avoid: the records left (their share of the full run) and one start-up
    (work / "empty.jsonl").write_text("")
    start = timed_run(on_input(command, work, f"{name}-empty", work / "empty.jsonl"), env)
    print(f"    left to sign {100 * left:.1f} % of the batch = {left * full_cpu:.1f} s of the full run's CPU; "
          f"start-up alone (the same command on an empty input): {start['cpu']:.2f} s CPU, {start['wall']:.2f} s wall; "
          f"the resume's CPU beyond the records left: {again['cpu'] - left * full_cpu:+.2f} s "
          f"({100 * (again['cpu'] - left * full_cpu) / full_cpu:+.2f} % of the full run)", flush=True)  # fmt: skip
    if paced is not None and half is not None:
        print(f"    the killed run's own pace (written {half[1]} at {half[0]:.1f} s, {last[1]} at {last[0]:.1f} s; "
              f"killed at {killed:.1f} s with {done} written) puts "
              f"its whole batch at {paced:.1f} s: the resume is {100 * again['wall'] / paced:.1f} % of that")  # fmt: skip
    return Resumed(again["wall"] / full, again["cpu"] / full_cpu, None if paced is None else again["wall"] / paced,
                   again["wall"] / alone["wall"])  # fmt: skip


def on_input(command: list[str], work: Path, name: str, records: Path) -> list[str]:
    """``command`` (:func:`batch_command`) over ``records`` into folder and ledger ``name``."""
    other = [*command[:4], str(records), *command[5:]]
    other[other.index("--out") + 1] = str(work / name)
    other[other.index("--ledger") + 1] = str(work / f"{name}.sqlite")
    return other


def records_left(work: Path, done: int, name: str) -> Path:
    """The input's lines after the first ``done``, as file ``name``: the
    records a run killed with ``done`` written had left (a run writes its
    batches in input order, and every bench record is issued)."""
    path = work / name
    with (work / "in.jsonl").open("rb") as source, path.open("wb") as out:
        for number, line in enumerate(source):
            if number >= done:
                out.write(line)
    return path


def pace_full(half: tuple[float, int] | None, last: tuple[float, int], kill: tuple[float, int],
              count: int) -> float | None:  # fmt: skip
    """The killed run's whole batch at the pace it wrote between half way and
    its last reading before the kill (``half`` and ``last``: seconds and
    certificates written, as :func:`manifested` read them): a yardstick taken
    the minute before its resume (this VM's speed drifts by +-20 % over
    minutes, so a full run timed earlier or later is not one). Its time at
    the kill plus the records left (``kill``: seconds, and certificates
    written as counted after it) at that pace; what the pace leaves out (the
    end's last commits, ~0.1-0.2 s) would make the whole run longer, so the
    resume's share of it is if anything overstated."""
    if half is None or last[1] <= half[1] or last[0] <= half[0]:
        return None
    rate = (last[1] - half[1]) / (last[0] - half[0])
    return kill[0] + (count - kill[1]) / rate


def resumes(work: Path, common: list[str], env: dict[str, str], jobs: int, count: int, full: dict[str, float],
            repeat: int) -> None:  # fmt: skip
    """``repeat`` kills and resumes (each in a new folder), then, with more
    than one, the full run again: the ratios' median against the mean of the two full runs."""
    if repeat == 1:
        resume(work, common, env, jobs, count, full["wall"], full["cpu"])
        return
    measured = [resume(work, common, env, jobs, count, full["wall"], full["cpu"], f"killed-{i}") for i in range(1, repeat + 1)]
    paced = sorted(100 * r.paced for r in measured if r.paced is not None)
    alone = sorted(100 * r.alone for r in measured)
    load, start = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
    again = timed_run(batch_command(work, f"out-{jobs}-again", common, jobs), env)
    print(f"  --jobs {jobs} full run again (from {start} UTC, load {load:.1f} -> {os.getloadavg()[0]:.1f}): "
          f"{again['wall']:.1f} s wall, CPU {again['cpu']:.1f} s (first: {full['wall']:.1f} s, {full['cpu']:.1f} s)")  # fmt: skip
    # each ratio above is against the first full run: against the mean of both instead
    wall_scale = full["wall"] / ((full["wall"] + again["wall"]) / 2)
    cpu_scale = full["cpu"] / ((full["cpu"] + again["cpu"]) / 2)
    walls = sorted(100 * r.wall * wall_scale for r in measured)
    cpus = sorted(100 * r.cpu * cpu_scale for r in measured)
    print(f"  resume, {repeat} kills at 90 %, against the mean of the two full runs: median "
          f"{statistics.median(walls):.1f} % of the full run's wall time ({walls[0]:.1f}-{walls[-1]:.1f} %), "
          f"{statistics.median(cpus):.1f} % of its CPU ({cpus[0]:.1f}-{cpus[-1]:.1f} %) (target: under 10 %)",
          flush=True)  # fmt: skip
    if paced:
        print(f"  resume, {repeat} kills at 90 %, against each killed run's own pace: median "
              f"{statistics.median(paced):.1f} % ({paced[0]:.1f}-{paced[-1]:.1f} %) (target: under 10 %)", flush=True)  # fmt: skip
    print(f"  resume, {repeat} kills at 90 %, against the records it had left run alone: median "
          f"{statistics.median(alone):.0f} % ({alone[0]:.0f}-{alone[-1]:.0f} %) of that wall time", flush=True)  # fmt: skip


def query(work: Path, name: str, env: dict[str, str], count: int) -> None:
    sys.path.insert(0, str(ROOT))
    from signer.ledger import Ledger

    os.environ["VNDCC_LEDGER_KEY"] = env["VNDCC_LEDGER_KEY"]
    ledger = Ledger.open(str(work / f"{name}.sqlite"), actor="bench", create=False)
    try:
        ids = [rid for (rid,) in ledger.db.fetchall("SELECT record_id FROM certificates")]
        rows = ledger.db.fetchone("SELECT COUNT(*) FROM certificates")
        picks = random.Random(7).choices(ids, k=2000)
        times = []
        for rid in picks:
            t0 = time.perf_counter()
            found = ledger.by_record(rid)
            times.append(time.perf_counter() - t0)
            assert found
        times.sort()
        size = (work / f"{name}.sqlite").stat().st_size
        print(f"  ledger look-up by record id ({rows[0] if rows else '?'} rows, {size / 1e6:.0f} MB): median "
              f"{1000 * statistics.median(times):.3f} ms, p99 {1000 * times[int(0.99 * len(times))]:.3f} ms, "
              f"max {1000 * times[-1]:.3f} ms (2,000 random ids)")  # fmt: skip
    finally:
        ledger.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--resume", action="store_true", help="kill a batch at 90 %% and time the resume")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="with --resume: N kills and resumes (and the full run timed again after them): "
                             "the median ratio against the two full runs' mean and against the killed runs' "
                             "own pace (a resume is ~6 s, and single ones vary by +-20 %% on a shared VM)")  # fmt: skip
    parser.add_argument("--query", action="store_true", help="time ledger look-ups by record id")
    parser.add_argument("--pdf", action="store_true", help="also the signed PDF passports (HC1 + PNG + PDF)")
    parser.add_argument("--work", type=Path, metavar="DIR",
                        help="make the run's folder in DIR (made if missing; best a new top-level folder); "
                             "default: a new top-level folder /bench-batch-TIME-PID")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the run's folder (remove it later)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat needs a number from 1")
    work = work_folder(args.work)
    print(f"work folder: {work}", flush=True)
    try:
        run_all(args, work)
    finally:
        if args.keep:
            print(f"kept {work} (remove it when nobody measures: deleting many files slows creating files)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def work_folder(parent: Path | None) -> Path:
    """A new folder for one bench run (module docstring, "Where the files go")."""
    stamp = f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.getpid()}"
    if parent is None:
        try:
            folder = Path(f"/bench-batch-{stamp}")
            folder.mkdir(mode=0o700)
            return folder
        except OSError as err:
            parent = Path(tempfile.gettempdir())
            print(f"warning: cannot make a top-level folder ({err.strerror}); working under {parent}, where "
                  "files deleted recently may make creating files slower", file=sys.stderr)  # fmt: skip
    else:
        fresh = not parent.exists()
        parent.mkdir(parents=True, exist_ok=True)
        top = parent.resolve().parent == Path("/")
        if not (fresh and top):
            print(f"warning: {parent} is not a new top-level folder: if many files were deleted near it in the "
                  "last minutes, creating files costs more (ext4) and the results are slower; prefer a new "
                  "--work /bench-NAME per run", file=sys.stderr)  # fmt: skip
    return Path(tempfile.mkdtemp(prefix="bench-batch-", dir=parent))


def run_all(args: argparse.Namespace, work: Path) -> None:
    t0 = time.perf_counter()
    # byte-compiled as an installed tree is: with PYTHONDONTWRITEBYTECODE set (scripts/test.sh,
    # some shells) every batch process would compile the modules changed since the last
    # compile, ~50-250 ms of start-up that a user's installed copy does not pay
    packages = [str(ROOT / name) for name in ("signer", "verifier", "keys")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *packages], capture_output=True, check=True)
    common, env, count = setup(work, args.records)
    if args.pdf:
        common += ["--pdf", "--crl", str(work / "crl.der")]
    print(f"{count} synthetic records (made in {time.perf_counter() - t0:.0f} s), HC1 + PNG{' + PDF' * args.pdf}, SQLite ledger, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    walls: dict[int, float] = {}
    cpus: dict[int, float] = {}
    for jobs in args.jobs:
        load, start = os.getloadavg()[0], time.strftime("%H:%M:%S", time.gmtime())
        run = timed_run(batch_command(work, f"out-{jobs}", common, jobs), env)
        walls[jobs], cpus[jobs] = run["wall"], run["cpu"]
        print(f"  --jobs {jobs} (from {start} UTC, load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}): {run['wall']:7.1f} s wall, {count / run['wall']:5.0f} records/s, CPU "
              f"{1000 * run['cpu'] / count:.2f} ms per record (the run's own process "
              f"{1000 * run['main_cpu'] / count:.2f}); peak RSS {run['rss_sum'] / 2**20:.0f} MB "
              f"(all processes), the run's own process {run['rss_main'] / 2**20:.0f} MB, largest process "
              f"{run['maxrss'] / 2**20:.0f} MB", flush=True)  # fmt: skip
        print(f"    {run['summary']}")
    if 1 in walls and 2 in walls:
        print(f"  --jobs 2 vs --jobs 1: {walls[1] / walls[2]:.2f}x wall (target 1.8x); bound from the CPU per "
              f"record, 2 x {cpus[1]:.1f} / {cpus[2]:.1f} s = {2 * cpus[1] / cpus[2]:.2f}x")  # fmt: skip
    last = args.jobs[-1]
    if args.resume:
        resumes(work, common, env, last, count, {"wall": walls[last], "cpu": cpus[last]}, args.repeat)
    if args.query:
        query(work, f"out-{last}", env, count)


if __name__ == "__main__":
    sys.exit(main())
