"""The scanner page end to end (issue 11): ``python -m verifier serve`` and headless Chromium
with a fake camera (Playwright, scanner/e2e/page.mjs).

The camera plays a .y4m made here from our signed QR images: a valid passport gives green (VN
profile primary, verifier/data/rules served with --rules) and red under the booster profile, a
tampered one (a flipped signature byte) red with ``bad_signature``, one whose UVCI the trust
list revokes red with ``uvci_revoked``. Then the page, loaded once with the network, is
reloaded with the network cut (service worker) and verifies again, from the keyboard-wedge
field and from the camera. No Content-Security-Policy violation on the way.

Screenshots go to docs/ when ``SCANNER_SCREENSHOTS=1`` (docs/scanner-*.png).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scanner.fake_camera import CHROMIUM, ROOT, serve_page, write_material

#: The page verifies with the browser's clock: certificates are made around the real now.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture()
def material(tmp_path: Path) -> dict[str, object]:
    return {"dir": tmp_path, "texts": write_material(tmp_path, NOW)}


@pytest.fixture()
def server(material: dict[str, object]) -> Iterator[str]:
    folder = material["dir"]
    assert isinstance(folder, Path)
    with serve_page(folder) as url:
        yield url


def test_server_headers_and_files(server: str) -> None:
    import urllib.error
    import urllib.request

    with urllib.request.urlopen(server) as res:
        csp = res.headers["Content-Security-Policy"]
        body = res.read().decode()
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "unsafe-inline" not in csp
    assert "<script" in body and "<script>" not in body  # no inline script
    with urllib.request.urlopen(server + "app/precache.json") as res:
        files = json.loads(res.read())["files"]
    assert "/vendor/zxing/reader/zxing_reader.wasm" in files and "/src/verify/hc1.js" in files
    for bad in (
        "../pyproject.toml",
        "package.json",
        "node_modules/ajv/package.json",
        "%2e%2e/README.md",
    ):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server + bad)
        assert err.value.code == 404


def test_page_with_fake_camera(material: dict[str, object], server: str) -> None:
    folder = material["dir"]
    texts = material["texts"]
    assert isinstance(folder, Path) and isinstance(texts, dict)
    shots = os.environ.get("SCANNER_SCREENSHOTS") == "1"
    config = {
        "url": server,
        "chromium": CHROMIUM,
        "lang": "vi",
        "scenarios": [
            {
                "name": name,
                "y4m": str(folder / f"{name}.y4m"),
                **({"screenshot": str(ROOT / "docs" / f"scanner-{name}.png")} if shots else {}),
            }
            for name in ("valid", "tampered", "revoked")
        ]
        + [{"name": "booster-missing", "y4m": str(folder / "valid.y4m"), "profile": "booster"}],
        "offline": {"y4m": str(folder / "valid.y4m"), "text": texts["valid"]},
    }
    proc = subprocess.run(
        ["node", str(ROOT / "scanner" / "e2e" / "page.mjs"), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    got = out["scenarios"]
    assert got["valid"]["valid"] is True, got["valid"]
    assert "HỢP LỆ" in got["valid"]["title"] and "Nguyễn" in got["valid"]["text"]
    assert got["tampered"]["valid"] is False and got["tampered"]["reasons"] == ["bad_signature"], (
        got
    )
    assert got["revoked"]["valid"] is False and got["revoked"]["reasons"] == ["uvci_revoked"], got
    assert "thu hồi" in got["revoked"]["text"]
    # the VN booster profile (verifier/data/rules, served with --rules): dose 2 of 2 is not enough
    assert got["booster-missing"]["valid"] is False, got["booster-missing"]
    assert got["booster-missing"]["reasons"] == ["rule_failed"], got["booster-missing"]
    assert "VR-VN-0003" in got["booster-missing"]["text"]
    offline = out["offline"]
    assert offline.get("controlled") is True, (offline, out["console"][-20:], out["csp_violations"])
    assert offline["wedge"]["valid"] is True and offline["camera"]["valid"] is True, offline
    assert out["csp_violations"] == []


def test_static_bundle_on_a_plain_web_server(material: dict[str, object], tmp_path: Path) -> None:
    """`serve --bundle DIR` writes the page as files; Python's plain http.server (no CSP
    header: the page's meta tag carries it) serves them, and the page verifies by camera and,
    after one load, offline."""
    folder = material["dir"]
    texts = material["texts"]
    assert isinstance(folder, Path) and isinstance(texts, dict)
    bundle = tmp_path / "bundle"
    subprocess.run(
        [sys.executable, "-m", "verifier", "serve", "--bundle", str(bundle),
         "--trust", str(folder / "trustlist.cbor"), "--trust", str(folder / "csca.pem"),
         "--rules", str(ROOT / "verifier" / "data" / "rules")],
        cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    assert (bundle / "index.html").is_file() and (
        bundle / "vendor/zxing/reader/zxing_reader.wasm"
    ).is_file()
    assert 'http-equiv="Content-Security-Policy"' in (bundle / "index.html").read_text("utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(bundle), "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (
            proc.stdout.readline()
        )  # "Serving HTTP on 127.0.0.1 port N (http://127.0.0.1:N/) ..."
        url = line.split("(", 1)[1].split(")", 1)[0]
        config = {
            "url": url,
            "chromium": CHROMIUM,
            "lang": "en",
            "scenarios": [{"name": "valid", "y4m": str(folder / "valid.y4m")}],
            "offline": {"y4m": str(folder / "valid.y4m"), "text": texts["tampered"]},
        }
        run = subprocess.run(
            ["node", str(ROOT / "scanner" / "e2e" / "page.mjs"), json.dumps(config)],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["scenarios"]["valid"]["valid"] is True, out["scenarios"]
    assert "VALID" in out["scenarios"]["valid"]["title"]
    offline = out["offline"]
    assert offline.get("controlled") is True, (offline, out["console"][-10:])
    assert offline["wedge"]["reasons"] == ["bad_signature"] and offline["camera"]["valid"] is True
    assert out["csp_violations"] == []
