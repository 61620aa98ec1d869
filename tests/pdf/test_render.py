"""Render check (issue 3): page 1 rasterised by pdftoppm, the QR read back by zxing-cpp,
the text extracted by pdftotext; plus the page's structure and metadata."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pyhanko.pdf_utils.reader import PdfFileReader

from signer.pdf.font import REPERTOIRE, load_font, subset_font
from signer.pdf.qr import QrMatrix, qr_matrix
from signer.pdf.template import REQUIRED_FIELDS, load_template
from tests.pdf.conftest import CENTRE, PERSON_A, PERSON_B, SIGN_TIME, Issued, PdfPki, make_passport


def _pdftoppm(pdf: bytes, dpi: int) -> Image.Image:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.pdf"
        path.write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-png", "-f", "1", "-l", "1", "-singlefile", str(path),
             str(Path(tmp) / "page")],
            capture_output=True, check=True, timeout=60,
        )
        out = (Path(tmp) / "page.png").read_bytes()
    return Image.open(io.BytesIO(out))


def _pdftotext(pdf: bytes, *flags: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.pdf"
        path.write_bytes(pdf)
        return subprocess.run(
            ["pdftotext", "-enc", "UTF-8", *flags, str(path), "-"], capture_output=True, check=True,
            timeout=60,
        ).stdout.decode("utf-8")


def test_qr_decodes_from_raster_to_the_signed_hc1(passport_a: Issued) -> None:
    # 100 dpi is below a cheap office printer: the QR must still read back exactly.
    for dpi in (100, 200):
        found = zxingcpp.read_barcodes(_pdftoppm(passport_a.pdf, dpi))
        qr = [b for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]
        assert [b.text for b in qr] == [passport_a.hc1]
        assert qr[0].ec_level == "Q"


def test_text_extraction_keeps_vietnamese_diacritics(passport_a: Issued, passport_b: Issued) -> None:
    text_a = _pdftotext(passport_a.pdf)
    assert PERSON_A.full_name in text_a
    assert "CHỨNG NHẬN TIÊM CHỦNG COVID-19" in text_a
    assert "Trạm Y tế Phường Bến Nghé" in text_a
    text_b = _pdftotext(passport_b.pdf)
    assert "Trần Văn Đức" in text_b
    # every dose is listed, not only the latest
    for dose in PERSON_B.doses:
        assert dose.date in text_b and dose.lot in text_b


def test_all_labels_vietnamese_and_english(passport_a: Issued) -> None:
    template = load_template()
    text = " ".join(_pdftotext(passport_a.pdf).split())
    assert [f.key for f in template.fields] == list(REQUIRED_FIELDS)
    for label in (*template.fields, *template.issuer_fields):
        assert label.vi in text and label.en in text


def test_structure_a4_metadata_font_embedded_qr_vector(passport_a: Issued) -> None:
    reader = PdfFileReader(io.BytesIO(passport_a.pdf))
    root = reader.root
    assert str(root["/Lang"]) == "vi"
    info = reader.trailer["/Info"]
    assert "COVID-19" in str(info["/Title"]) and "EU DCC" in str(info["/Subject"])
    page = root["/Pages"]["/Kids"][0]
    assert [round(float(v)) for v in page["/MediaBox"]] == [0, 0, 595, 842]
    fonts = page["/Resources"]["/Font"]
    for name in ("/F1", "/F2"):
        desc = fonts[name]["/DescendantFonts"][0]["/FontDescriptor"]
        assert "/FontFile2" in desc  # embedded
        assert re.fullmatch(r"/[A-Z]{6}\+DejaVuSans.*", str(desc["/FontName"]))  # subset tag
    # no raster image anywhere: the QR is drawn with vector rectangles
    assert b"/Subtype /Image" not in passport_a.pdf
    contents = page["/Contents"]
    drawn = b"".join(c.get_object().data for c in contents)
    assert drawn.count(b" re") > 500
    xmp = root["/Metadata"].data.decode("utf-8")
    assert "<dc:language><rdf:Bag><rdf:li>vi</rdf:li>" in xmp


def test_font_covers_vietnamese() -> None:
    font = load_font("DejaVuSans.ttf", tag="VNDCCA")
    vietnamese = "ẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹĐđƠơƯư"
    assert font.supports(vietnamese)
    assert all(ord(c) in REPERTOIRE for c in vietnamese)
    # the subset is small: the whole font file is ~750 kB
    assert len(zlib.compress(font.font_file)) < 40_000


def test_qr_matrix_is_level_q() -> None:
    m = qr_matrix("HC1:" + "6BF+70790T9WJWG.FKY*4GO0.O1CV2" * 18)
    assert m.ec_level == "Q" and m.size == len(m.rows[0])
    # version >= 17 for ~550 alphanumerics at level Q (ISO/IEC 18004 table 7)
    assert (m.size - 17) // 4 >= 17


def test_name_outside_font_repertoire_is_a_clear_input_error(good_signer: object) -> None:
    import datetime as dt

    import pytest

    from signer.pdf import passport_data
    from verifier.errors import InputError

    dcc = {"nam": {"fn": "王", "gn": "小明"}, "dob": "1990-01-01",
           "v": [{"tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528",
                  "ma": "ORG-100030215", "dn": 1, "sd": 2, "dt": "2021-09-01", "co": "VN",
                  "is": "MoH", "ci": "URN:UVCI:01:VN:X#Y"}]}
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    data = passport_data(dcc=dcc, hc1="HC1:X", centre="c", issued_at=now, expires_at=now)
    with pytest.raises(InputError, match="U\\+738B"):
        good_signer.sign(data, now=now)  # type: ignore[attr-defined]


def test_centre_given_in_nfd_is_normalised_and_foreign_centre_refused(
    pdf_pki: PdfPki,
) -> None:
    # `--centre` typed on a system that sends NFD (decomposed accents): the
    # font has only precomposed letters, so every record used to fail with
    # "U+0323 is not in the passport font repertoire".
    import unicodedata

    import pytest

    from signer.pdf import PassportPdfSigner
    from verifier.errors import ConfigError

    nfd = unicodedata.normalize("NFD", CENTRE)
    assert nfd != CENTRE
    signer = PassportPdfSigner(pdf_pki.good, centre=nfd, crls=[pdf_pki.crl], now=SIGN_TIME)
    assert signer.centre == CENTRE and signer.location == CENTRE
    issued = make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=signer, centre=nfd)
    assert _pdftotext(issued.pdf).count(CENTRE) >= 2  # issuer field and signature box
    # a centre the font cannot show is a configuration error at start-up, not one per record
    with pytest.raises(ConfigError, match="centre"):
        PassportPdfSigner(pdf_pki.good, centre="卫生站", crls=[pdf_pki.crl], now=SIGN_TIME)


def test_all_dose_rows_stay_above_the_qr_code(pdf_pki: PdfPki, good_signer: object) -> None:
    # max_dose_rows (6) rows of 13 pt used to run 1.2 rows into the QR code and the
    # note: the sixth row was painted over by the QR's white background.
    import dataclasses

    from signer.records import Dose

    doses = tuple(
        Dose(f"2021-0{i + 1}-10", "AstraZeneca", f"LOTX{i}", i + 1, 6, "Trạm Y tế Phường 1")
        for i in range(6)
    )
    record = dataclasses.replace(PERSON_A, doses=doses)
    issued = make_passport(pdf_pki.good, record, crl=pdf_pki.crl, signer=good_signer)  # type: ignore[arg-type]
    template = load_template()
    qr_top = template.height - (template.margin + template.qr_size)  # pdftotext: y grows down
    html = _pdftotext(issued.pdf, "-bbox")
    lots = {
        m.group(2): float(m.group(1))
        for m in re.finditer(r'yMax="([\d.]+)">(LOTX\d)</word>', html)
    }
    assert sorted(lots) == [f"LOTX{i}" for i in range(6)]
    assert max(lots.values()) < qr_top


def test_template_with_more_dose_rows_than_fit_is_refused() -> None:
    import dataclasses

    import pytest

    from signer.pdf.layout import PageLayout
    from verifier.errors import ConfigError

    template = dataclasses.replace(load_template(), max_dose_rows=12)
    regular = load_font(template.font_regular, tag="VNDCCA")
    bold = load_font(template.font_bold, tag="VNDCCB")
    with pytest.raises(ConfigError, match="12 dose rows do not fit"):
        PageLayout.build(template, regular, bold)


def test_more_doses_than_rows_says_how_many_are_not_shown(pdf_pki: PdfPki, good_signer: object) -> None:
    """8 doses, 6 rows: the latest 5 are listed and a first row says '+3 earlier doses'."""
    import dataclasses

    from signer.records import Dose

    doses = tuple(
        Dose(f"2021-0{i + 1}-10", "AstraZeneca", f"LOTY{i}", i + 1, 8, "Trạm Y tế Phường 1")
        for i in range(8)
    )
    record = dataclasses.replace(PERSON_A, doses=doses)
    issued = make_passport(pdf_pki.good, record, crl=pdf_pki.crl, signer=good_signer)  # type: ignore[arg-type]
    text = _pdftotext(issued.pdf, "-layout")
    assert sorted(re.findall(r"LOTY\d", text)) == [f"LOTY{i}" for i in range(3, 8)]
    assert "+3 mũi trước đó / earlier doses" in text


def test_long_table_cells_are_shortened_inside_their_column(pdf_pki: PdfPki, good_signer: object) -> None:
    """A 90-character vaccination site is cut with '…' instead of running off the page."""
    import dataclasses

    from signer.records import Dose

    site = "Trạm Y tế Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh, điểm tiêm lưu động số 12 ZZEND"
    record = dataclasses.replace(
        PERSON_A, doses=(Dose("2021-08-02", "AstraZeneca", "ABV5811", 1, 2, site),)
    )
    issued = make_passport(pdf_pki.good, record, crl=pdf_pki.crl, signer=good_signer)  # type: ignore[arg-type]
    template = load_template()
    html = _pdftotext(issued.pdf, "-bbox")
    right_edges = [float(m) for m in re.findall(r'xMax="([\d.]+)"', html)]
    assert max(right_edges) <= template.width - template.margin + 1
    assert "ZZEND" not in html and "…" in html


def test_font_subset_equals_plain_fonttools_subsetting(monkeypatch: pytest.MonkeyPatch) -> None:
    """load_font removes the tables the subsetter drops before it runs (faster); the
    subset font is byte for byte what fontTools' subsetter gives on the whole font."""
    import io
    from importlib import resources

    from fontTools import subset
    from fontTools.ttLib import TTFont

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # head.modified: fixed for both
    for name in ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"):
        font = TTFont(io.BytesIO(resources.files("templates").joinpath("fonts", name).read_bytes()), recalcTimestamp=False)
        opts = subset.Options()
        opts.hinting = False
        opts.layout_features = []
        opts.notdef_outline = True
        opts.glyph_names = False
        opts.name_IDs = [0, 1, 2, 3, 4, 5, 6]
        opts.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "MATH"]
        subsetter = subset.Subsetter(opts)
        subsetter.populate(unicodes=REPERTOIRE)
        subsetter.subset(font)
        out = io.BytesIO()
        font.save(out)
        raw = resources.files("templates").joinpath("fonts", name).read_bytes()
        ours = subset_font(raw, name, tag="VNDCCA")
        assert ours.font_file == out.getvalue()
        assert ours.base_name == "VNDCCA+" + ("DejaVuSans-Bold" if "Bold" in name else "DejaVuSans")


