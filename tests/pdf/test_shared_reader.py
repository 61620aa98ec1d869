"""verify_pdf parses a file once (verifier.pdf.budget.one_reader): its fast signature check,
page budget and vector QR share one pyHanko reader. Sharing must not change any verdict:
every committed tamper vector and a set of fresh tampered passports get the same verdict,
byte for byte, as with a reader of their own for each check."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.pdf import tamper
from tests.pdf.conftest import Issued, PdfPki
from verifier.pdf.budget import one_reader, page_work_problem, reader_for
from verifier.pdf.vector_qr import page_qr
from verifier.pdf.verify import _verify_pdf, verify_pdf
from verifier.trust import load_trust_material

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "pdf-tamper"


def test_one_reader_per_bytes_object_inside_the_scope_only(passport_a: Issued) -> None:
    data = passport_a.pdf
    copy = bytes(bytearray(data))  # equal bytes, another object
    assert reader_for(data) is not reader_for(data)  # outside: a reader each time
    with one_reader(data):
        shared = reader_for(data)
        assert reader_for(data) is shared
        assert reader_for(copy) is not shared and reader_for(copy) is not reader_for(copy)
        with one_reader(copy):  # nested: its own, then the outer one again
            assert reader_for(copy) is reader_for(copy) and reader_for(data) is not shared
        assert reader_for(data) is shared
        # the budget and the vector QR read the shared reader and still give their answers
        assert page_work_problem(data) is None
        found = page_qr(data)
        assert found is not None and found.texts == (passport_a.hc1,)
    assert reader_for(data) is not shared


def test_an_unreadable_file_is_not_kept() -> None:
    with one_reader(junk := b"%PDF-1.7\nnot a pdf"):
        for _ in range(2):
            with pytest.raises(Exception):  # noqa: B017 (pyHanko raises several types)
                reader_for(junk)
        assert page_work_problem(junk) == ("page_unrenderable", "page 1 cannot be read (PdfReadError)")


@pytest.mark.parametrize("folder", sorted(p for p in VECTORS.iterdir() if (p / "expected.json").is_file()),
                         ids=lambda p: p.name)  # fmt: skip
def test_vectors_same_verdict_shared_or_not(folder: Path, tmp_path: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text("utf-8"))
    at = dt.datetime.fromisoformat(expected["at"])
    data = (folder / "passport.pdf").read_bytes()
    for case in expected["cases"]:
        trust = load_trust_material([VECTORS / t for t in case["trust"]], now=at, state_dir=tmp_path)
        shared = verify_pdf(data, trust, now=at).to_json()
        alone = _verify_pdf(data, trust, now=at, fast_path=True).to_json()  # a reader per check
        assert shared == alone
        assert json.loads(shared)["valid"] is case["valid"]


def test_fresh_tampers_same_verdict_shared_or_not(passport_a: Issued, passport_b: Issued,
                                                  pdf_pki: PdfPki, tmp_path: Path) -> None:  # fmt: skip
    from tests.fixtures.pki import NOW

    trust = load_trust_material(pdf_pki.trust_files, now=NOW, state_dir=tmp_path)
    pdf = passport_a.pdf
    files = {
        "clean": pdf, "flip": tamper.flip_signed_byte(pdf), "page": tamper.add_page(pdf),
        "unsigned": tamper.remove_signature(pdf), "title": tamper.change_title_only(pdf),
        "metadata": tamper.change_metadata(pdf), "name": tamper.overwrite_name(pdf, x=200, y=600),
        "other": passport_b.pdf, "truncated": pdf[: len(pdf) // 2], "empty": b"",
    }  # fmt: skip
    valid = set()
    for name, data in files.items():
        shared = verify_pdf(data, trust, now=NOW).to_json()
        assert shared == _verify_pdf(data, trust, now=NOW, fast_path=True).to_json(), name
        if json.loads(shared)["valid"]:
            valid.add(name)
    assert valid == {"clean", "other"}
