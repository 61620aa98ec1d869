"""The citizen portal as deployed: `python -m signer serve` (real uvicorn) on a
free loopback port over a copy of the demo ledger, and headless Chromium
(tests/portal/e2e/citizen.mjs) walking look-up -> code from the development
outbox -> passport -> PDF, which `python -m verifier pdf` then finds valid;
the enumeration and lockout cases in the browser; uvicorn's access log holds
paths only.

Screenshots go to docs/screenshots/portal-*.png when PORTAL_SCREENSHOTS=1.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.logscan import server_log
from tests.portal.conftest import CENTRE, DemoBatch, copy_ledger

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OWNER = {"id": "079185001234", "dob": "14/03/1985", "phone": "+84900000001"}


@dataclass(frozen=True)
class Server:
    url: str
    data: Path
    ledger: Path
    log: Path
    claim_code: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture()
def server(demo_batch: DemoBatch, tmp_path: Path) -> Iterator[Server]:
    from signer.cli import main

    ledger = copy_ledger(demo_batch, tmp_path / "ledger")
    slips = tmp_path / "claim-slips.csv"
    assert main(["portal", "claim-codes", "--ledger", str(ledger), "--centre", CENTRE, "--record-id", "HCM-000001",
                 "--out", str(slips)]) == 0
    with slips.open(encoding="utf-8", newline="") as fh:
        claim_code = next(csv.DictReader(fh))["claim_code"]
    limits = tmp_path / "limits.json"
    # no look-up cool-down: the walk looks up the owner's ID again at once (the cool-down: test_citizen_review)
    limits.write_text(json.dumps({"lock_failures": 5, "otp_attempts": 5, "resend_seconds": 0}))
    port = _free_port()
    log = server_log("portal-citizen")
    with log.open("ab") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signer", "serve", "--code-sender", "dev-file", "--ledger", str(ledger), "--data", str(tmp_path / "data"),
             "--port", str(port), "--limits", str(limits)],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as res:
                    assert res.status == 200
                break
            except OSError:
                assert proc.poll() is None, log.read_text("utf-8", "replace")[-2000:]
                assert time.monotonic() < deadline, "the portal did not start within 60 s"
                time.sleep(0.2)
        yield Server(url=url, data=tmp_path / "data", ledger=ledger, log=log, claim_code=claim_code)
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_real_server_headers_and_cookies(server: Server) -> None:
    with urllib.request.urlopen(server.url) as res:
        headers = res.headers
        body = res.read().decode("utf-8")
    assert "unsafe-inline" not in headers["content-security-policy"]
    cookie = headers["set-cookie"].lower()
    assert cookie.startswith("__host-vndcc_pre=") and "httponly" in cookie and "secure" in cookie and "samesite=strict" in cookie
    assert '<html lang="vi">' in body and "<script" not in body
    assert "server" not in {k.lower() for k in headers}


def test_browser_walk_enumeration_lockout_and_the_pdf_verifies(server: Server, demo_batch: DemoBatch,
                                                               tmp_path: Path) -> None:
    shots = ROOT / "docs" / "screenshots" if os.environ.get("PORTAL_SCREENSHOTS") == "1" else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    download = tmp_path / "download.pdf"
    config = {
        "url": server.url, "chromium": CHROMIUM, "outbox": str(server.data / "outbox.jsonl"),
        "download": str(download), "shots": str(shots) if shots else None,
        "owner": OWNER,
        "unknown": {"id": "079999999999", "dob": "14/03/1985"},
        "wrongDob": {"id": OWNER["id"], "dob": "15/03/1985"},
        "locked": {"id": OWNER["id"], "dob": OWNER["dob"]},
        "attempts": 5,
        "claim": {"id": OWNER["id"], "dob": OWNER["dob"], "code": server.claim_code, "phone": "0912 345 678",
                  "e164": "+84912345678"},
    }
    proc = subprocess.run(["node", str(ROOT / "tests" / "portal" / "e2e" / "citizen.mjs"), json.dumps(config)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    out = json.loads(proc.stdout)
    steps = out["steps"]
    # the owner's walk
    assert steps["owner_lookup"]["status"] == 200 and steps["owner_lookup"]["url"].endswith("/code")
    assert steps["passport"]["url"].endswith("/passport") and "Còn hiệu lực" in steps["passport"]["text"]
    assert steps["passport"]["qr_loaded"] is True
    assert "Valid" in steps["passport_en"]["text"]
    assert "Tải PDF" in steps["access"]["text"] and "Chrome" in steps["access"]["text"]
    assert steps["download"]["suggested"].startswith("vaccine-passport-")
    assert download.read_bytes() == (demo_batch.out / "HCM-000001.pdf").read_bytes()
    trust = [a for t in demo_batch.trust for a in ("--trust", str(t))]
    verdict = subprocess.run([sys.executable, "-m", "verifier", "pdf", *trust, "--json", str(download)],
                             capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert verdict.returncode == 0, verdict.stdout[-2000:] + verdict.stderr[-2000:]
    assert json.loads(verdict.stdout)["valid"] is True
    assert steps["after_signout"]["status"] == 401
    # enumeration: the same page and status for an unknown ID, a wrong date of birth and the owner
    for name in ("unknown", "wrong_dob"):
        assert steps[name]["status"] == steps["owner_lookup"]["status"], name
        assert steps[name]["url"] == steps["owner_lookup"]["url"], name
        assert steps[name]["text"] == steps["owner_lookup"]["text"], name
        assert steps[name]["wrong_status"] == 400
    assert steps["unknown"]["wrong_text"] == steps["wrong_dob"]["wrong_text"]
    # lockout, then the claim code undoes it and the new phone gets the code
    assert steps["lock_wrong"] == [400] * 5
    assert steps["locked"]["status"] == 429 and "mã nhận" in steps["locked"]["text"]
    assert steps["claim"]["url"].endswith("/code")
    assert steps["claim_passport"]["url"].endswith("/passport")
    assert out["csp_violations"] == []
    # uvicorn's access log: paths only (personal data travels in POST bodies)
    text = server.log.read_text("utf-8", "replace")
    assert '"POST /lookup HTTP/1.1" 303' in text and '"GET /passport HTTP/1.1" 200' in text
    for value in (OWNER["id"], "079185001234", OWNER["phone"], "0912345678", "+84912345678", server.claim_code):
        assert value not in text
