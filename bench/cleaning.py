"""Data cleaning speed: records checked per second against a registry, registry indexing included.

    .venv/bin/python bench/cleaning.py                       # 1M records vs 1M people (~2-3 min with generation)
    .venv/bin/python bench/cleaning.py --records 100000 --score   # + precision/recall against the ground truth
    .venv/bin/python bench/cleaning.py --records 100000 --score --shape dose-rows   # one CSV row per dose
    .venv/bin/python bench/cleaning.py --shape dose-rows --no-rerun   # issue 9's target: 1M people, ~2.5M rows
    .venv/bin/python bench/cleaning.py --records 100000 --shape dose-rows --compare-with /tmp/old   # outputs == old code's

Generates the synthetic data once (``python -m signer.cleaning synth``, seeded;
kept in ``bench/.data/`` and reused when present), then, in one run:

1. **baseline**: one core streaming the same export through
   :func:`signer.records.read_records` alone (parsing, no check) on a sample:
   the floor that any check built on the shared reader pays;
2. **full check**, in a fresh child process with a fresh state directory:
   registry indexed from CSV (two shards built in parallel), every check,
   registry look-ups, results store, verified output, per-commune
   reconciliation lists (CSV + XLSX) and the summary; wall time, CPU time,
   peak memory (``resource.getrusage``: the parent process and the largest
   worker);
3. **re-run** on the unchanged export (index reused, every verdict reused).

Prints records/s, the ratio to the one-core parsing floor, and the target of
issue 9 (1M people, about 2.5M dose rows, against a 1M-person registry in at
most 60 CPU-seconds end to end, peak memory under 300 MB). ``--score`` adds
precision and recall per injected kind (:mod:`signer.cleaning.evaluate`:
per-code precision is strict, an extra code on another kind's record counts
against it) and the suggestions' precision and recall.
Results go in docs/benchmarks.md, section "Data cleaning".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signer.records import read_records  # noqa: E402

CHILD = r"""
import datetime as dt, json, resource, sys, time
from signer.cleaning.run import CheckOptions, run_checks
a = json.loads(sys.argv[1])
t0 = time.perf_counter()
r = run_checks(CheckOptions(records=a["records"], registry=a["registry"], out_dir=a["out"], now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
                            workers=a["workers"], formats=tuple(a["formats"])))
wall = time.perf_counter() - t0
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                  "rss_parent_mb": me.ru_maxrss / 1024, "rss_worker_mb": kids.ru_maxrss / 1024,
                  "checked": r["totals"]["subjects"]["checked"], "seconds": r["seconds"], "files": r["files"],
                  "registry": r["registry"], "incremental": r["incremental"], "workers": r["workers"],
                  "peak": r["peak_rss_mb"], "input": r.get("input")}))
