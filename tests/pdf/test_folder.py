"""Folder mode (issue 13): `verifier pdf --json DIR` and `verifier qr --image DIR` write one
JSON line per file, in sorted order, in parallel (--jobs), with progress on stderr;
exit 0 when all are valid, 1 otherwise; a bad trust file is still exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from signer.qr import qr_png
from tests.fixtures.pki import NOW
from tests.pdf import tamper
from tests.pdf.conftest import Issued, PdfPki

ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VNDCC_VERIFIER_STATE": str(tmp / "state")}
    return subprocess.run([sys.executable, "-m", "verifier", *args], capture_output=True, text=True,
                          timeout=300, check=False, cwd=ROOT, env=env)  # fmt: skip


def _trust(pki: PdfPki) -> list[str]:
    return [a for f in pki.trust_files for a in ("--trust", str(f))]


def test_pdf_folder_json_lines(passport_a: Issued, passport_b: Issued, pdf_pki: PdfPki,
                               tmp_path: Path) -> None:  # fmt: skip
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.pdf").write_bytes(passport_a.pdf)
    (folder / "sub" / "b.pdf").write_bytes(passport_b.pdf)
    (folder / "c.pdf").write_bytes(tamper.change_metadata(passport_a.pdf))
    (folder / "d.pdf").write_bytes(b"%PDF-1.7 garbage")
    (folder / "notes.txt").write_text("not a pdf")
    for jobs in ("1", "2"):
        done = _run(["pdf", *_trust(pdf_pki), "--at", NOW.isoformat(), "--json", "--jobs", jobs,
                     str(folder)], tmp_path)  # fmt: skip
        assert done.returncode == 1, done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert [Path(d["file"]).relative_to(folder).as_posix() for d in lines] == [
            "a.pdf", "c.pdf", "d.pdf", "sub/b.pdf"
        ]
        assert [d["valid"] for d in lines] == [True, False, False, True]
        assert lines[1]["checks"]["pdf_modifications"] is False
        assert "4/4 files, 2 valid, 2 invalid" in done.stderr


def test_pdf_folder_all_valid_and_human(passport_a: Issued, pdf_pki: PdfPki, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(passport_a.pdf)
    done = _run(["pdf", *_trust(pdf_pki), "--at", NOW.isoformat(), str(folder)], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{folder / 'a.pdf'}: VALID"


def test_bad_trust_is_exit_2(passport_a: Issued, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(passport_a.pdf)
    (tmp_path / "junk.pem").write_text("junk")
    done = _run(["pdf", "--trust", str(tmp_path / "junk.pem"), "--json", str(folder)], tmp_path)
    assert done.returncode == 2 and done.stdout == ""


def test_qr_image_folder(passport_a: Issued, passport_b: Issued, pdf_pki: PdfPki, tmp_path: Path) -> None:
    folder = tmp_path / "img"
    folder.mkdir()
    (folder / "a.png").write_bytes(qr_png(passport_a.hc1))
    (folder / "b.PNG").write_bytes(qr_png(passport_b.hc1))
    (folder / "c.png").write_bytes(b"not an image")
    done = _run(["qr", *_trust(pdf_pki), "--at", NOW.isoformat(), "--json", "--jobs", "2",
                 "--image", str(folder)], tmp_path)  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [Path(d["file"]).name for d in lines] == ["a.png", "b.PNG", "c.png"]
    assert [d["valid"] for d in lines] == [True, True, False]
    assert lines[2]["errors"][0]["reason"] == "image_unreadable"
    assert "3/3 files" in done.stderr
