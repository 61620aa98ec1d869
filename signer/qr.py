"""QR images (PNG, SVG) of an HC1 text, with the ``qrcode`` package.

    >>> from signer.qr import make_qr, qr_png, qr_svg
    >>> qr = make_qr("HC1:NCFOXN%TS3DH")
    >>> qr_png(qr)[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
    True
    >>> qr_svg(qr).startswith(b"<?xml")
    True

hcert 1.x section 4.3 / eHN QR guidelines: error correction level Q (25 %),
a quiet zone of 4 modules. The whole HC1 text is in the QR alphanumeric
alphabet (base45 was designed for it: RFC 9285 section 1), so it is
encoded in alphanumeric mode (5.5 bits per character), never byte mode.
"""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from PIL import Image
from qrcode.util import MODE_ALPHA_NUM, QRData

from verifier.errors import InputError

QUIET_ZONE = 4
#: Pixels per module in the PNG (a version-17 HC1 QR: 85 modules + quiet zone).
DEFAULT_BOX_SIZE = 4

_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def make_qr(text: str) -> qrcode.QRCode:
    """Encode ``text`` (level Q, alphanumeric mode, smallest version that fits)."""
    if not text or not _ALPHANUMERIC.issuperset(text):
        raise InputError("QR text must be non-empty and in the QR alphanumeric alphabet")
    qr = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_Q,
        border=QUIET_ZONE,
        box_size=DEFAULT_BOX_SIZE,
    )
    qr.add_data(QRData(text.encode("ascii"), mode=MODE_ALPHA_NUM, check_data=False))
    qr.make(fit=True)
    return qr


def qr_png(qr: qrcode.QRCode | str, *, box_size: int = DEFAULT_BOX_SIZE) -> bytes:
    """PNG bytes (black on white, 1 bit per pixel).

    Drawn from the module matrix (quiet zone included) as a 1-bit image
    scaled with nearest-neighbour: the same picture as qrcode's PIL factory,
    which draws every module as a rectangle, in a tenth of the time.
    """
    if isinstance(qr, str):
        qr = make_qr(qr)
    matrix = qr.get_matrix()  # rows of bools, border included
    size = len(matrix)
    image = Image.frombytes(
        "L", (size, size), bytes(0 if dark else 255 for row in matrix for dark in row)
    ).convert("1")
    if box_size != 1:
        image = image.resize((size * box_size, size * box_size), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def qr_svg(qr: qrcode.QRCode | str) -> bytes:
    """SVG bytes (one path; scales without loss, for print)."""
    if isinstance(qr, str):
        qr = make_qr(qr)
    image = qr.make_image(image_factory=qrcode.image.svg.SvgPathImage)
    buf = io.BytesIO()
    image.save(buf)
    return buf.getvalue()
