"""What a reader of the PDF sees: page 1 rendered (for the QR) and its text.

    >>> from verifier.pdf.extract import render_qr_texts, page_text
    >>> # render_qr_texts(pdf_bytes) -> ["HC1:..."]
    >>> # page_text(pdf_bytes) -> "CHỨNG NHẬN TIÊM CHỦNG COVID-19 ..."

The QR is decoded from the rendered page (poppler's ``pdftoppm``, then
zxing-cpp), not from the drawing instructions: what is checked is what a
scanner would read, whatever mix of vector drawing, images, clipping or
overdrawing produced it. Text comes from poppler's ``pdftotext``. Both are
Debian's poppler-utils, run on untrusted files with a time limit that the
caller shares out per file (:data:`TIME_BUDGET`); a run that overruns it is
killed and raises :class:`RenderTimeout`. Before rendering, the caller
bounds the drawing work of page 1 (:mod:`verifier.pdf.budget`).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import zxingcpp

from verifier.errors import ConfigError

#: Longer side of the rendered page in pixels (about 150 dpi for A4). A size,
#: not a resolution, so that a hostile page size cannot ask for a huge raster.
RENDER_PIXELS = 1800
#: Seconds of poppler work per PDF, rendering and text together (a passport
#: page takes about 0.3 s; a hostile one used to take up to 60 s).
TIME_BUDGET = 10.0
MAX_TEXT = 200_000


class RenderTimeout(Exception):
    """A poppler tool overran its time limit on this file (killed)."""


@dataclass(frozen=True)
class QrFound:
    texts: tuple[str, ...]
    ec_levels: tuple[str, ...]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ConfigError(f"{name} not found: install poppler-utils (apt-get install poppler-utils)")
    return path


def _run(
    args: list[str], data: bytes, *, output: str | None = None, timeout: float = TIME_BUDGET
) -> bytes | None:
    """Run a poppler tool on ``data`` in a private temporary directory; None when it fails.

    Raises :class:`RenderTimeout` when it runs longer than ``timeout`` seconds.

    The tool writes to stdout, or with ``output`` (a file suffix) to a file in
    that directory: pdftoppm writes to stdout only without a page range.
    """
    with tempfile.TemporaryDirectory(prefix="vndcc-pdf-") as tmp:
        src = os.path.join(tmp, "in.pdf")
        with open(src, "wb") as fh:
            fh.write(data)
        target = os.path.join(tmp, "out") if output else "-"
        try:
            done = subprocess.run(
                [*args, src, target],
                capture_output=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:  # subprocess.run killed it
            raise RenderTimeout(f"{os.path.basename(args[0])} took more than {timeout:.1f} s") from None
        if done.returncode != 0:
            return None
        if output:
            try:
                with open(target + output, "rb") as fh:
                    return fh.read()
            except OSError:
                return None
        return done.stdout or None


def render_page(
    data: bytes, *, page: int = 1, pixels: int = RENDER_PIXELS, timeout: float = TIME_BUDGET
) -> bytes | None:
    """Page ``page`` as a grey PNG (longer side ``pixels``), or None when poppler cannot."""
    tool = _tool("pdftoppm")
    return _run(
        [tool, "-f", str(page), "-l", str(page), "-scale-to", str(pixels), "-gray", "-png",
         "-singlefile"],
        data,
        output=".png",
        timeout=timeout,
    )


def qr_codes_in_png(png: bytes) -> QrFound:
    """Every QR code zxing-cpp finds in the image."""
    from PIL import Image  # only when a page is rendered (not for a passport's vector QR)

    with Image.open(io.BytesIO(png), formats=("PNG",)) as img:
        gray = img.convert("L")
    found = zxingcpp.read_barcodes(
        gray, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    return QrFound(
        texts=tuple(b.text for b in found), ec_levels=tuple(str(b.ec_level) for b in found)
    )


def render_qr_texts(data: bytes, *, timeout: float = TIME_BUDGET) -> QrFound | None:
    """QR codes visible on page 1; None when the page cannot be rendered."""
    png = render_page(data, timeout=timeout)
    if png is None:
        return None
    return qr_codes_in_png(png)


def page_text(data: bytes, *, page: int = 1, timeout: float = TIME_BUDGET) -> str | None:
    """Text of page ``page`` in reading order (UTF-8), or None."""
    tool = _tool("pdftotext")
    out = _run(
        [tool, "-f", str(page), "-l", str(page), "-enc", "UTF-8", "-layout"], data, timeout=timeout
    )
    if out is None:
        return None
    return out[:MAX_TEXT].decode("utf-8", errors="replace")
