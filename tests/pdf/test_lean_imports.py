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


# verifier.startup: the collector is off while the modules load (issue 13)
GC_STATE = """
import gc
{before}
import verifier
import verifier.pdf.verify
print(gc.isenabled(), gc.get_freeze_count())
"""


@pytest.mark.parametrize(("before", "expected"), [("", "True 0"), ("gc.disable()", "False 0")])
def test_importing_the_verifier_leaves_the_collector_as_it_was(before: str, expected: str) -> None:
    # a library import neither turns the collector on or off nor freezes the caller's objects
    proc = subprocess.run(
        [sys.executable, "-c", GC_STATE.format(before=before)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.stdout.strip() == expected, proc.stderr[-2000:]


def test_command_line_process_exits_cleanly_after_freezing() -> None:
    # `python -m verifier` freezes what its imports made; unfrozen again before the final
    # collection, else nanobind (zxing-cpp) printed "leaked instance/types" on stderr at exit
    vectors = ROOT / "tests" / "vectors" / "pdf-tamper"
    code = (
        "import gc, sys, runpy\nsys.argv = ['verifier', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('verifier', run_name='__main__')\n"
        "except SystemExit as end:\n    print(end.code, gc.isenabled(), gc.get_freeze_count())\n"
    )
    args = ["pdf", "--trust", str(vectors / "trust" / "csca.pem"), "--trust",
            str(vectors / "trust" / "trustlist.cbor"), "--at", "2026-06-01T12:00:00+00:00"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, str(vectors / "clean" / "passport.pdf")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.stdout.splitlines()[-1] == "0 True 0", proc.stdout + proc.stderr[-2000:]
    assert proc.stderr == ""
    proc = subprocess.run(
        [sys.executable, "-m", "verifier", *args, str(vectors / "clean" / "passport.pdf")],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and "VALID" in proc.stdout and proc.stderr == "", proc.stderr[-2000:]
