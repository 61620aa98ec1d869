"""Signed rule sets and the issuing authority on the scanner page, in headless Chromium
(scanner/e2e/steps.mjs): a signed rule set imported on the page is verified there (WebCrypto)
and its age shown; a tampered one is refused with a clear message and changes nothing; an
old one is applied with a warning, a too-old one and an older sequence number refused. The
authority's files come through ``verifier serve --authority-url`` from a local HTTP server
started here on loopback (the page's CSP allows its own origin only)."""

from __future__ import annotations

import datetime as dt
import functools
import http.server
import json
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.verifier import signed_rules

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: The page verifies with the browser's clock: the material is made around the real now.
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture()
def material(tmp_path: Path) -> signed_rules.Material:
    return signed_rules.make(tmp_path / "material", NOW)


@pytest.fixture()
def authority(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The issuing authority: a plain HTTP server on 127.0.0.1 serving an empty folder (the
    tests put trustlist.cbor and rules.cbor there)."""
    folder = tmp_path / "authority"
    folder.mkdir()
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()


def _publish(material: signed_rules.Material, folder: Path) -> None:
    """The authority publishes trust list seq 2 and rule set seq 5."""
    shutil.copy(material.folder / "trustlist-2.cbor", folder / "trustlist.cbor")
    shutil.copy(material.files["rules-5"], folder / "rules.cbor")


def _serve(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", "serve", "--port", "0", *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "http://127.0.0.1:" in line, line + (proc.stderr.read() if proc.stderr else "")
    return proc, line.split("on ", 1)[1].split(" ", 1)[0]


@pytest.fixture()
def page_server(material: signed_rules.Material, authority: tuple[str, Path]) -> Iterator[str]:
    proc, served = _serve(
        "--trust", str(material.trust_list), "--trust", str(material.csca),
        "--authority-url", authority[0],
    )  # fmt: skip
    try:
        yield served
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _steps(url: str, steps: list[dict[str, object]], lang: str = "en") -> dict[str, object]:
    config = {"url": url, "chromium": CHROMIUM, "lang": lang, "steps": steps}
    proc = subprocess.run(
        ["node", str(ROOT / "scanner" / "e2e" / "steps.mjs"), json.dumps(config)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, object] = json.loads(proc.stdout)
    return out


def test_signed_rule_sets_on_the_page(material: signed_rules.Material, page_server: str) -> None:
    f = material.files
    out = _steps(
        page_server,
        [
            {"do": "status"},
            {"do": "import-rules", "file": str(f["tampered"])},
            {"do": "wedge", "text": material.qr},
            {"do": "import-rules", "file": str(f["rules-1"])},
            {"do": "wedge", "text": material.qr},
            {"do": "wedge", "text": material.qr, "profile": "booster"},
            {"do": "import-rules", "file": str(f["foreign"])},
            {"do": "import-rules", "file": str(f["old"])},
            {"do": "import-rules", "file": str(f["rules-2"])},
            {"do": "import-rules", "file": str(f["too-old"])},
            {"do": "import-rules", "file": str(material.trust_list)},
        ],
    )
    steps = out["steps"]
    assert isinstance(steps, list) and all("error" not in s for s in steps), steps
    start, tampered, plain, first, valid, booster, foreign, old, rollback, too_old, tl = steps
    assert start["status"]["rules"].startswith("No rule set"), start
    # tampered: refused with the reason, nothing applied, verdicts without rules
    assert tampered["status"]["rules_state"] == "error"
    assert "Rule set refused" in tampered["status"]["rules"]
    assert "rule-set signature does not verify" in tampered["status"]["rules"], tampered
    assert tampered["status"]["profiles"] == []
    assert plain["verdict"]["valid"] is True
    # a good one: verified in the browser, age and sequence shown, profiles offered, applied
    s = first["status"]
    assert s["rules_state"] == "ok" and s["rules_seq"] == "1" and s["rules_age"] == "0", s
    assert "Signed rule set VN #1, issued 0 days ago" in s["rules"]
    assert set(s["profiles"]) == {"primary", "booster", "vaccinated-only"}
    assert valid["verdict"]["valid"] is True
    assert booster["verdict"]["valid"] is False and booster["verdict"]["reasons"] == ["rule_failed"]
    assert "VR-VN-0003" in booster["verdict"]["text"]
    # another CSCA's signer: refused, the accepted set stays
    assert "does not chain to a pinned CSCA" in foreign["status"]["rules"]
    assert foreign["status"]["rules_state"] == "error"
    # 20 days old: used, with a warning (the trust list's limits: warn 14, refuse 60)
    s = old["status"]
    assert s["rules_state"] == "warn" and s["rules_seq"] == "3" and s["rules_age"] == "20", s
    assert "Rule set is 20 days old: update it soon" in s["rules"]
    assert "older than the accepted 3 (rollback refused)" in rollback["status"]["rules"], rollback
    assert "is 90 days old, more than the 60 accepted" in too_old["status"]["rules"], too_old
    assert "not a signed rule set" in tl["status"]["rules"]
    assert out["csp_violations"] == []


def test_import_from_the_issuing_authority(
    material: signed_rules.Material, authority: tuple[str, Path], page_server: str
) -> None:
    url, folder = authority
    out = _steps(page_server, [{"do": "status"}, {"do": "authority"}])
    start, update = out["steps"]  # type: ignore[misc]
    assert start["status"]["authority_button"] is True
    assert start["status"]["authority"] == f"Issuing authority: {url}"
    assert "#1" in start["status"]["trust"]
    # nothing published yet: the update fails, and says why
    assert update["status"]["authority"].startswith(f"Update from {url} failed"), update
    assert "HTTP 404" in update["status"]["authority"]
    _publish(material, folder)
    out = _steps(page_server, [{"do": "authority"}, {"do": "wedge", "text": material.qr}])
    update, scan = out["steps"]  # type: ignore[misc]
    s = update["status"]
    assert s["authority"] == f"Updated from {url}: trustlist.cbor, rules.cbor", s
    assert "#2" in s["trust"] and s["rules_seq"] == "5" and s["rules_state"] == "ok", s
    assert "Signed rule set VN #5, issued 0 days ago" in s["rules"]
    assert scan["verdict"]["valid"] is True
    # a tampered rule set from the authority (or its mirror) is refused; seq 5 stays
    (folder / "rules.cbor").write_bytes(signed_rules.tamper(material.files["rules-5"].read_bytes()))
    out = _steps(page_server, [{"do": "authority"}])
    (update,) = out["steps"]  # type: ignore[misc]
    s = update["status"]
    assert "failed" in s["authority"] and "rule-set signature does not verify" in s["authority"], s
    assert out["csp_violations"] == []


def test_authority_mirror_without_a_browser(
    material: signed_rules.Material, authority: tuple[str, Path]
) -> None:
    """The server hands out the authority's bytes unchanged, says why when it cannot, and
    serves nothing else under /authority/."""
    url, folder = authority
    _publish(material, folder)
    proc, served = _serve("--trust", str(material.csca), "--authority-url", url)
    try:
        with urllib.request.urlopen(served + "authority/index.json") as res:
            assert json.loads(res.read())["url"] == url
        with urllib.request.urlopen(served + "authority/rules.cbor") as res:
            assert res.read() == (folder / "rules.cbor").read_bytes()
            assert "connect-src 'self'" in res.headers["Content-Security-Policy"]
        (folder / "rules.cbor").unlink()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(served + "authority/rules.cbor")
        assert err.value.code == 502
        assert b"cannot fetch from the issuing authority" in err.value.read()
        for other in ("authority/csca.pem", "authority/../trust/index.json"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(served + other)
            assert err.value.code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    bad = subprocess.run(
        [sys.executable, "-m", "verifier", "serve", "--authority-url", "file:///etc/passwd"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "not an http(s) URL" in bad.stderr and "Traceback" not in bad.stderr


def test_a_dropped_pdf_says_what_is_not_checked(
    material: signed_rules.Material, page_server: str, tmp_path: Path
) -> None:
    """The page does not check PDF passports (docs/scanner.md): for a PDF chosen or dropped,
    recognised by its %PDF- header whatever its name, it says so and what is left unchecked,
    and shows no verdict."""
    from reportlab.pdfgen import canvas

    pdf = tmp_path / "passport.pdf"
    c = canvas.Canvas(str(pdf))
    c.drawString(72, 720, "Vaccine passport")
    c.save()
    steps = [
        {"do": "photo", "file": str(pdf)},
        {"do": "drop", "file": str(pdf), "name": "scan-0001"},
    ]
    en = _steps(page_server, steps)["steps"]
    vi = _steps(page_server, steps[:1], lang="vi")["steps"]
    for step in [*en, *vi]:  # type: ignore[union-attr]
        s = step["status"]
        assert "error" not in step and s["pdf"] == "unchecked" and s["verdict_shown"] is False, step
        assert s["scan_state"] == "warn" and "python -m verifier pdf" in s["scan"]
    photo, drop = en  # type: ignore[misc]
    assert photo["status"]["scan"].startswith("passport.pdf: a PDF passport is NOT checked by this page")
    for part in ("signature (PAdES)", "timestamp", "revocation data", "agree with the QR"):
        assert part in photo["status"]["scan"]
    assert drop["status"]["scan"].startswith("scan-0001: a PDF passport is NOT checked")
    assert "KHÔNG kiểm tra hộ chiếu PDF" in vi[0]["status"]["scan"]  # type: ignore[index]


def test_a_photo_of_an_aztec_code_verifies(
    material: signed_rules.Material, page_server: str, tmp_path: Path
) -> None:
    """The page reads an Aztec code as verifier/image.py does (hcert's FAQ: "Aztec or QR";
    the official IE vectors ship Aztec pictures): the same HC1 text, the same green verdict.
    A picture with neither symbol still says no QR code."""
    import zxingcpp
    from PIL import Image

    from verifier.image import read_qr_text

    aztec = tmp_path / "aztec.png"
    symbol = zxingcpp.create_barcode(material.qr, zxingcpp.BarcodeFormat.Aztec)
    Image.fromarray(zxingcpp.write_barcode_to_image(symbol, scale=4)).save(aztec)
    assert read_qr_text(aztec).text == material.qr
    blank = tmp_path / "blank.png"
    Image.new("L", (300, 300), 255).save(blank)
    out = _steps(page_server, [{"do": "photo", "file": str(aztec)}, {"do": "photo", "file": str(blank)}])
    steps = out["steps"]
    assert isinstance(steps, list) and all("error" not in s for s in steps), steps
    assert steps[0]["verdict"]["valid"] is True, steps[0]
    assert steps[1]["verdict"]["valid"] is False and steps[1]["verdict"]["reasons"] == ["no_qr_code"], steps[1]
    assert out["csp_violations"] == []


def test_a_page_with_another_code_beside_the_certificate(
    material: signed_rules.Material, page_server: str, tmp_path: Path
) -> None:
    """A photo of a page with a URL QR code left of the certificate's: the HC1 one is
    verified, in the browser and by verifier/image.py, whichever the decoder finds first."""
    import zxingcpp
    from PIL import Image

    from verifier.image import read_qr_text

    def picture(text: str) -> Image.Image:
        symbol = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode)
        return Image.fromarray(zxingcpp.write_barcode_to_image(symbol, scale=4))

    url, cert = picture("https://example.gov.vn/booking/12345"), picture(material.qr)
    page = Image.new("L", (url.width + cert.width + 60, max(url.height, cert.height) + 40), 255)
    page.paste(url, (20, 20))
    page.paste(cert, (url.width + 40, 20))
    path = tmp_path / "page.png"
    page.save(path)
    assert read_qr_text(path).text == material.qr
    out = _steps(page_server, [{"do": "photo", "file": str(path)}])
    steps = out["steps"]
    assert isinstance(steps, list) and "error" not in steps[0], steps
    assert steps[0]["verdict"]["valid"] is True, steps[0]
