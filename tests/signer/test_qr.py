"""QR images: level Q, alphanumeric mode, quiet zone 4; PNG and SVG decode back with zxing-cpp,
and the PNG has the pixels of qrcode's own PIL image."""

from __future__ import annotations

import datetime as dt
import io
import re
import xml.etree.ElementTree as ET
from typing import Any, cast

import pytest
import qrcode
import zxingcpp
from PIL import Image, ImageDraw
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.util import MODE_ALPHA_NUM, QRData

from signer.issue import issue_hc1
from signer.qr import QUIET_ZONE, make_qr, qr_png, qr_svg
from tests.fixtures.pki import TestPki as Pki
from tests.signer.test_qr_mask import hc1_like
from verifier.errors import InputError


@pytest.fixture(scope="module")
def hc1(test_pki: Pki, example_records: list[Any]) -> str:
    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    return issue_hc1(example_records[1], test_pki.dsc_rsa, now=now, issuer_name="Bộ Y tế").hc1


#: ISO/IEC 18004:2015 table 10, data mask conditions on (row i, column j).
MASKS = [
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
]
MODE_ALPHANUMERIC = 0b0010  # ISO/IEC 18004:2015 table 2 (byte mode is 0b0100)


def png_modules(png: bytes, box_size: int) -> list[list[bool]]:
    """Dark modules read from the PNG's pixels (centre of each box), quiet zone included."""
    image = Image.open(io.BytesIO(png)).convert("L")
    size = image.size[0] // box_size
    half = box_size // 2
    return [
        [image.getpixel((x * box_size + half, y * box_size + half)) == 0 for x in range(size)]
        for y in range(size)
    ]


def first_mode_indicator(modules: list[list[bool]], mask: int) -> int:
    """The first 4 data bits: the 2x2 modules at the symbol's bottom-right corner, unmasked."""
    symbol = [row[QUIET_ZONE:-QUIET_ZONE] for row in modules[QUIET_ZONE:-QUIET_ZONE]]
    n = len(symbol)
    bits = 0
    for i, j in ((n - 1, n - 1), (n - 1, n - 2), (n - 2, n - 1), (n - 2, n - 2)):
        bits = bits << 1 | (symbol[i][j] ^ MASKS[mask](i, j))
    return bits


def decode_one(image: Image.Image) -> zxingcpp.Barcode:
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)  # as the verifier reads
    assert len(results) == 1
    assert results[0].valid and results[0].format == zxingcpp.BarcodeFormat.QRCode
    return results[0]


def check_png(text: str, box_size: int = 4) -> None:
    qr = make_qr(text)
    png = qr_png(qr, box_size=box_size)
    image = Image.open(io.BytesIO(png))
    assert image.mode == "1"
    assert image.size == ((qr.size + 2 * QUIET_ZONE) * box_size,) * 2
    result = decode_one(image)
    assert result.text == text
    assert result.ec_level == "Q"
    assert result.symbology_identifier == "]Q1"  # QR model 2, no ECI/FNC1
    # zxing-cpp reads the version and mask from the symbol's own format/version bits.
    extra = cast(dict[str, Any], result.extra)
    assert extra["Version"] == str(qr.version)
    assert extra["DataMask"] == qr.mask_pattern
    modules = png_modules(png, box_size)
    assert modules == qr.get_matrix()
    assert first_mode_indicator(modules, extra["DataMask"]) == MODE_ALPHANUMERIC


def qrcode_png(text: str, box_size: int) -> bytes:
    """qrcode on its own (make(fit=True), its PIL image), the baseline picture."""
    ref: qrcode.QRCode[Any] = qrcode.QRCode(
        error_correction=ERROR_CORRECT_Q, border=QUIET_ZONE, box_size=box_size
    )
    ref.add_data(QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=False))
    buf = io.BytesIO()
    ref.make_image().save(buf, format="PNG")
    return buf.getvalue()


def test_png_decodes_to_the_same_text(hc1: str) -> None:
    check_png(hc1)