def test_font_cache_between_processes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The subset font and its metrics come back from the file cache equal to a fresh
    subset; a damaged entry is made again; a warm cache spares fontTools.subset."""
    import json
    import sys

    cache = tmp_path / "fonts"
    monkeypatch.setenv("VNDCC_FONT_CACHE", str(cache))
    load_font.cache_clear()
    try:
        first = load_font("DejaVuSans.ttf", tag="VNDCCA")  # miss: subset and stored
        (entry,) = cache.glob("*.json")
        load_font.cache_clear()
        again = load_font("DejaVuSans.ttf", tag="VNDCCA")  # hit
        assert again == first
        assert load_font("DejaVuSans.ttf", tag="VNDCCB").base_name == "VNDCCB+DejaVuSans"
        data = json.loads(entry.read_text())
        data["widths"][0][1] += 1  # a damaged entry: refused by its checksum, made again
        entry.write_text(json.dumps(data))
        load_font.cache_clear()
        assert load_font("DejaVuSans.ttf", tag="VNDCCA") == first
        assert json.loads(entry.read_text())["widths"][0][1] == data["widths"][0][1] - 1
        entry.write_text("not json")
        load_font.cache_clear()
        assert load_font("DejaVuSans.ttf", tag="VNDCCA") == first
        code = (
            "import sys; from signer.pdf.font import load_font; "
            "load_font('DejaVuSans.ttf', tag='VNDCCA'); "
            "print('fontTools.subset' in sys.modules)"
        )
        env = {"VNDCC_FONT_CACHE": str(cache), "PATH": "/usr/bin:/bin"}
        warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert warm.stdout.strip() == "False"
    finally:
        load_font.cache_clear()


def test_font_subset_is_the_same_in_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The subset keeps the source font's timestamp (not the time of the run), so two
    subsets a second apart are equal bytes: same PDF for the same input, stable cache."""
    import time
    from importlib import resources

    from signer.pdf.font import subset_font

    raw = resources.files("templates").joinpath("fonts", "DejaVuSans.ttf").read_bytes()
    first = subset_font(raw, "DejaVuSans.ttf", tag="VNDCCA").font_file
    time.sleep(1.1)
    assert subset_font(raw, "DejaVuSans.ttf", tag="VNDCCA").font_file == first


