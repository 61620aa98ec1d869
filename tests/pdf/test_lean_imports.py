"""verifier.pdf.lean_imports defers pyHanko's signing packages; a process that
verifies first and signs afterwards must still import the signing half (it once
deadlocked there: a plain Lock re-entered, then a circular import half-way)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

VERIFY_THEN_SIGN = """
from verifier.pdf.lean_imports import defer_signing_packages
defer_signing_packages()
import pyhanko.sign.validation            # the verifier's pyHanko path
{then}
print("ok")
"""


@pytest.mark.parametrize(
    "then",
    [
        "import signer.pdf.sign",                                       # our signer (pdf_cms first)
        "from pyhanko.sign import PdfSigner, signers, timestamps",       # the package's own names
        "from pyhanko.sign.signers.pdf_cms import Signer\nfrom pyhanko.sign import attributes",
        "import pyhanko.sign.timestamps\nfrom pyhanko.sign.timestamps import HTTPTimeStamper",
    ],
)
def test_verify_then_sign_in_one_process(then: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", VERIFY_THEN_SIGN.format(then=then)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_deferred_package_is_not_initialised_by_a_submodule_import() -> None:
    code = (
        "import sys\nfrom verifier.pdf.lean_imports import defer_signing_packages\n"
        "defer_signing_packages()\nfrom pyhanko.sign import attributes\n"
        "print('pyhanko.sign.signers.pdf_signer' in sys.modules, 'PdfSigner' in vars(sys.modules['pyhanko.sign']))"
    )  # the packages' __init__ (which imports pdf_signer and binds PdfSigner) did not run
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.split() == ["False", "False"], proc.stderr[-2000:]
