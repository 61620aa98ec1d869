"""Speed of the checkpoint scanner page (issue 11): scan-to-verdict from a camera frame
against the QR decode alone, in headless Chromium.

    .venv/bin/python bench/scanner.py [--frames 200] [--width 1280 --height 720]

Set-up (tests/scanner/fake_camera.py, shared with tests/scanner/test_page.py): fresh keys, a
signed trust list and the demo certificate (dose 2 of 2, ES256) signed now; its QR as the one
frame of a .y4m fake camera; ``python -m verifier serve`` on a free loopback port. Then
``node scanner/e2e/bench.mjs`` drives Debian's /usr/bin/chromium (playwright-core) with
``--use-file-for-fake-video-capture``: per frame, grab (drawImage + getImageData), decode
(zxing-wasm in the page's worker) and verify (the page's verifier, trust list from the
server); decode alone and scan-to-verdict (grab + decode + verification) are timed in the
same loop, so the ratio compares the two on the same frames.

Targets: scan-to-verdict median under 150 ms and under 2x the decode alone (medians).
Exit 0 when both are met and every frame verified valid, 1 otherwise, 2 when node, the npm
packages or chromium are missing (``bash scripts/setup.sh --dev``) or the run failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.scanner.fake_camera import CHROMIUM, missing_tools, serve_page, write_material  # noqa: E402

TARGET_MS = 150.0
TARGET_RATIO = 2.0


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200, help="frames timed (default 200)")
    parser.add_argument("--width", type=int, default=1280, help="fake camera width (default 1280)")
    parser.add_argument("--height", type=int, default=720, help="fake camera height (default 720)")
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1")

    missing = missing_tools()
    if missing:
        print(f"bench/scanner.py: missing {', '.join(missing)}: run bash scripts/setup.sh --dev", file=sys.stderr)
        return 2

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the page verifies with the browser's clock
    with tempfile.TemporaryDirectory(prefix="bench-scanner-") as tmp:
        folder = Path(tmp)
        texts = write_material(folder, now, width=args.width, height=args.height)
        with serve_page(folder) as url:
            config = {"url": url, "chromium": CHROMIUM, "y4m": str(folder / "valid.y4m"), "frames": args.frames}
            try:
                proc = subprocess.run(
                    ["node", str(ROOT / "scanner" / "e2e" / "bench.mjs"), json.dumps(config)],
                    capture_output=True, text=True, cwd=ROOT, timeout=120 + 5 * args.frames, check=False,
                )  # fmt: skip
            except subprocess.TimeoutExpired:
                print("bench/scanner.py: scanner/e2e/bench.mjs timed out", file=sys.stderr)
                return 2
    if proc.returncode != 0:
        print(f"bench/scanner.py: scanner/e2e/bench.mjs failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}",
              file=sys.stderr)  # fmt: skip
        return 2
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    decode, total = result["decode"], result["scan_to_verdict"]
    ratio = total["median"] / decode["median"] if decode["median"] > 0 else float("inf")
    all_valid = result["valid"] == result["frames"]
    fast = total["median"] < TARGET_MS
    close = ratio < TARGET_RATIO

    chromium = _version([CHROMIUM, "--version"])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"scanner page speed (issue 11): {result['frames']} frames of a {result['width']}x{result['height']} "
          f"fake camera, one HC1 QR of {len(texts['valid'])} characters (ES256)")  # fmt: skip
    print(f"  {chromium} ({CHROMIUM}, headless), node {_version(['node', '--version'])}, "
          f"{os.cpu_count()} cores, load average {load}")  # fmt: skip
    print(f"  verdicts        : {result['valid']} of {result['frames']} frames valid")
    print(f"  decode          : median {decode['median']:6.1f} ms, p95 {decode['p95']:6.1f} ms"
          "  (zxing-wasm in the page's worker, from an ImageData)")  # fmt: skip
    print(f"  scan-to-verdict : median {total['median']:6.1f} ms, p95 {total['p95']:6.1f} ms"
          "  (frame grab + decode + verification)")  # fmt: skip
    print(f"  ratio scan-to-verdict / decode (medians): {ratio:.2f}x")
    print(f"  target: scan-to-verdict median < {TARGET_MS:.0f} ms: {'met' if fast else 'MISSED'}")
    print(f"  target: scan-to-verdict < {TARGET_RATIO:.0f}x the decode alone: {'met' if close else 'MISSED'}")
    if not all_valid:
        print("  not every frame gave a valid verdict: the figures do not time a verification")
    return 0 if fast and close and all_valid else 1


if __name__ == "__main__":
    sys.exit(main())