@pytest.mark.parametrize("box_size", [1, 2, 3, 4, 5, 8])
def test_png_has_qrcodes_pixels(hc1: str, box_size: int) -> None:
    """Written by hand (filter Up for repeated scanlines), read by Pillow: qrcode's picture."""
    ours = Image.open(io.BytesIO(qr_png(hc1, box_size=box_size)))
    ref = Image.open(io.BytesIO(qrcode_png(hc1, box_size))).convert("1")
    assert ours.mode == "1" and ours.size == ref.size
    assert ours.tobytes() == ref.tobytes()
    assert qr_png(hc1, box_size=box_size)[:8] == b"\x89PNG\r\n\x1a\n"


def test_png_box_size_must_be_positive(hc1: str) -> None:
    with pytest.raises(ValueError, match="box_size"):
        qr_png(hc1, box_size=0)


@pytest.mark.parametrize(("seed", "length", "box_size"), [(1, 420, 4), (2, 560, 1), (3, 690, 3)])
def test_png_of_hc1_like_texts(seed: int, length: int, box_size: int) -> None:
    check_png(hc1_like(seed, length), box_size)


def test_png_from_text_equals_png_from_qr(hc1: str) -> None:
    assert qr_png(hc1) == qr_png(make_qr(hc1))


def test_qr_parameters(hc1: str) -> None:
    qr = make_qr(hc1)
    assert qr.error_correction == ERROR_CORRECT_Q
    assert len(qr.dark) == qr.size**2 == (4 * qr.version + 17) ** 2
    # quiet zone: the outer 4 modules are white on every side
    png = Image.open(io.BytesIO(qr_png(qr, box_size=1))).convert("L")
    width, height = png.size
    assert width == height == qr.size + 2 * QUIET_ZONE
    for x in range(width):
        for y in (*range(QUIET_ZONE), *range(height - QUIET_ZONE, height)):
            assert png.getpixel((x, y)) == 255 and png.getpixel((y, x)) == 255
    assert png.getpixel((QUIET_ZONE, QUIET_ZONE)) == 0  # finder pattern corner


SVG_RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")


def svg_modules(svg: bytes) -> list[list[bool]]:
    """Parse our SVG (one path of 1-module-high runs) back into a module matrix."""
    ns = {"svg": "http://www.w3.org/2000/svg"}
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    _, _, width, height = (int(v) for v in root.attrib["viewBox"].split())
    assert width == height
    background = root.find("svg:rect", ns)
    assert background is not None and background.attrib["fill"] == "#fff"
    (path,) = root.findall("svg:path", ns)
    assert path.attrib["fill"] == "#000"
    d = path.attrib["d"]
    runs = SVG_RUN.findall(d)
    assert "".join(f"M{x} {y}h{w}v1h-{w2}z" for x, y, w, w2 in runs) == d  # nothing else in d
    matrix = [[False] * width for _ in range(width)]
    for x, y, w, w2 in ((int(v) for v in run) for run in runs):
        assert w == w2 and w > 0 and x + w <= width
        for col in range(x, x + w):
            assert not matrix[y][col]  # runs do not overlap
            matrix[y][col] = True
    return matrix


def test_svg_is_a_vector_image_of_the_same_modules(hc1: str) -> None:
    qr = make_qr(hc1)
    svg = qr_svg(qr)
    assert svg.startswith(b"<?xml")
    root = ET.fromstring(svg)
    size = qr.size + 2 * QUIET_ZONE
    assert root.attrib["width"] == root.attrib["height"] == f"{size * 0.4:.1f}mm"
    modules = svg_modules(svg)
    assert modules == qr.get_matrix() == png_modules(qr_png(qr), 4)
    # Rasterise the parsed rectangles and decode: the SVG's content is a QR of the text.
    scale = 4
    image = Image.new("L", (size * scale, size * scale), 255)
    draw = ImageDraw.Draw(image)
    for y, row in enumerate(modules):
        for x, dark in enumerate(row):
            if dark:
                draw.rectangle(
                    (x * scale, y * scale, (x + 1) * scale - 1, (y + 1) * scale - 1), fill=0
                )
    result = decode_one(image)
    assert result.text == hc1 and result.ec_level == "Q"
    assert qr_svg(hc1) == svg


@pytest.mark.parametrize("bad", ["", "hc1:lower", "HC1:ü"])
def test_refuses_non_alphanumeric_text(bad: str) -> None:
    with pytest.raises(InputError):
        make_qr(bad)


def test_refuses_unknown_level() -> None:
    with pytest.raises(InputError):
        make_qr("HC1:ABC", level="X")