def test_font_cache_refuses_what_others_could_have_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The cached glyph table decides which letters a signed passport shows: an entry in a
    folder or file others can write, a symlink, a non-object entry, or an entry whose
    font name would inject PDF syntax (with its checksum recomputed) is not used."""
    import json
    import os

    from signer.pdf import font as fontmod

    cache = tmp_path / "fonts"
    monkeypatch.setenv("VNDCC_FONT_CACHE", str(cache))
    load_font.cache_clear()
    try:
        first = load_font("DejaVuSans.ttf", tag="VNDCCA")
        (entry,) = cache.glob("*.json")
        good = entry.read_text()
        swapped = json.loads(good)  # A and B swapped, checksum recomputed: a forged entry
        ids = dict((cp, gid) for cp, gid in swapped["glyph_ids"])
        ids[65], ids[66] = ids[66], ids[65]
        swapped["glyph_ids"] = [list(pair) for pair in sorted(ids.items())]
        swapped["sha256"] = fontmod._entry_digest({k: v for k, v in swapped.items() if k != "sha256"})

        def loads_forged() -> bool:
            load_font.cache_clear()
            return load_font("DejaVuSans.ttf", tag="VNDCCA").encode("AB") != first.encode("AB")

        for mode in (0o620, 0o602):  # the file writable by group / others
            entry.write_text(json.dumps(swapped))
            os.chmod(entry, mode)
            assert not loads_forged(), oct(mode)
            entry.unlink()
            load_font.cache_clear()
            load_font("DejaVuSans.ttf", tag="VNDCCA")  # a fresh entry again
        os.chmod(cache, 0o777)  # the folder writable by others: neither read nor written
        entry.write_text(json.dumps(swapped))
        os.chmod(entry, 0o600)
        assert not loads_forged()
        assert json.loads(entry.read_text()) == swapped  # left alone, not rewritten
        os.chmod(cache, 0o700)
        target = tmp_path / "elsewhere.json"  # a symlink planted in place of the entry
        target.write_text(json.dumps(swapped))
        entry.unlink()
        entry.symlink_to(target)
        assert not loads_forged()
        entry.unlink()
        for bad in ("[]", "1", json.dumps({**json.loads(good), "ps_name": "X /JS (app.alert(1))"})):
            data = json.loads(bad)
            if isinstance(data, dict):
                data["sha256"] = fontmod._entry_digest({k: v for k, v in data.items() if k != "sha256"})
                bad = json.dumps(data)
            entry.write_text(bad)
            os.chmod(entry, 0o600)
            load_font.cache_clear()
            assert load_font("DejaVuSans.ttf", tag="VNDCCA") == first, bad[:40]
        # the same user's own entry is trusted (as the same user's own code would be)
        entry.write_text(json.dumps(swapped))
        os.chmod(entry, 0o600)
        assert loads_forged()
    finally:
        load_font.cache_clear()


def _drawing_spelled_out(matrix: QrMatrix, *, x: float, y: float, size: float, quiet_zone: int) -> bytes:
    """The QR drawing's operators written out module by module (the reference)."""
    n = matrix.size
    module = size / (n + 2 * quiet_zone)
    ops = [
        b"q 1 g %.2f %.2f %.2f %.2f re f 0 g" % (x, y, size, size),
        b"%.5f 0 0 %.5f %.3f %.3f cm 1 0 0 1 0 %d cm"
        % (module, module, x + quiet_zone * module, y + quiet_zone * module, n - 1),
    ]
    for row in matrix.rows:
        rects = b""
        c = 0
        while c < n:
            if row[c] == 0:
                start = c
                while c < n and row[c] == 0:
                    c += 1
                rects += b"%d 0 %d 1 re " % (start, c - start)
            else:
                c += 1
        ops.append(rects + b"f 1 0 0 1 0 -1 cm" if rects else b"1 0 0 1 0 -1 cm")
    ops.append(b"Q")
    return b"\n".join(ops)


