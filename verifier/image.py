"""Read the HC1 text out of a QR image (PNG, JPEG, ...) with zxing-cpp.

    >>> from verifier.image import read_qr_text
    >>> # outcome = read_qr_text("passport-qr.png")
    >>> # outcome.text -> "HC1:..." or None with outcome.reason / outcome.message

Untrusted input: never raises. Images are capped in pixels and bytes
(decompression bombs), and only QR codes are looked for.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import zxingcpp
from PIL import Image

from verifier.result import Reason

#: A phone photo of a passport is ~12 MP; refuse anything far beyond.
MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class QrRead:
    """Outcome of reading an image: ``text`` or a reason why not."""

    text: str | None
    reason: Reason | None = None
    message: str = ""


def _load(data_or_path: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(data_or_path, bytes | bytearray | memoryview):
        return bytes(data_or_path)
    with open(data_or_path, "rb") as fh:
        return fh.read(MAX_IMAGE_BYTES + 1)


def read_qr_text(data_or_path: bytes | str | os.PathLike[str]) -> QrRead:
    """Decode the QR code in an image (file path or bytes); the first one found wins."""
    try:
        data = _load(data_or_path)
    except OSError as err:
        return QrRead(None, Reason.IMAGE_UNREADABLE, f"cannot read image: {err.strerror}")
    if len(data) > MAX_IMAGE_BYTES:
        return QrRead(None, Reason.IMAGE_UNREADABLE, "image file is too large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_PIXELS:
                    return QrRead(None, Reason.IMAGE_UNREADABLE, "image has too many pixels")
                gray = img.convert("L")
    except Exception as err:  # Pillow raises many types on garbage
        return QrRead(None, Reason.IMAGE_UNREADABLE, f"not a readable image ({type(err).__name__})")
    try:
        found = zxingcpp.read_barcodes(
            gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
        )
    except Exception as err:  # defensive around the native decoder
        return QrRead(None, Reason.IMAGE_UNREADABLE, f"QR decoder failed ({type(err).__name__})")
    if not found:
        return QrRead(None, Reason.NO_QR_CODE, "no QR code found in the image")
    return QrRead(found[0].text)
