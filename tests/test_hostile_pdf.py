"""``verifier pdf`` bounds the drawing work and the time spent on one file.

Fuzzing (issue 8, point 5) found a 329 KB PDF with a 10-million-operation
content stream that kept ``verifier pdf`` busy 21 to 60 s (poppler rendered
it, then read its text, each with a 30 s limit). Page 1's drawing work is now
measured before it is rendered (:mod:`verifier.pdf.budget`: operations, decoded
bytes, forms drawn by forms) and poppler's work on one file shares a time
budget; either answers invalid with the reason ``page_too_complex``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from tests.fixtures.pki import NOW
from tests.pdf import conftest as pdf_fixtures
from tests.pdf.conftest import Issued, PdfPki
from verifier.pdf import budget, verify
from verifier.pdf.budget import (
    MAX_CONTENT_OPS,
    MAX_PDF_OBJECTS,
    PDF_TOO_COMPLEX,
    TOO_COMPLEX,
    UNRENDERABLE,
    file_structure_problem,
    page_work_problem,
)
from verifier.pdf.verify import verify_pdf

ROOT = Path(__file__).resolve().parents[1]
# the signed passports of tests/pdf (session fixtures), usable here
pdf_pki = pdf_fixtures.pdf_pki
good_signer = pdf_fixtures.good_signer
passport_a = pdf_fixtures.passport_a
#: Three operations per line: 10 million operations in about 46 MB, a few hundred KB compressed.
LINE = b"0 0 m 1 1 l S\n"
TEN_MILLION = LINE * (10_000_000 // 3)


def stream(content: bytes, *, entries: bytes = b"", compress: bool = True) -> bytes:
    if compress:
        content = zlib.compress(content, 6)
        entries += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(content), entries) + content + b"\nendstream"


def make_pdf(contents: bytes, *, page_extra: bytes = b"", objects: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF: object 4 is the content stream, objects 5.. are ``objects``."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R %s >>" % page_extra,
        contents,
        *objects,
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def form(content: bytes, resources: bytes = b"") -> bytes:
    extra = b" /Type /XObject /Subtype /Form /BBox [0 0 10 10]"
    if resources:
        extra += b" /Resources " + resources
    return stream(content, entries=extra)


def reasons(verdict: verify.PdfVerdict) -> dict[str, str]:
    return {e.check: e.reason for e in verdict.errors}


@pytest.fixture(scope="module")
def ten_million_pdf() -> bytes:
    data = make_pdf(stream(TEN_MILLION))
    assert len(data) < 400_000  # small on disk, like the fuzzer's 329 KB file
    return data


# --------------------------------------------------------------------------
# the fuzzer's case, through the real command line


def test_ten_million_operations_cli(ten_million_pdf: bytes, pdf_pki: PdfPki, tmp_path: Path) -> None:
    path = tmp_path / "ops.pdf"
    path.write_bytes(ten_million_pdf)
    env = {
        **os.environ,
        "VNDCC_VERIFIER_STATE": str(tmp_path / "state"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    trust = [a for f in pdf_pki.trust_files for a in ("--trust", str(f))]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "pdf", *trust, "--json", "--at", NOW.isoformat(),
         str(path)],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        check=False,
    )  # fmt: skip
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert done.stderr == "" and len(done.stdout.splitlines()) == 1
    verdict = json.loads(done.stdout)
    assert verdict["valid"] is False and verdict["checks"]["qr"] is False
    assert {"check": "qr", "reason": TOO_COMPLEX} in [
        {"check": e["check"], "reason": e["reason"]} for e in verdict["errors"]
    ]
    assert took < 20  # interpreter and pyHanko start-up included; was 21 to 60 s


def test_ten_million_operations_in_process(ten_million_pdf: bytes, pdf_pki: PdfPki) -> None:
    started = time.monotonic()
    verdict = verify_pdf(ten_million_pdf, pdf_pki.trust(), now=NOW)
    assert time.monotonic() - started < 5
    assert not verdict.valid and reasons(verdict)["qr"] == TOO_COMPLEX


def _append_content(pdf: bytes, content: bytes) -> bytes:
    """An incremental update adding a content stream to page 1 of a signed passport."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page_ref = writer.root["/Pages"]["/Kids"].raw_get(0)
    page = page_ref.get_object()
    added = generic.StreamObject(stream_data=content)
    added.compress()
    ref = writer.add_object(added)
    page["/Contents"] = generic.ArrayObject([*list(page["/Contents"]), ref])
    writer.mark_update(page_ref)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_signed_passport_with_ten_million_operations_appended(
    passport_a: Issued, pdf_pki: PdfPki
) -> None:
    """The realistic attack: a valid passport plus an incremental update that draws a lot."""
    hostile = _append_content(passport_a.pdf, TEN_MILLION)
    assert len(hostile) < len(passport_a.pdf) + 400_000
    started = time.monotonic()
    verdict = verify_pdf(hostile, pdf_pki.trust(), now=NOW)
    assert time.monotonic() - started < 5
    assert not verdict.valid
    assert reasons(verdict)["qr"] == TOO_COMPLEX
    assert verdict.checks["pdf_modifications"] is False


