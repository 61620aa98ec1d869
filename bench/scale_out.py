"""`signer batch --celery` on 1 and on 2 `signer worker` processes: the speed-up (issue 10).

    .venv/bin/python bench/scale_out.py                    # 10,000 records, HC1 + PNG
    .venv/bin/python bench/scale_out.py --records 1000 --pdf

Starts its own redis-server and PostgreSQL (Debian packages `redis-server`
and `postgresql`) on loopback ports in a temporary folder, the same seeded
synthetic records and throw-away key as bench/ledger.py. Per worker count:
a fresh ledger database, N workers (one signing process each) started and
answering before the clock starts, then the wall clock of the coordinator's
`batch --celery` to the end (manifest included). Target (issue 10): 2
workers at least 1.6x one on a 2-core machine. Exit code 0 when met.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET = 1.6


def _bench_ledger() -> object:
    spec = importlib.util.spec_from_file_location("bench_ledger", ROOT / "bench" / "ledger.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server(work: Path) -> Iterator[str]:
    binary = shutil.which("redis-server") or sys.exit("redis-server not found (Debian package redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def postgres_server(work: Path) -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if not bins:
        sys.exit("PostgreSQL not found (Debian package postgresql)")
    bindir = Path(bins[0]).parent
    base = work / "pg"
    base.mkdir()
    prefix: list[str] = []
    user = os.environ.get("USER", "postgres")
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        prefix, user = ["runuser", "-u", "postgres", "--"], "postgres"
        shutil.chown(base, "postgres")
        for parent in base.parents:
            if parent != Path("/"):
                os.chmod(parent, os.stat(parent).st_mode | 0o001)
    data = base / "data"
    subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", user, "-A", "trust", "--no-sync"],
                   check=True, capture_output=True)  # fmt: skip
    port = _free_port()
    opts = f"-k {base} -p {port} -c listen_addresses=127.0.0.1"
    subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-w", "-l", str(base / "log"), "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql://{user}@/postgres?host={base}&port={port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, check=False)  # fmt: skip


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its living descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    stats = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            stats[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    while todo:
        current = todo.pop()
        if current in stats:
            total += stats[current][1]
        todo += [p for p, (parent, _) in stats.items() if parent == current]
    return total


def wait_for_workers(url: str, count: int) -> None:
    from signer.celery_app import make_app

    app = make_app(url)
    for _ in range(120):
        if len(app.control.ping(timeout=0.5)) >= count:
            return
    sys.exit(f"{count} worker(s) did not answer")


def one_round(work: Path, n: int, *, redis: str, pg: str, common: list[str], env: dict[str, str],
              extra: list[str]) -> float:  # fmt: skip
    import psycopg

    name = f"bench_celery_{n}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    head, _, query = pg.partition("?")
    ledger = f"{head.rsplit('/', 1)[0]}/{name}?{query}"
    key_args, at = common[:-2], common[-1]  # bench/ledger.py: key options, then --at TIME
    subprocess.run([sys.executable, "-m", "signer", "ledger", "status", "--ledger", ledger], env=env,
                   capture_output=True, check=False)  # fmt: skip  (creates the schema)
    workers = [
        subprocess.Popen([sys.executable, "-m", "signer", "worker", "--celery", redis, "--ledger", ledger, *key_args],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(n)
    ]  # fmt: skip
    try:
        wait_for_workers(redis, n)
        out = work / f"out{n}"
        workers_before = sum(tree_cpu(w.pid) for w in workers)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "signer", "batch", str(work / "in.jsonl"), "--out", str(out), "--ledger", ledger,
             "--centre", "Bench centre", "--at", at, "--progress", "none", "--celery", redis, *extra],
            env=env, capture_output=True, text=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        coordinator = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        signing = sum(tree_cpu(w.pid) for w in workers) - workers_before
        if done.returncode != 0:
            sys.exit(f"batch failed:\n{done.stderr[-2000:]}")
        count = int(done.stdout.split(" record(s)")[0].split()[-1])
        print(f"  {n} worker(s): {elapsed:.2f} s wall; CPU per record: coordinator {1000 * coordinator / count:.2f} ms, "
              f"workers {1000 * signing / count:.2f} ms  ({done.stdout.splitlines()[0]})")
        return elapsed
    finally:
        for w in workers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(w.pid, 9)
            w.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--pdf", action="store_true")
    ap.add_argument("--chunk-size", type=int, default=256, help="records per chunk (task)")
    args = ap.parse_args()
    bench_ledger = _bench_ledger()
    with tempfile.TemporaryDirectory(prefix="bench-celery-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        common, env, count = bench_ledger.setup(work, args.records)  # type: ignore[attr-defined]
        pdf = ["--pdf", "--crl", str(work / "crl.der")] if args.pdf else []
        print(f"{count} records, HC1 + PNG{' + PDF' if pdf else ''}, {os.cpu_count()} CPU(s)")
        with redis_server(work) as redis, postgres_server(work) as pg:
            extra = [*pdf, "--chunk-size", str(args.chunk_size)]
            times = {n: one_round(work, n, redis=redis, pg=pg, common=common, env=env, extra=extra) for n in (1, 2)}
    ratio = times[1] / times[2]
    print(f"2 workers vs 1: {ratio:.2f}x ({count / times[1]:.0f} -> {count / times[2]:.0f} records/s; target {TARGET}x)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
