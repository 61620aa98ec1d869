"""The QR read from the page's vector drawing (verifier/pdf/vector_qr.py) equals the one
rendered by pdftoppm and decoded by zxing-cpp, and anything it does not fully model
(another drawing over the QR, a second grid, images) makes it step aside (None), so
the page is rendered as before."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.pdf import tamper
from tests.pdf.conftest import PERSON_B, Issued, PdfPki, make_passport
from verifier.pdf.extract import render_qr_texts
from verifier.pdf.vector_qr import page_qr, qr_from_drawing

A4 = (0.0, 0.0, 595.28, 841.89)


def test_drawing_equals_rendering(passport_a: Issued, passport_b: Issued, pdf_pki: PdfPki) -> None:
    rsa = make_passport(pdf_pki.rsa, PERSON_B, crl=pdf_pki.crl, centre="Trung tâm Y tế Quận Hoàn Kiếm")
    for issued in (passport_a, passport_b, rsa):
        drawn = page_qr(issued.pdf)
        assert drawn is not None
        rendered = render_qr_texts(issued.pdf)
        assert rendered is not None
        assert drawn.texts == rendered.texts == (issued.hc1,)
        assert drawn.ec_levels == rendered.ec_levels == ("Q",)


def _append_content(pdf: bytes, ops: bytes) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    ref = writer.add_object(generic.StreamObject(stream_data=ops))
    page["/Contents"] = generic.ArrayObject([*list(page["/Contents"]), ref])
    writer.mark_update(page_ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_anything_over_the_qr_steps_aside(passport_a: Issued) -> None:
    # the QR is in the lower left corner (about x 30..246, y 36..252)
    for ops in (
        b"q 1 g 100 100 7 7 re f Q",                        # a white patch off the grid
        b"0 g 60 60 m 200 200 l S",                          # a stroke across it
        b"BT /F1 12 Tf 120 150 Td <0024> Tj ET",             # text over it
        b"q 0.5 g 100 100 20 20 re f Q",                     # a grey fill
        b"/Im1 Do",                                          # an image (not modelled)
    ):
        assert page_qr(_append_content(passport_a.pdf, ops)) is None, ops
    # a name painted elsewhere (tamper.overwrite_name) leaves the QR readable
    forged = tamper.overwrite_name(passport_a.pdf, x=212, y=600)
    drawn = page_qr(forged)
    assert drawn is not None and drawn.texts == (passport_a.hc1,)


def test_second_grid_steps_aside(passport_a: Issued) -> None:
    second = b"0 g 400 400 7 7 re f 410 410 3 3 re f"
    assert page_qr(_append_content(passport_a.pdf, second)) is None


def test_no_qr() -> None:
    assert qr_from_drawing(b"BT /F1 9 Tf 10 10 Td (x) Tj ET", A4, []) is None
    assert qr_from_drawing(b"0 g 10 10 5 5 re f", A4, []) is None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_content_never_raises(content: bytes) -> None:
    qr_from_drawing(content, A4, [])


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=40_000), st.binary(min_size=1, max_size=8))
def test_corrupted_passport_content_never_raises(passport_a: Issued, at: int, junk: bytes) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    page = PdfFileReader(io.BytesIO(passport_a.pdf)).root["/Pages"]["/Kids"][0]
    content = b"\n".join(s.get_object().data for s in page["/Contents"])
    at %= len(content)
    result = qr_from_drawing(content[:at] + junk + content[at + len(junk):], A4, [])
    assert result is None or len(result.texts) == 1


def test_page_text_from_the_drawing_matches_pdftotext(passport_a: Issued, passport_b: Issued) -> None:
    from verifier.pdf.extract import page_text
    from verifier.pdf.match import compare_document

    for issued in (passport_a, passport_b):
        drawn = page_qr(issued.pdf)
        assert drawn is not None and drawn.page_text is not None
        poppler = page_text(issued.pdf)
        assert poppler is not None
        norm = " ".join(drawn.page_text.split())
        for line in poppler.splitlines():  # every run of text poppler sees, we see
            for part in line.split("  "):
                if part.strip():
                    assert " ".join(part.split()) in norm, part
        import cbor2

        from verifier.codec import decode_sign1, from_qr_text

        payload = cbor2.loads(decode_sign1(from_qr_text(issued.hc1)).payload)
        dcc = payload[-260][1]
        assert compare_document(dcc, drawn.page_text) == compare_document(dcc, poppler) == []


def test_hostile_tokens_are_linear() -> None:
    # regular-expression backtracking must stay linear (the content is at most 4 MB)
    import time

    for content in (
        b"1 1 1 " + b"9" * 400_000 + b" x",
        b"1 1 1 " + b"9" * 200_000 + b"." + b"9" * 200_000 + b" x",
        b"<" + b"0" * 400_000,
        b"(" * 200_000,
        b"(" + b"\\" * 400_001,
        b" " * 1_000_000 + b")",
    ):
        started = time.process_time()
        assert qr_from_drawing(content, A4, []) is None
        assert time.process_time() - started < 2.0