def test_genuine_passport_is_far_below_the_budget(passport_a: Issued) -> None:
    assert file_structure_problem(passport_a.pdf) is None
    meter = budget._Meter()
    meter.measure(passport_a.pdf)
    assert 100 < meter.ops * 10 < MAX_CONTENT_OPS
    assert meter.bytes * 20 < budget.MAX_CONTENT_BYTES
    assert page_work_problem(passport_a.pdf) is None


# --------------------------------------------------------------------------
# what the meter counts


def test_many_operations_in_few_bytes() -> None:
    content = b"0 0 m " * (MAX_CONTENT_OPS + 1)  # 600 KB: under the byte limit
    assert len(content) < budget.MAX_CONTENT_BYTES
    problem = page_work_problem(make_pdf(stream(content)))
    assert problem is not None and problem[0] == TOO_COMPLEX and "operations" in problem[1]
    assert page_work_problem(make_pdf(stream(b"0 0 m " * 1000))) is None


def test_flate_bomb_stops_at_the_byte_limit() -> None:
    zeros = zlib.compress(b" " * 300_000_000, 9)  # 300 MB of spaces in about 300 KB
    data = make_pdf(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(zeros) + zeros
                    + b"\nendstream")  # fmt: skip
    started = time.monotonic()
    problem = page_work_problem(data)
    assert time.monotonic() - started < 2
    assert problem is not None and problem[0] == TOO_COMPLEX and "bytes" in problem[1]


def test_a_form_drawn_many_times_counts_each_time() -> None:
    thousand = form(b"0 0 m " * 1000)
    draws = b"/X Do\n" * 200  # 1.2 KB of content, 200,000 operations drawn
    data = make_pdf(
        stream(draws), page_extra=b"/Resources << /XObject << /X 5 0 R >> >>", objects=(thousand,)
    )
    problem = page_work_problem(data)
    assert problem is not None and problem[0] == TOO_COMPLEX


def test_nested_forms_multiply() -> None:
    """A draws B 100 times, B draws C 100 times, C has 100 operations: a million."""
    c = form(b"0 0 m " * 100)
    b = form(b"/C Do " * 100, b"<< /XObject << /C 7 0 R >> >>")
    a = form(b"/B Do " * 100, b"<< /XObject << /B 6 0 R >> >>")
    data = make_pdf(
        stream(b"/A Do"), page_extra=b"/Resources << /XObject << /A 5 0 R >> >>", objects=(a, b, c)
    )
    problem = page_work_problem(data)
    assert problem is not None and problem[0] == TOO_COMPLEX


