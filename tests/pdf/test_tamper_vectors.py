"""The committed PDF tamper vectors (tests/vectors/pdf-tamper, issue 13): each folder's
passport.pdf verified with each trust set of its expected.json gives exactly the
expected (check, reason) pairs, the PAdES level and what is proven; the command line
answers a verdict (exit 0/1), never exit 2, whatever the trust set."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.pdf import tamper
from verifier.pdf import verify_pdf
from verifier.trust import load_trust_material

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "pdf-tamper"
CASES = [
    pytest.param(folder, i, case, id=f"{folder.name}-{i}")
    for folder in sorted(p for p in VECTORS.iterdir() if (p / "expected.json").is_file())
    for i, case in enumerate(json.loads((folder / "expected.json").read_text("utf-8"))["cases"])
]


def _at(folder: Path) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads((folder / "expected.json").read_text("utf-8"))["at"])


@pytest.mark.parametrize(("folder", "index", "case"), CASES)
def test_vector(folder: Path, index: int, case: dict[str, Any], tmp_path: Path) -> None:
    at = _at(folder)
    trust = load_trust_material([VECTORS / t for t in case["trust"]], now=at, state_dir=tmp_path)
    v = verify_pdf((folder / "passport.pdf").read_bytes(), trust, now=at)
    assert v.valid is case["valid"]
    assert sorted([e.check, e.reason] for e in v.errors) == case["errors"]
    signer = v.signer or {}  # no signature at all: no signer
    assert signer.get("pades_level") == case["pades_level"]
    assert signer.get("signing_time_proven") is case["signing_time_proven"]


@pytest.mark.parametrize("trust", [("csca.pem", "trustlist.cbor"), ("csca.pem", "dsc-expired.pem")])
def test_cli_answers_a_verdict(trust: tuple[str, ...], tmp_path: Path) -> None:
    # issue 13: with a current trust list that leaves the expired DSC out, verifier pdf
    # stopped with exit 2 and no verdict
    folder = VECTORS / "expired-dsc-backdated"
    args = [a for t in trust for a in ("--trust", str(VECTORS / "trust" / t))]
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "pdf", *args, "--at", _at(folder).isoformat(), "--json",
         str(folder / "passport.pdf")],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
        env={"VNDCC_VERIFIER_STATE": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 1, done.stderr
    out = json.loads(done.stdout)
    assert out["valid"] is False and out["checks"]["pdf_chain"] is False
    assert out["signer"]["pades_level"] is None and out["signer"]["signing_time_proven"] is False


def test_title_alone_is_a_modification(tmp_path: Path) -> None:
    folder = VECTORS / "clean"
    at = _at(folder)
    trust = load_trust_material([VECTORS / "trust" / "csca.pem", VECTORS / "trust" / "trustlist.cbor"],
                                now=at, state_dir=tmp_path)
    v = verify_pdf(tamper.change_title_only((folder / "passport.pdf").read_bytes()), trust, now=at)
    assert not v.valid and v.checks["pdf_modifications"] is False
    assert "modified_after_signing" in v.reasons


@pytest.mark.parametrize("tail", [b"GARBAGE" * 100, b"<html><script>alert(1)</script></html>"])
def test_bytes_after_the_last_revision(tail: bytes, tmp_path: Path) -> None:
    # outside every revision: no signature covers them (pdfsig: "Not total document signed")
    folder = VECTORS / "clean"
    at = _at(folder)
    trust = load_trust_material([VECTORS / "trust" / "csca.pem", VECTORS / "trust" / "trustlist.cbor"],
                                now=at, state_dir=tmp_path)  # fmt: skip
    pdf = (folder / "passport.pdf").read_bytes()
    v = verify_pdf(pdf + tail, trust, now=at)
    assert not v.valid and v.checks["pdf_integrity"] is False and "trailing_data" in v.reasons
    assert verify_pdf(pdf + b"\r\n \n", trust, now=at).valid  # white space is not data
