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
from pyhanko.pdf_utils.misc import PdfReadError
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


class _CountingStream(io.BytesIO):
    """A stream that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        block = super().read(size)
        self.bytes_read += len(block)
        return block


def test_stops_at_a_bad_byte_like_pyhanko() -> None:
    # A hostile object stream repeats a string with a bad byte near its start and
    # its ">" megabytes later: the bulk reader must not scan to the ">" before
    # handing it to pyHanko (which stops at the bad byte), or a non-strict reader
    # pays megabytes per object.
    from verifier.pdf import hexstring

    data = b"<0G" + b"a" * (3 << 20) + b">"
    stream = _CountingStream(data)
    with pytest.raises(PdfReadError):
        read_hex_string_from_stream(stream)
    assert stream.bytes_read <= 2 * hexstring._CHUNK + 16
    _same(data)


def test_reload_keeps_pyhankos_reader_as_fallback() -> None:
    import importlib

    from verifier.pdf import hexstring

    reloaded = importlib.reload(hexstring)
    reloaded.install()
    try:
        _check_reloaded(reloaded)
    finally:
        generic.read_hex_string_from_stream = read_hex_string_from_stream


def _check_reloaded(reloaded: object) -> None:
    assert reloaded.pyhanko_read_hex_string is pyhanko_read_hex_string  # type: ignore[attr-defined]
    assert reloaded.pyhanko_read_hex_string.__module__ == generic.__name__  # type: ignore[attr-defined]
    assert _outcome(reloaded.read_hex_string_from_stream, b"<41 % c > x\n42>", 0) == _outcome(  # type: ignore[attr-defined]
        pyhanko_read_hex_string, b"<41 % c > x\n42>", 0
    )
