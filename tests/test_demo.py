"""The README's main job: `python -m signer demo` end to end in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import zxingcpp
from PIL import Image

QR_ONLY = zxingcpp.BarcodeFormat.QRCode

ROOT = Path(__file__).resolve().parents[1]


def test_demo_runs_the_whole_job(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    proc = subprocess.run(
        [sys.executable, "-m", "signer", "demo", "--out", str(out), "--synthetic", "300"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    # 7 of the 8 example records pass the registry checks; one goes to the commune police
    manifest = [json.loads(x) for x in (out / "passports" / "manifest.jsonl").read_text().splitlines()]
    assert len(manifest) == 7
    recon = list((out / "checks" / "reconciliation").rglob("*.csv"))
    assert len(recon) == 1 and "HCM-000008" in recon[0].read_text("utf-8-sig")
    for entry in manifest:
        rid = entry["record_id"]
        assert sorted(entry["files"]) == sorted([f"{rid}.hc1.txt", f"{rid}.pdf", f"{rid}.png"])
        hc1 = (out / "passports" / f"{rid}.hc1.txt").read_text().strip()
        # QR codes only, as the verifier reads them: a random HC1 now and then also
        # reads as a stray symbol of another format (CI: a 6-character "D$.$9A")
        decoded = zxingcpp.read_barcodes(Image.open(out / "passports" / f"{rid}.png"), formats=QR_ONLY)
        assert [b.text for b in decoded] == [hc1]  # PNG, PDF and text carry the same certificate
    assert proc.stdout.count(": valid") == 14  # every PNG and PDF verified
    assert proc.stdout.count("valid (PAdES B-LT)") == 7  # signature timestamp from the national TSA
    assert "signed 0 of 8 record(s)" in proc.stdout  # the raw export is refused: not verified
    assert not list((out / "refused").glob("*.hc1.txt"))
    assert "edited date of birth: invalid, failed at signature" in proc.stdout
    assert "tampered PDF: invalid" in proc.stdout
    assert (out / "synthetic" / "checks" / "summary.json").is_file()
    # the random demo passphrases never reach the output
    assert "VNDCC_CSCA_PASSPHRASE=" not in proc.stdout + proc.stderr


def test_demo_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run(
        [sys.executable, "-m", "signer", "demo", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "not a demo output directory" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
