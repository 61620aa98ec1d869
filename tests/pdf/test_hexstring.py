"""verifier/pdf/hexstring.py reads a PDF hex string exactly as pyHanko's own reader:
the same object (type, value, original bytes), the same stream position after it,
the same error (type and message) when pyHanko refuses it; and it is the one the PDF
reader uses once the verifier's PDF checks are imported."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader

from verifier.pdf import budget  # noqa: F401  (installs the bulk reader)
from verifier.pdf.hexstring import pyhanko_read_hex_string, read_hex_string_from_stream

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "pdf-tamper"


def _outcome(read: object, data: bytes, at: int) -> tuple[object, ...]:
    stream = io.BytesIO(data)
    stream.seek(at)
    try:
        value = read(stream)  # type: ignore[operator]
    except Exception as err:
        return ("error", type(err), str(err), stream.tell())
    original = value.original_bytes if hasattr(value, "original_bytes") else None
    return (type(value), value, original, getattr(value, "autodetected_encoding", None), stream.tell())


def _same(data: bytes, at: int = 0) -> None:
    assert _outcome(read_hex_string_from_stream, data, at) == _outcome(pyhanko_read_hex_string, data, at)


def test_installed_in_pyhankos_reader() -> None:
    assert generic.read_hex_string_from_stream is read_hex_string_from_stream


@pytest.mark.parametrize("data", [
    b"<>", b"<4>", b"<41>", b"<414>", b"< 4 1\n4\r2\t4\x0c3\x00>", b"<FEFF0041>", b"<feff00e9>",
    b"<EFBBBF41>", b"<00>", b"<41> tail", b"<41>>", b"<41", b"<", b"<4g>", b"<41 % c > x\n42>",
    b"<41%>\n42>", b"<41 %>", b"<41 <42>", b"<41\xff>", b"<" + b"0" * 200_000 + b">",
    b"<" + b"a" * 131_071 + b">", b"<" + b"1 " * 70_000,
])  # fmt: skip
def test_cases(data: bytes) -> None:
    _same(data)
    _same(b"xx" + data, at=2)


_ALPHABET = st.sampled_from(list(b"0123456789abcdefABCDEF \n\r\t\x0c\x00%>gG<\xff"))


@settings(max_examples=500, deadline=None)
@given(st.lists(_ALPHABET, max_size=80), st.binary(max_size=8))
def test_generated(body: list[int], tail: bytes) -> None:
    _same(b"<" + bytes(body) + tail)


@pytest.mark.parametrize("name", ["clean", "b-lt-clean", "b-lta-clean", "digest-mismatch"])
def test_passport_signatures(name: str) -> None:
    data = (VECTORS / name / "passport.pdf").read_bytes()
    at = data.find(b"/Contents <") + len(b"/Contents ")
    _same(data, at)
    # the signature dictionary as the reader gives it: the same /Contents either way
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    field = next(f.get_object() for f in reader.root["/AcroForm"]["/Fields"] if f.get_object().get("/V"))
    contents = field["/V"].raw_get("/Contents")
    assert contents.original_bytes == pyhanko_read_hex_string(io.BytesIO(data[at:])).original_bytes