def test_a_form_that_draws_itself() -> None:
    loop = form(b"/A Do", b"<< /XObject << /A 5 0 R >> >>")
    data = make_pdf(
        stream(b"/A Do"), page_extra=b"/Resources << /XObject << /A 5 0 R >> >>", objects=(loop,)
    )
    assert page_work_problem(data) == (TOO_COMPLEX, "a form XObject of page 1 draws itself")


def test_annotation_appearances_count() -> None:
    widget = b"<< /Type /Annot /Subtype /Widget /Rect [0 0 10 10] /AP << /N 6 0 R >> >>"
    appearance = form(LINE * 200_000)  # 600,000 operations
    data = make_pdf(
        stream(b"0 0 m"), page_extra=b"/Annots [5 0 R]", objects=(widget, appearance)
    )
    problem = page_work_problem(data)
    assert problem is not None and problem[0] == TOO_COMPLEX


def test_inherited_resources_and_nested_page_tree() -> None:
    """Resources on the Pages node count (poppler inherits them) as on the page."""
    thousand = form(b"0 0 m " * 1000)
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Resources << /XObject << /X 6 0 R >> >> >>",
        b"<< /Type /Pages /Parent 2 0 R /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 3 0 R /MediaBox [0 0 595 842] /Contents 5 0 R >>",
        stream(b"/X Do\n" * 200),
        thousand,
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 7\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 7 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    problem = page_work_problem(bytes(out))
    assert problem is not None and problem[0] == TOO_COMPLEX


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\ngarbage",
        make_pdf(stream(b"0 0 m", compress=False, entries=b" /Filter /ASCIIHexDecode")),
        make_pdf(stream(b"0 0 m"))[: 200],
    ],
    ids=["garbage", "other-filter", "truncated"],
)
def test_unreadable_pages_are_not_rendered(data: bytes) -> None:
    problem = page_work_problem(data)
    assert problem is not None and problem[0] == UNRENDERABLE


# --------------------------------------------------------------------------
# the time budget: what the meter does not count is still bounded


def test_rendering_is_killed_at_the_time_budget(
    monkeypatch: pytest.MonkeyPatch, pdf_pki: PdfPki
) -> None:
    """With the meter off, a form of 10 million operations drawn 50 times: killed at the budget."""
    monkeypatch.setattr(verify, "page_work_problem", lambda data: None)
    monkeypatch.setattr(verify, "TIME_BUDGET", 1.0)
    data = make_pdf(
        stream(b"/X Do\n" * 50),
        page_extra=b"/Resources << /XObject << /X 5 0 R >> >>",
        objects=(form(TEN_MILLION),),
    )
    started = time.monotonic()
    verdict = verify_pdf(data, pdf_pki.trust(), now=NOW)
    assert time.monotonic() - started < 8
    assert reasons(verdict)["qr"] == TOO_COMPLEX
    assert "in time" in next(e.message for e in verdict.errors if e.check == "qr")


# --------------------------------------------------------------------------
# the file's structure, bounded before pyHanko parses it


def _xref_stream_pdf(size: bytes, *, index: bytes = b"") -> bytes:
    """A tiny PDF whose cross-reference stream declares ``size`` entries (all but 5 empty)."""
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    rows = b"\x00\x00\x00\x00\x00\xff" + b"".join(
        b"\x01" + o.to_bytes(4, "big") + b"\x00" for o in [*offsets, xref]
    )
    rows += bytes(6 * 3_000_000)
    packed = zlib.compress(rows, 9)
    out += (
        b"4 0 obj\n<< /Type /XRef /Size " + size + index
        + b" /W [1 4 1] /Root 1 0 R /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
        + packed + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref
    )  # fmt: skip
    return bytes(out)


