"""Ways to tamper with a signed passport, each as an attacker would do it.

- ``flip_signed_byte``: one byte changed inside the signed byte range (the
  ``/Creator`` string of the document information dictionary, so that the
  file still parses and only the digest can tell);
- ``overwrite_name``: an incremental update appending a content stream that
  paints over the holder's name and writes another (pdfsig's blind spot);
- ``add_page``: an incremental update adding a second page;
- ``remove_signature``: an incremental update dropping the signature field,
  the DocMDP permission and the widget (the page still shows the passport).
"""

from __future__ import annotations

import io

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from signer.pdf.font import load_font


def flip_signed_byte(pdf: bytes) -> bytes:
    at = pdf.index(b"/Creator (vn-dcc)") + len(b"/Creator (vn-dc")
    assert at < pdf.index(b"/Contents <")  # inside the first signed range
    return pdf[:at] + b"X" + pdf[at + 1 :]


def _write(writer: IncrementalPdfFileWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def overwrite_name(pdf: bytes, *, x: float, y: float, new_name: str = "Lê Văn Giả") -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    font = load_font("DejaVuSans.ttf", tag="VNDCCA")
    ops = (
        f"q 1 g {x - 2:.2f} {y - 5:.2f} 330 18 re f Q BT 0 g /F2 10.5 Tf {x:.2f} {y:.2f} Td ".encode()
        + font.encode(new_name)
        + b" Tj ET"
    )
    stream_ref = writer.add_object(generic.StreamObject(stream_data=ops))
    contents = page["/Contents"]
    new_contents = generic.ArrayObject([*list(contents), stream_ref])
    page["/Contents"] = new_contents
    writer.mark_update(page_ref)
    return _write(writer)


def add_page(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    stream_ref = writer.add_object(
        generic.StreamObject(stream_data=b"0 g 100 700 200 50 re f")
    )
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(0), generic.NumberObject(0),
                 generic.NumberObject(595), generic.NumberObject(842)]
            ),
            generic.NameObject("/Contents"): stream_ref,
            generic.NameObject("/Resources"): generic.DictionaryObject(),
        }
    )
    writer.insert_page(page)
    return _write(writer)


def remove_signature(pdf: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    root = writer.root
    for key in ("/AcroForm", "/Perms", "/DSS"):
        if key in root:
            del root[key]
    writer.update_root()
    page_ref = root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    del page["/Annots"]
    writer.mark_update(page_ref)
    return _write(writer)
