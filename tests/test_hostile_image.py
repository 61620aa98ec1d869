"""``verifier qr --image``: only PNG and JPEG are opened, never through an external program.

Fuzzing (issue 8, point 5) found that an EPS file made Pillow run Ghostscript
with no time limit: a PostScript loop hung the verifier and Ghostscript's
output broke the ``--json`` line. Every other format is now refused from its
first bytes (stage ``qr``, reason ``image_unreadable``), and images are capped
in pixels before they are decoded.

The EPS tests put a fake ``gs`` first on PATH that leaves a mark and hangs:
they prove Ghostscript is never started, whether or not it is installed.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
import qrcode
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import EpsImagePlugin, Image

from tests.fixtures import pki as pki_fixture
from verifier.image import read_qr_text
from verifier.result import Reason

ROOT = Path(__file__).resolve().parents[1]
#: PostScript that never ends and writes on stdout while it runs.
LOOP_EPS = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\n%%EndComments\n"
    b"{ (spam) print } loop\nshowpage\n%%EOF\n"
)
#: a 30-byte DOS EPS binary header (C5 D0 D3 C6) in front of the same PostScript
DOS_EPS = (
    b"\xc5\xd0\xd3\xc6" + (30).to_bytes(4, "little") + len(LOOP_EPS).to_bytes(4, "little")
    + bytes(16) + b"\xff\xff" + LOOP_EPS
)  # fmt: skip
HC1 = "HC1:" + "NCFOXN%TS3DH0" * 40  # any alphanumeric text: only the image is tested


@pytest.fixture()
def dsc_pem(test_pki: pki_fixture.TestPki, tmp_path: Path) -> str:
    path = tmp_path / "dsc.pem"
    path.write_bytes(test_pki.dsc_ec.certificate.public_bytes(Encoding.PEM))
    return str(path)


@pytest.fixture()
def fake_gs(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with a ``gs`` (and ``gswin*``) that marks its start and hangs."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    mark = tmp_path / "gs-was-run"
    for name in ("gs", "gswin32c", "gswin64c"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\ntouch '{mark}'\necho spam\nsleep 60\n")
        script.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VNDCC_VERIFIER_STATE": str(tmp_path / "state"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return env, mark


def _verify_image(path: Path, trust: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "qr", "--trust", trust, "--json",
         "--at", "2026-06-01T12:00:00Z", "--image", str(path)],
        env=env, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    return done, time.monotonic() - started


def _one_verdict(done: subprocess.CompletedProcess[str]) -> dict[str, object]:
    """stdout is exactly one JSON line and stderr is empty."""
    assert "Traceback" not in done.stderr and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout[:500]
    verdict: dict[str, object] = json.loads(lines[0])
    return verdict


@pytest.mark.parametrize("eps", [LOOP_EPS, DOS_EPS], ids=["eps", "dos-eps"])
@pytest.mark.parametrize("suffix", [".eps", ".png"])
def test_eps_loop_is_refused_without_running_ghostscript(
    eps: bytes, suffix: str, fake_gs: tuple[dict[str, str], Path], dsc_pem: str, tmp_path: Path
) -> None:
    env, mark = fake_gs
    path = tmp_path / f"loop{suffix}"  # the name does not matter, the bytes do
    path.write_bytes(eps)
    done, took = _verify_image(path, dsc_pem, env)
    assert done.returncode == 1
    verdict = _one_verdict(done)
    assert verdict["valid"] is False and verdict["stage_failed"] == "qr"
    assert [e["reason"] for e in verdict["errors"]] == ["image_unreadable"]  # type: ignore[attr-defined]
    assert not mark.exists(), "Ghostscript was started"
    assert took < 20


def test_eps_loop_with_the_real_ghostscript_if_installed(dsc_pem: str, tmp_path: Path) -> None:
    """With the PATH as it is (Ghostscript installed or not): one JSON line, quickly."""
    path = tmp_path / "loop.eps"
    path.write_bytes(LOOP_EPS)
    env = {
        **os.environ,
        "VNDCC_VERIFIER_STATE": str(tmp_path / "state"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done, took = _verify_image(path, dsc_pem, env)
    assert done.returncode == 1
    assert _one_verdict(done)["stage_failed"] == "qr"
    assert "spam" not in done.stdout and took < 20


def test_eps_never_reaches_pillows_eps_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: Pillow's EPS plugin is never asked to open or render the file."""
    calls: list[str] = []
    real_open = EpsImagePlugin.EpsImageFile._open

    def spy_open(self: EpsImagePlugin.EpsImageFile) -> None:
        calls.append("open")
        real_open(self)

    def spy_ghostscript(*_: object, **__: object) -> None:
        calls.append("ghostscript")
        raise OSError("Ghostscript is not run in tests")

    monkeypatch.setattr(EpsImagePlugin.EpsImageFile, "_open", spy_open)
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", spy_ghostscript)
    for data in (LOOP_EPS, DOS_EPS):
        with Image.open(io.BytesIO(data)) as img:  # the spy works: Pillow alone opens EPS
            assert img.format == "EPS"
        assert calls == ["open"]
        calls.clear()
        read = read_qr_text(data)
        assert read.text is None and read.reason == Reason.IMAGE_UNREADABLE
        assert calls == []


