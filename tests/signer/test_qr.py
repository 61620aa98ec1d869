"""QR images: level Q, alphanumeric mode, quiet zone 4; the PNG decodes back with zxing-cpp."""

from __future__ import annotations

import datetime as dt
import io
import xml.etree.ElementTree as ET
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from qrcode.constants import ERROR_CORRECT_Q
from qrcode.util import MODE_ALPHA_NUM

from signer.issue import issue_hc1
from signer.qr import QUIET_ZONE, make_qr, qr_png, qr_svg
from tests.fixtures.pki import TestPki as Pki
from verifier.errors import InputError


@pytest.fixture(scope="module")
def hc1(test_pki: Pki, example_records: list[Any]) -> str:
    now = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
    return issue_hc1(example_records[1], test_pki.dsc_rsa, now=now, issuer_name="Bộ Y tế").hc1


def test_png_decodes_to_the_same_text(hc1: str) -> None:
    png = qr_png(hc1)
    image = Image.open(io.BytesIO(png))
    results = zxingcpp.read_barcodes(image)
    assert len(results) == 1
    assert results[0].format == zxingcpp.BarcodeFormat.QRCode
    assert results[0].text == hc1
    assert results[0].ec_level == "Q"


def test_qr_parameters(hc1: str) -> None:
    qr = make_qr(hc1)
    assert qr.error_correction == ERROR_CORRECT_Q
    assert qr.border == QUIET_ZONE
    assert [d.mode for d in qr.data_list] == [MODE_ALPHA_NUM]
    # quiet zone: the outer 4 modules are white on every side
    png = Image.open(io.BytesIO(qr_png(qr, box_size=1))).convert("L")
    width, height = png.size
    assert width == height == qr.modules_count + 2 * QUIET_ZONE
    for x in range(width):
        for y in (*range(QUIET_ZONE), *range(height - QUIET_ZONE, height)):
            assert png.getpixel((x, y)) == 255 and png.getpixel((y, x)) == 255
    assert png.getpixel((QUIET_ZONE, QUIET_ZONE)) == 0  # finder pattern corner


def test_svg_is_a_vector_image(hc1: str) -> None:
    root = ET.fromstring(qr_svg(hc1))
    assert root.tag.endswith("svg")
    assert any(el.tag.endswith("path") for el in root.iter())


@pytest.mark.parametrize("bad", ["", "hc1:lower", "HC1:ü"])
def test_refuses_non_alphanumeric_text(bad: str) -> None:
    with pytest.raises(InputError):
        make_qr(bad)
