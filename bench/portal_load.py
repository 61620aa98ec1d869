"""Load on the citizen portal's passport download, against a static-file baseline.

    python bench/portal_load.py [--connections 200] [--duration 15] [--rounds 2] [--workers 1]

Set-up: synthetic records with phones, a real ledger batch with signed PDFs,
``python -m signer serve`` (uvicorn) on loopback, and one citizen signed in
through the real flow (look-up, the code from the development outbox). Then
wrk (C, 2 threads) downloads that citizen's PDF through the portal
(session, ownership check, file checked against the ledger's SHA-256, a row in
the citizen's access log) and, in the same run, the same PDF from a plain
static-file server under the same uvicorn (bench/portal_static.py), in
alternating rounds. Two loads:

- saturation: N connections with no pause (closed loop): requests/s is the
  throughput; the ratio portal/static is the issue's ">= 0.5x" figure;
- citizens: N connections each pausing 0.5-1.5 s between downloads
  (bench/wrk-think.lua), about N requests/s offered: p50/p99 latency is the
  issue's "p99 under 100 ms" figure at 200 concurrent clients.

Prints each round and the medians; any non-2xx response fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.signing_setup import NOW, setup  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"server exited: see {log}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"server did not start: see {log}")


class Browser:
    """Just enough of a browser for the sign-in: cookies by hand (the portal's are
    Secure, and this runs over plain HTTP on loopback), hidden CSRF fields."""

    def __init__(self, base: str) -> None:
        self.base, self.cookies = base, {}  # type: ignore[var-annotated]
        self.client = httpx.Client(base_url=base, follow_redirects=False, timeout=30)

    def _keep(self, response: httpx.Response) -> httpx.Response:
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response

    def header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items() if v)

    def get(self, path: str) -> httpx.Response:
        return self._keep(self.client.get(path, headers={"cookie": self.header()}))

    def post(self, path: str, form: dict[str, str]) -> httpx.Response:
        return self._keep(self.client.post(path, data=form, headers={"cookie": self.header()}))

    @staticmethod
    def csrf(page: httpx.Response) -> str:
        match = re.search(r'name="csrf" value="([^"]+)"', page.text)
        if not match:
            sys.exit(f"no CSRF field on {page.url}")
        return match.group(1)


def sign_in(base: str, outbox: Path, id_number: str, birth_date: str) -> tuple[str, str]:
    """(download path, Cookie header) of the citizen's first PDF."""
    b = Browser(base)
    page = b.get("/")
    r = b.post("/lookup", {"csrf": b.csrf(page), "id_number": id_number, "birth_date": birth_date})
    if r.status_code != 303:
        sys.exit(f"look-up answered {r.status_code}")
    code = ""
    for _ in range(100):  # the sender runs in the background
        if outbox.exists() and outbox.read_text("utf-8").strip():
            code = re.findall(r"\b(\d{6})\b", json.loads(outbox.read_text("utf-8").splitlines()[-1])["text"])[0]
            break
        time.sleep(0.05)
    if not code:
        sys.exit("no code in the development outbox")
    page = b.get("/code")
    r = b.post("/code", {"csrf": b.csrf(page), "code": code})
    if r.status_code != 303 or "/passport" not in r.headers.get("location", ""):
        sys.exit(f"code answered {r.status_code}")
    page = b.get("/passport")
    links = re.findall(r'href="(/passport/[0-9a-f]{32}/pdf)"', page.text)
    if not links:
        sys.exit("no PDF link on the passport page")
    check = b.get(links[0])
    if check.status_code != 200 or not check.content.startswith(b"%PDF-"):
        sys.exit(f"download answered {check.status_code}")
    return links[0], b.header()