def _qr_image(fmt: str, **save: object) -> bytes:
    img = qrcode.make(HC1, box_size=4, border=4).get_image().convert("L")
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "save"),
    [("GIF", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("PPM", {}),
     ("ICO", {}), ("PCX", {}), ("TGA", {}), ("JPEG2000", {})],
)  # fmt: skip
def test_other_formats_are_refused(fmt: str, save: dict[str, object]) -> None:
    """A QR that Pillow could decode, in a format we do not open: refused, not read."""
    try:
        data = _qr_image(fmt, **save)
    except (KeyError, OSError):
        pytest.skip(f"this Pillow cannot write {fmt}")
    read = read_qr_text(data)
    assert read.text is None and read.reason == Reason.IMAGE_UNREADABLE


@pytest.mark.parametrize(("fmt", "save"), [("PNG", {}), ("JPEG", {"quality": 95})])
def test_png_and_jpeg_are_read(fmt: str, save: dict[str, object]) -> None:
    assert read_qr_text(_qr_image(fmt, **save)).text == HC1


def test_camera_mpo_jpeg_is_read() -> None:
    """Some cameras write JPEG files with an MPO index; Pillow calls them MPO."""
    img = qrcode.make(HC1, box_size=4, border=4).get_image().convert("RGB")
    out = io.BytesIO()
    img.save(out, "MPO", save_all=True, append_images=[img], quality=95)
    assert read_qr_text(out.getvalue()).text == HC1


def _png_header(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body).to_bytes(4, "big")
        return len(body).to_bytes(4, "big") + kind + body + crc

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (7_000, 7_000), (2**31 - 1, 1)])
def test_decompression_bombs_are_refused_before_decoding(width: int, height: int) -> None:
    """A small PNG that claims a huge raster: refused from its header, quickly."""
    row = bytes(width + 1) if width * height <= 50_000_000 else b""
    idat = zlib.compress(row * height if row else b"", 9)
    data = _png_header(width, height, idat)
    assert len(data) < 1_000_000
    started = time.monotonic()
    read = read_qr_text(data)
    assert read.text is None and read.reason == Reason.IMAGE_UNREADABLE
    assert time.monotonic() - started < 5


def test_bomb_through_the_cli_is_one_json_line(dsc_pem: str, tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(100_000, 100_000, zlib.compress(b"", 9)))
    env = {
        **os.environ,
        "VNDCC_VERIFIER_STATE": str(tmp_path / "state"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    done, _ = _verify_image(path, dsc_pem, env)
    assert done.returncode == 1
    verdict = _one_verdict(done)
    assert verdict["stage_failed"] == "qr"
