"""The two commands end to end: `python -m signer pdf` writes signed passports for the
example records; `python -m verifier pdf` accepts them (exit 0), rejects a tampered one
(exit 1) and reports usage/configuration problems with exit 2, one line, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from signer.records import Record, read_records
from tests.fixtures.pki import NOW
from tests.pdf import tamper
from tests.pdf.conftest import SIGN_TIME, PdfPki

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "records.jsonl"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, **(env or {})}, check=False,
    )


@pytest.fixture(scope="module")
def signed_dir(pdf_pki: PdfPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("signcli")
    secret = "test-" + os.urandom(6).hex()
    key_pem = base / "dsc.key.pem"
    key_pem.write_bytes(
        pdf_pki.good.private_key.private_bytes(
            Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(secret.encode()),
        )
    )
    (base / "dsc.pem").write_bytes(pdf_pki.good.certificate.public_bytes(Encoding.PEM))
    (base / "csca.crl").write_bytes(pdf_pki.crl.public_bytes(Encoding.DER))
    out = base / "out"
    done = _run(
        "signer", "pdf", str(EXAMPLES), "--out", str(out), "--key", str(key_pem),
        "--cert", str(base / "dsc.pem"), "--chain", str(pdf_pki.csca_pem),
        "--crl", str(base / "csca.crl"), "--centre", "Trạm Y tế Phường Bến Nghé",
        "--at", SIGN_TIME.isoformat(), "--allow-unverified",
        "--override-reason", "test fixture", "--operator", "pytest",
        env={"VNDCC_KEY_PASSPHRASE": secret},
    )
    assert done.returncode in (0, 1), done.stderr
    assert secret not in done.stdout + done.stderr
    return out


def test_signer_writes_pdf_and_hc1_per_record(signed_dir: Path) -> None:
    records = [r for r in read_records(EXAMPLES) if isinstance(r, Record)]
    pdfs = sorted(signed_dir.glob("*.pdf"))
    assert len(pdfs) >= 2
    manifest = [json.loads(line) for line in (signed_dir / "manifest.jsonl").read_text().splitlines()]
    assert {m["record_id"] for m in manifest} == {p.stem for p in pdfs}
    assert {p.stem for p in pdfs} <= {r.record_id for r in records}
    for m in manifest:
        assert sorted(m["files"]) == sorted([f"{m['record_id']}.pdf", f"{m['record_id']}.hc1.txt"])
        assert m["override"]["operator"] == "pytest"


def test_verifier_accepts_issued_and_rejects_tampered(
    signed_dir: Path, pdf_pki: PdfPki, tmp_path: Path
) -> None:
    trust = [a for f in pdf_pki.trust_files for a in ("--trust", str(f))]
    at = ["--at", NOW.isoformat()]
    env = {"VNDCC_VERIFIER_STATE": str(tmp_path / "state")}
    pdf = sorted(signed_dir.glob("*.pdf"))[0]
    done = _run("verifier", "pdf", *trust, *at, "--json", str(pdf), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["valid"] is True and result["errors"] == []
    assert result["qr_text"] == (signed_dir / f"{pdf.stem}.hc1.txt").read_text()
    expected = {"pdf_signature", "pdf_integrity", "pdf_chain", "pdf_revocation",
                "pdf_modifications", "qr", "qr_matches_document", "prefix", "base45", "zlib",
                "cose", "cwt", "signature", "expiry", "key_usage", "schema"}
    assert set(result["checks"]) == expected and all(result["checks"].values())
    assert "Phường Bến Nghé" in result["signer"]["location"]

    forged = tmp_path / "forged.pdf"
    forged.write_bytes(tamper.flip_signed_byte(pdf.read_bytes()))
    done = _run("verifier", "pdf", *trust, *at, "--json", str(forged), env=env)
    assert done.returncode == 1
    assert json.loads(done.stdout)["checks"]["pdf_integrity"] is False

    human = _run("verifier", "pdf", *trust, *at, str(forged), env=env)
    assert human.returncode == 1 and "INVALID" in human.stdout and "pdf_integrity" in human.stdout
    human_vi = _run("verifier", "pdf", *trust, *at, "--lang", "vi", str(pdf), env=env)
    assert human_vi.returncode == 0 and "HỢP LỆ" in human_vi.stdout

    missing = _run("verifier", "pdf", *trust, str(tmp_path / "nope.pdf"), env=env)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + os.urandom(3000))
    done = _run("verifier", "pdf", *trust, *at, "--json", str(garbage), env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert json.loads(done.stdout)["valid"] is False


def test_signer_pdf_usage_errors_exit_2(tmp_path: Path) -> None:
    done = _run("signer", "pdf", str(EXAMPLES), "--out", str(tmp_path), "--centre", "x",
                "--crl", str(tmp_path / "missing.crl"), "--key", "k.pem", "--cert", "c.pem")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error:")


def test_signer_pdf_with_softhsm_token(
    softhsm_token: object, softhsm_pin_env: str, test_pki: object, tmp_path: Path
) -> None:
    from tests.fixtures.pki import empty_crl

    token = softhsm_token
    csca = token.csca  # type: ignore[attr-defined]
    crl = empty_crl(csca, test_pki.csca_key, at=SIGN_TIME)  # type: ignore[attr-defined]
    (tmp_path / "csca.pem").write_bytes(csca.public_bytes(Encoding.PEM))
    (tmp_path / "csca.crl").write_bytes(crl.public_bytes(Encoding.DER))
    (tmp_path / "dsc.pem").write_bytes(token.es256_cert.public_bytes(Encoding.PEM))  # type: ignore[attr-defined]
    out = tmp_path / "out"
    done = _run(
        "signer", "pdf", str(EXAMPLES), "--out", str(out),
        "--token-label", token.token_label, "--key-label", "dsc-ec",  # type: ignore[attr-defined]
        "--pkcs11-module", token.module, "--chain", str(tmp_path / "csca.pem"),  # type: ignore[attr-defined]
        "--crl", str(tmp_path / "csca.crl"), "--centre", "Trạm Y tế Xã Tân Phú",
        "--at", SIGN_TIME.isoformat(), "--allow-unverified", "--override-reason", "test",
        "--operator", "pytest",
    )
    assert done.returncode in (0, 1), done.stderr
    assert softhsm_pin_env not in done.stdout + done.stderr
    pdf = sorted(out.glob("*.pdf"))[0]
    verified = _run(
        "verifier", "pdf", "--trust", str(tmp_path / "csca.pem"), "--trust", str(tmp_path / "dsc.pem"),
        "--at", NOW.isoformat(), "--json", str(pdf),
        env={"VNDCC_VERIFIER_STATE": str(tmp_path / "state")},
    )
    assert verified.returncode == 0, verified.stdout