WRK_LINE = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def wrk(url: str, *, connections: int, duration: int, cookie: str | None, think: bool) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s"]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    if think:
        command += ["-s", str(ROOT / "bench" / "wrk-think.lua")]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    if os.environ.get("VNDCC_BENCH_RAW"):
        print(out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad:
        sys.exit(f"{bad.group(1)} non-2xx responses from {url}:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    latency = {50: 0.0, 99: 0.0} | {int(p): float(v) * scale[u] for p, v, u in WRK_LINE.findall(out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return {"rps": rps, "p50": latency[50], "p99": latency[99], "socket_errors": bool(errors)}


def ratio(a: float, b: float) -> str:
    """a/b as "1.23x"; "n/a" when the baseline finished no request (a run shorter than the
    think time: `--duration 1` with citizens pausing up to 1.5 s)."""
    return f"{a / b:.2f}x" if b > 0 else "n/a (the baseline finished no request; use a longer --duration)"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--connections", type=int, default=200)
    ap.add_argument("--duration", type=int, default=15, help="seconds per wrk run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn workers, for both servers")
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: bash scripts/setup.sh --dev installs it (Debian package wrk)")
    work = Path(tempfile.mkdtemp(prefix="vndcc-portal-load-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        common, env, _count = setup(work, args.records)
        data = work / "portal"
        ledger = str(data / "ledger.sqlite")
        py = [sys.executable, "-m", "signer"]
        subprocess.run([*py, "batch", str(work / "in.jsonl"), "--out", str(work / "out"), "--ledger", ledger,
                        "--centre", "Bench centre", "--pdf", "--crl", str(work / "crl.der"), "--progress", "none",
                        *common], env=env, cwd=ROOT, check=True, capture_output=True)  # fmt: skip
        people = (json.loads(line) for line in (work / "in.jsonl").read_text("utf-8").splitlines())
        person = next(p for p in people if p.get("phone") and len(p["date_of_birth"]) == 10)
        pdf = next((work / "out").glob("*.pdf"))
        static_dir = work / "static"
        static_dir.mkdir()
        shutil.copy(pdf, static_dir / "passport.pdf")
        port, static_port = free_port(), free_port()
        log = work / "serve.log"
        with log.open("wb") as fh:
            procs.append(subprocess.Popen(
                [*py, "serve", "--code-sender", "dev-file", "--ledger", ledger, "--data", str(data), "--port", str(port),
                 "--workers", str(args.workers)],
                env=env, cwd=ROOT, stdout=fh, stderr=fh))  # fmt: skip
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "portal_static:app",
                 "--port", str(static_port), "--workers", str(args.workers), "--log-level", "warning",
                 "--no-access-log"],
                env={**env, "VNDCC_BENCH_STATIC": str(static_dir)}, cwd=ROOT, stdout=fh, stderr=fh))  # fmt: skip
        base, static_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{static_port}"
        wait_up(base + "/", procs[0], log)
        wait_up(static_base + "/s/passport.pdf", procs[1], log)
        path, cookie = sign_in(base, data / "outbox.jsonl", person["id_number"], person["date_of_birth"])
        size = pdf.stat().st_size
        print(f"PDF {size} bytes; {args.connections} connections, {args.duration} s per run, "
              f"{args.workers} uvicorn worker(s) each, {os.cpu_count()} CPUs, wrk -t2 on the same machine; "
              f"signing clock {NOW.date()}")  # fmt: skip
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for r in range(args.rounds):
            for load, think in (("saturation", False), ("citizens", True)):
                for name, url, ck in (("static", static_base + "/s/passport.pdf", None),
                                      ("portal", base + path, cookie)):
                    res = wrk(url, connections=args.connections, duration=args.duration, cookie=ck, think=think)
                    results.setdefault((load, name), []).append(res)
                    print(f"  round {r} {load:10} {name:6}: {res['rps']:7.0f} req/s  p50 {res['p50']:6.1f} ms  "
                          f"p99 {res['p99']:6.1f} ms", flush=True)  # fmt: skip
        print("medians:")
        for load in ("saturation", "citizens"):
            med = {name: {k: statistics.median(x[k] for x in results[(load, name)]) for k in ("rps", "p50", "p99")}
                   for name in ("static", "portal")}  # fmt: skip
            print(f"  {load:10}: portal {med['portal']['rps']:.0f} req/s (p50 {med['portal']['p50']:.1f} ms, "
                  f"p99 {med['portal']['p99']:.1f} ms) vs static {med['static']['rps']:.0f} req/s "
                  f"(p50 {med['static']['p50']:.1f} ms, p99 {med['static']['p99']:.1f} ms): "
                  f"throughput ratio {ratio(med['portal']['rps'], med['static']['rps'])}")  # fmt: skip
        return 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"work folder kept: {work}")


if __name__ == "__main__":
    sys.exit(main())