"""


def ensure_data(data: Path, records: int, seed: int, shape: str = "person-rows", phones: bool = False) -> dict[str, Path]:
    marker = data / "params.json"
    params: dict[str, object] = {"records": records, "seed": seed, "registry_extra": 0.0, "shape": shape}
    if phones:
        params["phones"] = True
    name = "records.csv" if shape == "dose-rows" else "records.jsonl"
    paths = {"records": data / name, "registry": data / "registry.csv", "truth": data / "truth.jsonl"}
    if marker.exists() and json.loads(marker.read_text()) == params and all(p.exists() for p in paths.values()):
        print(f"data: reusing {data}")
        return paths
    shutil.rmtree(data, ignore_errors=True)
    data.parent.mkdir(parents=True, exist_ok=True)
    (data.parent / ".gitignore").write_text("*\n")  # generated data: never committed
    t = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "signer.cleaning", "synth", "--out", str(data), "--records", str(records),
         "--seed", str(seed), "--registry-extra", "0", "--shape", shape, "--headers", "en",
         *([] if phones else ["--no-phones"])],
        check=True, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    marker.write_text(json.dumps(params))
    print(f"data: generated {records:,} records + registry in {time.perf_counter() - t:.1f} s ({data})")
    return paths


def parse_floor(path: Path, sample: int) -> float:
    """Records/s of read_records alone on one core (the shared reader's cost)."""
    t = time.perf_counter()
    n = 0
    for _ in read_records(path):
        n += 1
        if n >= sample:
            break
    return n / (time.perf_counter() - t)


def run_child(paths: dict[str, Path], out: Path, workers: int, formats: list[str], tree: Path = ROOT) -> dict:
    """One full run in a fresh child process, with the code of ``tree`` (this checkout by default)."""
    args = {"records": str(paths["records"]), "registry": str(paths["registry"]), "out": str(out),
            "workers": workers, "formats": formats}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], check=True, cwd=tree,
                          capture_output=True, text=True, env=env)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def outputs(out: Path) -> dict[str, bytes]:
    """Every output of a run, to compare two runs: files byte for byte (an XLSX by its members: the zip
    keeps write times), summary.json without its timings, the results store row by row."""
    import sqlite3
    import zipfile

    got: dict[str, bytes] = {}
    for f in sorted(out.rglob("*")):
        rel = f.relative_to(out)
        if f.is_dir() or rel.parts[0] == "state":
            continue
        if f.suffix == ".xlsx":
            with zipfile.ZipFile(f) as z:
                got.update({f"{rel}!{n}": z.read(n) for n in z.namelist()})
        elif f.name == "summary.json":
            summary = json.loads(f.read_text("utf-8"))
            for key in ("seconds", "peak_rss_mb"):
                summary.pop(key, None)
            summary["registry"].pop("index_seconds", None)
            got[str(rel)] = json.dumps(summary, ensure_ascii=False).encode()
        else:
            got[str(rel)] = f.read_bytes()
    conn = sqlite3.connect(out / "state" / "results.sqlite")
    try:
        rows = conn.execute("SELECT record_id, fingerprint, context, run, codes, fields, suggestion, line, "
                            "registry_name FROM result ORDER BY record_id").fetchall()  # fmt: skip
    finally:
        conn.close()
    got["state/results.sqlite (rows)"] = repr(rows).encode()
    return got


