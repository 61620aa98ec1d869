"""PAdES B-LTA: a document timestamp appended after the signature and its validation data.

    >>> from signer.pdf.lta import append_document_timestamp
    >>> # pdf = append_document_timestamp(pdf, catalog=..., page=..., ..., timestamper=stamper)

ETSI EN 319 142-1 section 5.5 (and ISO 32000-2 section 12.8.5): an
incremental update holding a signature dictionary ``/Type /DocTimeStamp``
with ``/SubFilter /ETSI.RFC3161``, whose ``/Contents`` is an RFC 3161
TimeStampToken over SHA-256 of the byte range, which covers the whole file
but that value, so the signature, its signature timestamp and the Document
Security Store (certificates, the CSCA's CRL) of the signed revision are
time-stamped as they are. A later archive timestamp can extend it before the
TSA's certificate or its algorithms wear out. The update adds only what
DocMDP P=1 lets through: the timestamp's field (an invisible widget, also in
the page's ``/Annots``) in the form's ``/Fields`` (the catalog and the page
are rewritten with one more reference, nothing else changed).

Written by hand for our own files (:class:`signer.pdf.sign.PassportPdfSigner`
knows the catalog's and the page's objects), not by pyHanko's writer, which
would also update the Info dictionary and the XMP metadata: changes that the
verifier refuses after a certification (verifier/pdf/revisions.py).
"""

from __future__ import annotations

import re

from signer.pdf.tsa import Timestamper
from verifier.errors import KeyBackendError

_BYTERANGE_PLACEHOLDER = b"/ByteRange [0 0000000000 0000000000 0000000000]"
FIELD_NAME = "ArchiveTimestamp"
_STARTXREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")


def _append_ref(body: bytes, key: bytes, old: bytes, new: bytes) -> bytes:
    """``key [old]`` -> ``key [old new]`` in an object we wrote (exactly once)."""
    pattern = key + b" [" + old + b"]"
    if body.count(pattern) != 1:
        raise KeyBackendError(f"cannot add the document timestamp: no {key.decode()} entry to extend")
    return body.replace(pattern, key + b" [" + old + b" " + new + b"]")


def append_document_timestamp(
    pdf: bytes,
    *,
    catalog: tuple[int, bytes],
    page: tuple[int, bytes],
    widget: int,
    size: int,
    info: int,
    file_id: str,
    timestamper: Timestamper,
    reserved: int,
) -> bytes:
    """``pdf`` with an incremental update adding a document timestamp.

    ``catalog`` and ``page`` are (object number, dictionary as written) of the
    signed revision, ``widget`` the signature's widget object number, ``size``
    the cross-reference size, ``info`` the Info dictionary's object number,
    ``reserved`` the bytes kept for the token.
    """
    match = _STARTXREF.search(pdf[-64:])
    if match is None:
        raise KeyBackendError("cannot add the document timestamp: no startxref at the end")
    prev = int(match.group(1))
    sig_num, field_num = size, size + 1
    widget_ref, field_ref = f"{widget} 0 R".encode(), f"{field_num} 0 R".encode()
    catalog_num, catalog_body = catalog
    page_num, page_body = page
    contents_hex = b"0" * (2 * reserved)
    objects = {
        catalog_num: _append_ref(catalog_body, b"/Fields", widget_ref, field_ref),
        page_num: _append_ref(page_body, b"/Annots", widget_ref, field_ref),
        sig_num: (
            b"<< /Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161 "
            + _BYTERANGE_PLACEHOLDER + b" /Contents <" + contents_hex + b"> >>"
        ),
        field_num: (
            f"<< /Type /Annot /Subtype /Widget /FT /Sig /T ({FIELD_NAME}) /V {sig_num} 0 R"
            f" /F 132 /P {page_num} 0 R /Rect [0 0 0 0] >>".encode()
        ),
    }
    out = bytearray(pdf)
    if not out.endswith(b"\n"):
        out += b"\n"
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, objects[num])
    xref_at = len(out)
    out += b"xref\n"
    for num in sorted(objects):
        out += b"%d 1\n%010d 00000 n \n" % (num, offsets[num])
    out += (
        f"trailer\n<< /Size {field_num + 1} /Root {catalog_num} 0 R /Info {info} 0 R"
        f" /ID [<{file_id}> <{file_id}>] /Prev {prev} >>\nstartxref\n{xref_at}\n%%EOF\n"
    ).encode()
    # byte range: everything but the hex value of /Contents
    sig_at = offsets[sig_num]
    br_at = out.index(_BYTERANGE_PLACEHOLDER, sig_at)
    start = out.index(b"/Contents <", sig_at) + len(b"/Contents ")
    end = start + 2 * reserved + 2
    total = len(out)
    byte_range = f"/ByteRange [0 {start:>10} {end:>10} {total - end:>10}]".encode()
    out[br_at : br_at + len(byte_range)] = byte_range
    token = timestamper.timestamp(bytes(out[:start]) + bytes(out[end:]))
    if len(token) > reserved:
        raise KeyBackendError("document timestamp token larger than the space reserved for it")
    hex_token = token.hex().encode("ascii")
    out[start + 1 : start + 1 + len(hex_token)] = hex_token
    return bytes(out)

