"""Read the HC1 text out of a QR image (PNG or JPEG) with zxing-cpp.

    >>> from verifier.image import read_qr_text
    >>> read_qr_text(b"%!PS-Adobe-3.0 EPSF-3.0").reason
    <Reason.IMAGE_UNREADABLE: 'image_unreadable'>
    >>> # read_qr_text("passport-qr.png").text -> "HC1:..."

Untrusted input: never raises. Only PNG and JPEG are opened: what phone
cameras, screenshots and our signer produce, decoded in-process (Pillow's
PNG decoder over zlib, libjpeg). Every other format is refused from its first
bytes, before any decoder runs: Pillow would otherwise open EPS by running
Ghostscript (a PostScript loop hung the verifier and Ghostscript's output
broke the ``--json`` line, issue 8), and each further format (TIFF, WebP,
GIF, ...) is more decoder code exposed to hostile files for no traveller's
benefit. Images are capped in bytes and pixels before decoding
(decompression bombs). Only QR codes and Aztec codes are looked for: hcert
1.0.5+ prescribes QR, but its FAQ has verifiers scan "Aztec or QR", early
drafts preferred Aztec, and official test vectors (IE) ship Aztec pictures.
The decoded text is verified the same way whichever symbol carried it.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass

import zxingcpp

from verifier.result import Reason

#: A phone photo of a passport is ~12 MP; refuse anything far beyond.
MAX_PIXELS = 40_000_000
MAX_IMAGE_BYTES = 50 * 1024 * 1024
#: Pillow format names tried, in this order; nothing else is even identified.
IMAGE_FORMATS = ("PNG", "JPEG")
#: The prefix a certificate's text starts with (hcert section 4.3, context identifier).
HC1_PREFIX = "HC1:"
#: The 2D symbols an HC1 text may come in (see above).
_FORMATS = zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Aztec])


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
    from PIL import Image, UnidentifiedImageError  # 9 ms of import `verifier pdf` never needs

    try:
        data = _load(data_or_path)
    except OSError as err:
        return QrRead(None, Reason.IMAGE_UNREADABLE, f"cannot read image: {err.strerror}")
    if len(data) > MAX_IMAGE_BYTES:
        return QrRead(None, Reason.IMAGE_UNREADABLE, "image file is too large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as img:
                if img.format not in (*IMAGE_FORMATS, "MPO"):  # MPO: a camera JPEG
                    return QrRead(None, Reason.IMAGE_UNREADABLE, "not a PNG or JPEG image")
                if img.width * img.height > MAX_PIXELS:
                    return QrRead(None, Reason.IMAGE_UNREADABLE, "image has too many pixels")
                gray = img.convert("L")
    except UnidentifiedImageError:
        return QrRead(None, Reason.IMAGE_UNREADABLE, "not a PNG or JPEG image")
    except Exception as err:  # Pillow raises many types on garbage
        return QrRead(None, Reason.IMAGE_UNREADABLE, f"not a readable image ({type(err).__name__})")
    try:
        found = zxingcpp.read_barcodes(gray, formats=_FORMATS)
    except Exception as err:  # defensive around the native decoder
        return QrRead(None, Reason.IMAGE_UNREADABLE, f"QR decoder failed ({type(err).__name__})")
    if not found:
        return QrRead(None, Reason.NO_QR_CODE, "no QR code found in the image")
    # A page may carry other codes beside the certificate (a URL, a booking reference):
    # the first symbol that holds an HC1 text wins, else the first one found.
    hc1 = next((r for r in found if r.text.startswith(HC1_PREFIX)), found[0])
    return QrRead(hc1.text)
