"""What the scanner page's browser runs need, shared by tests/scanner/test_page.py and
bench/scanner.py: the tools (node, the npm packages, Debian's chromium), freshly signed
trust material and QR texts around the real now, the fake camera's .y4m, and
``python -m verifier serve`` on a free loopback port."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path

from PIL import Image

from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list
from signer.qr import qr_png
from tests.verifier import factory
from verifier import codec

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NEEDED: dict[str, Callable[[], bool]] = {
    "node": lambda: shutil.which("node") is not None,
    "scanner/node_modules (npm ci)": lambda: (ROOT / "scanner" / "node_modules" / "ajv").is_dir()
    and (ROOT / "scanner" / "node_modules" / "playwright-core").is_dir(),
    "chromium": lambda: shutil.which("chromium") is not None or Path("/usr/bin/chromium").exists(),
}
#: The UVCI the trust list of :func:`write_material` revokes.
REVOKED_CI = "URN:UVCI:01:VN:PAGEREVOKED1#Q"


def missing_tools() -> list[str]:
    """The names of the tools in NEEDED that are not installed (``scripts/setup.sh --dev``)."""
    return [name for name, present in NEEDED.items() if not present()]


def y4m(qr_text: str, path: Path, *, width: int = 640, height: int = 480) -> None:
    """One 4:2:0 frame (Chromium loops it): the QR, black on white, centred, nearest-scaled."""
    image = Image.open(BytesIO(qr_png(qr_text, box_size=1))).convert("L")
    scale = max(1, (height - 40) // image.height)
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(image, ((width - image.width) // 2, (height - image.height) // 2))
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    header = f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode("ascii")
    path.write_bytes(header + b"FRAME\n" + frame.tobytes() + chroma + chroma)


def _tampered(cose: bytes) -> str:
    data = bytearray(cose)
    data[-10] ^= 0x01  # inside the signature
    return "HC1:" + codec.b45encode(zlib.compress(bytes(data)))


def write_material(folder: Path, now: dt.datetime, *, width: int = 640, height: int = 480) -> dict[str, str]:
    """Fresh keys (CSCA, ES256 DSC, trust-list signer; never stored), ``trustlist.cbor`` and
    ``csca.pem`` in *folder*, and the QR texts signed at *now*: ``valid`` (the factory's
    dose 2 of 2), ``tampered`` (a flipped signature byte), ``revoked`` (a UVCI the list
    revokes), each also as ``<name>.y4m``. Returns the texts by name."""
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="Page CSCA", now=now - dt.timedelta(days=400))
    k = new_private_key("ec-p256")
    dsc_cert = make_dsc(csca, ca_key, k.public_key(), name="Page DSC", now=now - dt.timedelta(days=30))
    dsc = SoftwareKey(private_key=k, certificate=dsc_cert, chain=(csca,))
    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(csca, ca_key, tl_key.public_key(), now=now - dt.timedelta(days=10))
    signer = SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(csca,))
    (folder / "trustlist.cbor").write_bytes(
        build_trust_list(
            signer=signer,
            cscas=[csca],
            dscs=[dsc_cert],
            revoked_dscs=[],
            revoked_uvcis=[REVOKED_CI],
            crls=[],
            seq=1,
            now=now - dt.timedelta(hours=1),
            country="VN",
            next_update=now + dt.timedelta(days=7),
        )
    )
    (folder / "csca.pem").write_bytes(factory.pem(csca))
    valid_cose = factory.make_cose(dsc, now=now)
    texts = {
        "valid": codec.to_qr_text(valid_cose),
        "tampered": _tampered(valid_cose),
        "revoked": factory.make_hc1(
            dsc, now=now, payload=factory.dcc(v=[{**factory.DCC["v"][0], "ci": REVOKED_CI}])
        ),
    }
    for name, text in texts.items():
        y4m(text, folder / f"{name}.y4m", width=width, height=height)
    return texts


@contextmanager
def serve_page(folder: Path) -> Iterator[str]:
    """``python -m verifier serve --port 0`` (loopback, a free port) on *folder*'s
    trustlist.cbor and csca.pem and verifier/data/rules; yields the page's URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "verifier", "serve", "--port", "0",
         "--trust", str(folder / "trustlist.cbor"), "--trust", str(folder / "csca.pem"),
         "--rules", str(ROOT / "verifier" / "data" / "rules")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "http://127.0.0.1:" not in line:
            raise RuntimeError("verifier serve did not start: " + line + (proc.stderr.read() if proc.stderr else ""))
        yield line.split("on ", 1)[1].split(" ", 1)[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
