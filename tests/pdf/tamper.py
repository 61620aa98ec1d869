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
from pyhanko.pdf_utils.reader import PdfFileReader

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


def change_metadata(pdf: bytes, *, title: str = "Chứng nhận giả / Forged certificate") -> bytes:
    """An incremental update that redefines only the metadata objects in place: the
    Info dictionary (a new /Title) and the XMP stream (dc:title), nothing else.

    Written by hand (pyHanko's writer would also touch the catalog). The passport
    sets ``/DisplayDocTitle``, so a viewer shows the forged title; DocMDP P=1
    allows no such change (issue 13, defect 2).
    """
    import re

    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    info_ref = reader.trailer.raw_get("/Info")
    info = info_ref.get_object()
    xmp_ref = reader.root.raw_get("/Metadata")
    old = xmp_ref.get_object().data
    start = old.index(b'<rdf:li xml:lang="x-default">') + len(b'<rdf:li xml:lang="x-default">')
    end = old.index(b"</rdf:li>", start)
    xmp = old[:start] + title.encode("utf-8") + old[end:]
    utf16 = "feff" + title.encode("utf-16-be").hex()
    entries = b" ".join(
        k.encode() + b" " + (f"<{utf16}>".encode() if k == "/Title" else _serialise(v))
        for k, v in info.items()
    )
    objects = {
        info_ref.idnum: b"<< " + entries + b" >>",
        xmp_ref.idnum: b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n%s\nendstream"
        % (len(xmp) + 1, xmp),
    }
    out = bytearray(pdf)
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    xref_at = len(out)
    out += b"xref\n"
    for num in sorted(objects):
        out += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
    prev = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    size = int(reader.trailer["/Size"])
    root = reader.trailer.raw_get("/Root").idnum
    out += (
        f"trailer\n<< /Size {size} /Root {root} 0 R /Info {info_ref.idnum} 0 R /Prev {prev} >>\n"
        f"startxref\n{xref_at}\n%%EOF\n"
    ).encode()
    return bytes(out)


def _serialise(value: object) -> bytes:
    buf = io.BytesIO()
    value.write_to_stream(buf)  # type: ignore[attr-defined]
    return buf.getvalue()


def change_title_only(pdf: bytes, *, title: str = "Forged certificate") -> bytes:
    """The Info /Title alone, in an incremental update."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    info_ref = writer.trailer.raw_get("/Info")
    info = info_ref.get_object()
    info["/Title"] = generic.TextStringObject(title)
    writer.mark_update(info_ref)
    return _write(writer)