def compare_with(old: Path, paths: dict[str, Path], data: Path, workers: int, formats: list[str]) -> int:
    """Run the code in ``old`` (e.g. ``git archive REV | tar -x -C DIR``) and this checkout on the same
    data, one after the other, and compare every output; exit status 1 when any differs."""
    found = {}
    for label, tree in (("old", old), ("new", ROOT)):
        out = data / f"out-{label}"
        shutil.rmtree(out, ignore_errors=True)
        r = run_child(paths, out, workers, formats, tree)
        print(f"{label}: {tree}: {r['cpu']:.1f} CPU-s, {r['wall']:.1f} s wall, workers {r['workers']}")
        found[label] = outputs(out)
        shutil.rmtree(out, ignore_errors=True)
    a, b = found["old"], found["new"]
    differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    print(f"compared {len(a):,} outputs (files, XLSX members, summary, results store): "
          f"{'all identical' if not differ else f'{len(differ)} differ: ' + ', '.join(differ[:10])}")  # fmt: skip
    return 1 if differ else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workers", type=int, default=0, help="0 = automatic (2 on this machine)")
    ap.add_argument("--formats", default="csv,xlsx")
    ap.add_argument("--data", type=Path, help="data directory (default bench/.data/cleaning-N)")
    ap.add_argument("--score", action="store_true", help="also print precision/recall against the ground truth")
    ap.add_argument("--shape", choices=("person-rows", "dose-rows"), default="person-rows",
                    help="export shape: one person per row (JSONL) or one CSV row per dose")  # fmt: skip
    ap.add_argument("--no-rerun", action="store_true", help="skip the re-run on the unchanged export")
    ap.add_argument("--phones", action="store_true",
                    help="with a phone column (default: none, as in the export header of issue 9)")  # fmt: skip
    ap.add_argument("--compare-with", type=Path, metavar="OLD_TREE",
                    help="run the code in OLD_TREE and this checkout on the same data and compare every output "
                         "(e.g. git archive REV | tar -x -C OLD_TREE); no timing run")  # fmt: skip
    ns = ap.parse_args()
    name = f"cleaning-{ns.shape}-{ns.records}-{ns.seed}" + ("-phones" if ns.phones else "")
    data = ns.data or ROOT / "bench" / ".data" / name
    paths = ensure_data(data, ns.records, ns.seed, ns.shape, ns.phones)
    if ns.compare_with:
        return compare_with(ns.compare_with.resolve(), paths, data, ns.workers, ns.formats.split(","))
    out = data / "out"
    shutil.rmtree(out, ignore_errors=True)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (other jobs skew wall times)")

    floor = parse_floor(paths["records"], min(ns.records, 100_000))
    first = run_child(paths, out, ns.workers, ns.formats.split(","))
    runs = [("full check (index built)", first)]
    if not ns.no_rerun:
        runs.append(("re-run (all reused)", run_child(paths, out, ns.workers, ns.formats.split(","))))
    n = first["checked"]
    print(f"baseline  read_records alone, 1 core: {floor:,.0f} records/s")
    for label, r in runs:
        rate = n / r["wall"]
        print(f"{label:26}: {r['wall']:6.1f} s wall, {r['cpu']:6.1f} s CPU, {rate:,.0f} records/s "
              f"({rate / floor:.2f}x the 1-core parse floor), workers {r['workers']}, "
              f"peak RSS parent {r['rss_parent_mb']:.0f} MB / worker {r['rss_worker_mb']:.0f} MB")  # fmt: skip
        print(f"{'':26}  phases {r['seconds']}, peak RSS by role {r['peak']}, registry "
              f"{r['registry']['rows']:,} people, files {r['files']}")
    target = 60.0 * n / 1_000_000
    rss = max(first["rss_parent_mb"], first["rss_worker_mb"])
    verdict = "met" if first["cpu"] <= target and rss < 300 else "NOT met"
    print(f"target: {n:,} people in <= {target:.1f} CPU-s (60 per million, indexing included) and < 300 MB: "
          f"{first['cpu']:.1f} CPU-s, {rss:.0f} MB: {verdict}; input {first.get('input')}")  # fmt: skip
    if ns.score:
        from signer.cleaning.evaluate import evaluate

        s = evaluate(paths["truth"], out)
        print(f"score: injected {s['injected']:,}, found {s['found']:,} (recall {s['record_recall']:.4f}), "
              f"flagged {s['flagged']:,}, false positives {s['false_positives']} "
              f"(precision {s['record_precision']:.4f}), suggestions {s['suggestions_right']}/"
              f"{s['suggestions_expected']} right, {s['suggestions_wrong']} wrong")  # fmt: skip
        print(f"suggestions: {s['suggestions_made']:,} made, {s['suggestions_right']:,} right, "
              f"{s['suggestions_wrong']} wrong (precision {s['suggestions_right'] / max(1, s['suggestions_made']):.4f}); "
              f"recall {s['suggestions_right'] / max(1, s['suggestions_expected']):.4f} of {s['suggestions_expected']:,} "
              f"ID errors, {s['suggestions_unique_right']:,}/{s['suggestions_unique_expected']:,} of those unique by "
              f"name, date of birth and sex")  # fmt: skip
        print(f"{'kind':28} {'n':>6} {'recall':>7} {'exact':>7} {'precision':>9}  extra codes")
        prec = s["precision_by_code"]
        for k, n_k in s["injected_by_kind"].items():
            code = k if k in prec else {"id_placeholder": "id_missing"}.get(k, k)
            print(f"{k:28} {n_k:6} {s['recall_by_kind'][k]:7.3f} {s['exact_by_kind'][k]:7.3f} "
                  f"{prec.get(code, float('nan')):9.3f}  {s['extra_codes_by_kind'].get(k, {})}")  # fmt: skip
        low = {c: round(v, 4) for c, v in prec.items() if v < 1}
        print(f"codes with precision < 1: {low or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