def test_qr_drawing_in_one_pass_equals_the_module_by_module_drawing() -> None:
    """qr_drawing (every run found in one pass by bytes.split, runs through row ends split again)
    gives the operators written out module by module: real symbols, random matrices
    of every size class, rows all dark (a run through two row ends), rows all light
    (drawn row by row) and dark first/last modules."""
    import random

    from signer.pdf.qr import drawing_by_rows, qr_drawing

    rng = random.Random(7)
    matrices = [qr_matrix("HC1:" + "".join(rng.choice("0123456789ABCDEF") for _ in range(k))) for k in (20, 300, 640)]
    for n in (21, 25, 85, 177):
        for dark_share in (0.05, 0.5, 0.95):
            rows = [bytes(0 if rng.random() < dark_share else 255 for _ in range(n)) for _ in range(n)]
            matrices.append(QrMatrix(size=n, rows=tuple(rows), ec_level="Q"))
    n = 29
    rows = [bytes(0 if rng.random() < 0.5 else 255 for _ in range(n)) for _ in range(n)]
    rows[3] = bytes(n)  # all dark: the run goes through two row ends
    rows[4] = bytes(n)
    rows[10] = b"\x00" + bytes([255] * (n - 2)) + b"\x00"
    matrices.append(QrMatrix(size=n, rows=tuple(rows), ec_level="Q"))
    rows[20] = bytes([255] * n)  # no dark module: drawn row by row
    matrices.append(QrMatrix(size=n, rows=tuple(rows), ec_level="Q"))
    for matrix in matrices:
        for where in ((36.0, 40.5, 150.0, 4), (0.0, 0.0, 99.99, 6)):
            x, y, size, quiet = where
            expected = _drawing_spelled_out(matrix, x=x, y=y, size=size, quiet_zone=quiet)
            assert qr_drawing(matrix, x=x, y=y, size=size, quiet_zone=quiet) == expected
            assert drawing_by_rows(matrix, x=x, y=y, size=size, quiet_zone=quiet) == expected