@pytest.mark.parametrize(
    ("size", "index"),
    [(b"3000000", b""), (b"5", b" /Index [0 3000000]"), (b"4 0 R", b""), (b"5", b" /Index [0 5 0 R]")],
    ids=["size", "index", "indirect-size", "indirect-index"],
)
def test_a_huge_cross_reference_stream_is_refused_unparsed(
    size: bytes, index: bytes, pdf_pki: PdfPki
) -> None:
    """18 KB declaring 3 million objects: pyHanko took 34 s to read its cross-references."""
    data = _xref_stream_pdf(size, index=index)
    assert len(data) < 50_000
    started = time.monotonic()
    verdict = verify_pdf(data, pdf_pki.trust(), now=NOW)
    assert time.monotonic() - started < 3
    assert reasons(verdict) == {"pdf_signature": PDF_TOO_COMPLEX, "qr": TOO_COMPLEX}


def test_objects_appended_after_signing_are_counted(passport_a: Issued, pdf_pki: PdfPki) -> None:
    """pyHanko's modification analysis reads every appended object (200,000: 26 s)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(passport_a.pdf))
    junk = generic.ArrayObject(
        [writer.add_object(generic.NumberObject(i)) for i in range(MAX_PDF_OBJECTS + 1)]
    )
    writer.root["/Junk"] = writer.add_object(junk)
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    started = time.monotonic()
    verdict = verify_pdf(out.getvalue(), pdf_pki.trust(), now=NOW)
    assert time.monotonic() - started < 3
    assert reasons(verdict)["pdf_signature"] == PDF_TOO_COMPLEX and not verdict.valid


def test_many_revisions_are_refused(passport_a: Issued) -> None:
    data = passport_a.pdf
    for n in range(budget.MAX_REVISIONS + 1):
        writer = IncrementalPdfFileWriter(io.BytesIO(data))
        writer.root["/Junk"] = generic.NumberObject(n)
        writer.update_root()
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    problem = file_structure_problem(data)
    assert problem is not None and problem[0] == PDF_TOO_COMPLEX and "revisions" in problem[1]


def test_structure_check_is_fast_on_20_mb() -> None:
    for data in (
        b"%PDF-1.7\n" + b"x" * 20_000_000,
        b"%PDF-1.7\n" + bytes(range(256)) * 80_000,
        b"%PDF-1.7\n" + b"stream" * 3_000_000,
        b"%PDF-1.7\n" + b"xref " * 4_000_000,
        b"%PDF-1.7\n" + b"/Index [" * 2_000_000,
    ):
        started = time.monotonic()
        problem = file_structure_problem(data)
        assert problem is None or problem[0] == PDF_TOO_COMPLEX
        assert time.monotonic() - started < 2


def test_a_huge_object_appended_after_signing(passport_a: Issued, pdf_pki: PdfPki) -> None:
    """An array of 300,000 numbers (3 million, 6 MB, took pyHanko 20 to 45 s and 900 MB)."""
    writer = IncrementalPdfFileWriter(io.BytesIO(passport_a.pdf))
    writer.root["/Junk"] = writer.add_object(
        generic.ArrayObject([generic.NumberObject(i % 10) for i in range(300_000)])
    )
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    started = time.monotonic()
    verdict = verify_pdf(out.getvalue(), pdf_pki.trust(), now=NOW)
    assert time.monotonic() - started < 3
    assert reasons(verdict)["pdf_signature"] == PDF_TOO_COMPLEX


def test_the_command_line_cuts_off_at_its_wall_limit(
    monkeypatch: pytest.MonkeyPatch, pdf_pki: PdfPki, passport_a: Issued
) -> None:
    """Whatever the bounds miss, ``verifier pdf`` answers invalid after WALL_LIMIT seconds."""
    from verifier.pdf import cli as pdf_cli

    def slow(*_: object, **__: object) -> None:
        time.sleep(30)

    monkeypatch.setattr(verify, "_signature_report", slow)
    monkeypatch.setattr(pdf_cli, "WALL_LIMIT", 0.5)
    started = time.monotonic()
    verdict = pdf_cli._verify_within_limit(passport_a.pdf, pdf_pki.trust(), NOW)
    assert time.monotonic() - started < 3
    assert not verdict.valid and reasons(verdict) == {"pdf_signature": PDF_TOO_COMPLEX}
    json.loads(verdict.to_json())
