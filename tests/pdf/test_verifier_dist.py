"""The checkpoint install (issue 8, point 3): the verifier alone, from its own lock.

``scripts/setup-verifier.sh`` (the README's checkpoint command) builds the
``vn-dcc-verifier`` distribution from verifier/ into a fresh venv with
requirements/verifier.txt. That venv, run from a folder with no ``signer/``
or ``keys/`` on the path, verifies a signed QR image and a signed PDF.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from signer.qr import qr_png
from tests.fixtures.pki import NOW
from tests.pdf import tamper
from tests.pdf.conftest import Issued, PdfPki

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    venv = tmp_path_factory.mktemp("checkpoint") / "venv"
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup-verifier.sh")],
        env={**os.environ, "VENV": str(venv)}, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def _run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8",
           "VNDCC_VERIFIER_STATE": str(cwd / "state")}
    return subprocess.run([str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_checkpoint_venv_has_no_signer_and_only_the_verifier_lock(
    checkpoint_venv: Path, tmp_path: Path
) -> None:
    for module in ("signer", "keys", "reportlab", "openpyxl", "fastapi", "psycopg", "pkcs11"):
        done = _run(checkpoint_venv, tmp_path, "python", "-c", f"import {module}")
        assert done.returncode == 1 and "ModuleNotFoundError" in done.stderr, module
    done = _run(checkpoint_venv, tmp_path, "python", str(ROOT / "scripts" / "lockcheck.py"),
                str(ROOT / "requirements" / "verifier.txt"),
                str(ROOT / "requirements" / "build.txt"))
    assert done.returncode == 0, done.stderr
    where = _run(checkpoint_venv, tmp_path, "python", "-c", "import verifier; print(verifier.__file__)")
    assert str(checkpoint_venv) in where.stdout
    # The Vietnamese rule profiles ship in the wheel, with their tests.
    rules = Path(where.stdout.strip()).parent / "data" / "rules"
    done = _run(checkpoint_venv, tmp_path, "vn-dcc-verify", "rules", "test", str(rules))
    assert done.returncode == 0 and done.stdout.splitlines()[-1].endswith(" 0 failed"), done.stdout


def test_checkpoint_verifies_qr_image_and_pdf(
    checkpoint_venv: Path, pdf_pki: PdfPki, passport_a: Issued, tmp_path: Path
) -> None:
    trust = [a for f in pdf_pki.trust_files for a in ("--trust", str(f))]
    at = ["--at", NOW.isoformat()]
    png = tmp_path / "qr.png"
    png.write_bytes(qr_png(passport_a.hc1))
    pdf = tmp_path / "passport.pdf"
    pdf.write_bytes(passport_a.pdf)

    qr = _run(checkpoint_venv, tmp_path, "vn-dcc-verify", "qr", *trust, *at, "--json",
              "--image", str(png))
    assert qr.returncode == 0, qr.stdout + qr.stderr
    assert json.loads(qr.stdout)["valid"] is True

    doc = _run(checkpoint_venv, tmp_path, "python", "-m", "verifier", "pdf", *trust, *at,
               "--json", str(pdf))
    assert doc.returncode == 0, doc.stdout + doc.stderr
    result = json.loads(doc.stdout)
    assert result["valid"] is True and result["qr_text"] == passport_a.hc1

    forged = tmp_path / "forged.pdf"
    forged.write_bytes(tamper.flip_signed_byte(passport_a.pdf))
    bad = _run(checkpoint_venv, tmp_path, "vn-dcc-verify", "pdf", *trust, *at, "--json",
               str(forged))
    assert bad.returncode == 1 and json.loads(bad.stdout)["valid"] is False
    assert "Traceback" not in bad.stderr


def _cpu_ns(pid: int) -> int:
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def test_the_command_is_a_plain_script_answered_by_the_daemon(
    checkpoint_venv: Path, pdf_pki: PdfPki, passport_a: Issued, tmp_path: Path
) -> None:
    """``vn-dcc-verify`` is installed as a plain script (verifier/bin/vn-dcc-verify):
    no ``re`` (pip's entry-point wrapper) and no ``runpy`` (``python -m``) before the
    daemon client, whose served answer equals the local run's (docs/verifier-daemon.md)."""
    command = checkpoint_venv / "bin" / "vn-dcc-verify"
    assert command.read_bytes().startswith(f"#!{checkpoint_venv}/bin/python".encode())
    pdf = tmp_path / "passport.pdf"
    pdf.write_bytes(passport_a.pdf)
    argv = ["vn-dcc-verify", "pdf", *(a for f in pdf_pki.trust_files for a in ("--trust", str(f))),
            "--at", NOW.isoformat(), str(pdf)]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "VNDCC_VERIFIER_STATE": str(tmp_path / "state")}
    sock = tmp_path / "run" / "d.sock"
    client = {**env, "VNDCC_VERIFY_DAEMON": str(sock), "VNDCC_VERIFY_DAEMON_STRICT": "1"}

    # no daemon yet: the strict client's one line, and what it imported to get there
    absent = subprocess.run([str(command), *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                            env={**client, "PYTHONPROFILEIMPORTTIME": "1"}, timeout=60, check=False)
    assert absent.returncode == 2 and f"error: verifier daemon at {sock}: " in absent.stderr
    imported = {line.split("|")[-1].strip() for line in absent.stderr.splitlines()
                if line.startswith("import time:")}
    assert "verifier.daemon" in imported and "_socket" in imported
    assert not imported & {"re", "runpy", "enum", "socket", "json", "cryptography", "verifier.cli"}

    local = subprocess.run([str(command), *argv[1:]], cwd=tmp_path, capture_output=True, env=env,
                           timeout=300, check=False)
    assert local.returncode == 0 and b"PAdES B-B" in local.stdout, local.stdout + local.stderr
    daemon = subprocess.Popen([str(command), "daemon", "--socket", str(sock)], cwd=tmp_path, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert daemon.stderr is not None
        assert daemon.stderr.readline().startswith(b"verifier daemon: listening on")
        before = _cpu_ns(daemon.pid)
        served = subprocess.run([str(command), *argv[1:]], cwd=tmp_path, capture_output=True, env=client,
                                timeout=300, check=False)
        assert (served.returncode, served.stdout, served.stderr) == (local.returncode, local.stdout,
                                                                     local.stderr)
        assert _cpu_ns(daemon.pid) - before > 5_000_000  # the daemon verified it, not the client
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        daemon.stderr.close()  # type: ignore[union-attr]
