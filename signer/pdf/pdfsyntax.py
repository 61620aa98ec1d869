"""Small PDF syntax helpers (ISO 32000-1 section 7.3): strings, dates, streams, objects.

    >>> text_string("Việt Nam")[:6]
    b'<FEFF0'
    >>> pdf_date(dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC))
    b"(D:20260601120000+00'00')"
"""

from __future__ import annotations

import datetime as dt
import zlib


def text_string(text: str) -> bytes:
    """A PDF text string: PDFDocEncoding-safe ASCII as a literal, else UTF-16BE with BOM."""
    if text.isascii() and text.isprintable():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return b"(" + escaped.encode("ascii") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def pdf_date(when: dt.datetime) -> bytes:
    """Date string (section 7.9.4) in UTC."""
    return when.astimezone(dt.UTC).strftime("(D:%Y%m%d%H%M%S+00'00')").encode("ascii")


def stream(data: bytes, extra: bytes = b"", *, level: int = 6) -> bytes:
    """Flate-compressed stream object body."""
    flate = zlib.compress(data, level)
    return (
        b"<< /Length " + str(len(flate)).encode() + b" /Filter /FlateDecode" + extra
        + b" >>\nstream\n" + flate + b"\nendstream"
    )


def raw_stream(data: bytes, extra: bytes = b"") -> bytes:
    """Uncompressed stream object body (XMP metadata must stay readable)."""
    return (
        b"<< /Length " + str(len(data)).encode() + extra + b" >>\nstream\n" + data + b"\nendstream"
    )


def indirect(num: int, body: bytes) -> bytes:
    return f"{num} 0 obj\n".encode() + body + b"\nendobj\n"


def xref_table(offsets: list[int]) -> bytes:
    """Classic cross-reference table for objects 0..len(offsets) (offsets[0] is object 1)."""
    lines = [f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n"]
    lines.extend(f"{off:010d} 00000 n \n" for off in offsets)
    return "".join(lines).encode("ascii")
