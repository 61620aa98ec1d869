"""The codec under cbor2 5.x too (issue 8, point 2): the lock has cbor2 6, but a
checkpoint that installs without the lock may get 5.x, whose decoder returns
other container types and has no duplicate-key option (the pre-scan path).

The interop venv (tests/interop/peer.py) holds cbor2 5.9 for the same Python;
its site-packages go first on the path of a pytest subprocess that runs the
official vectors, the strict and trust vectors and the codec tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.interop.peer import interop_python

ROOT = Path(__file__).resolve().parents[2]
SUITES = ["tests/verifier/test_conformance.py", "tests/verifier/test_strict_vectors.py",
          "tests/verifier/test_trust_strict.py", "tests/test_codec.py"]


def test_verifier_suites_pass_with_cbor2_5() -> None:
    python = interop_python()
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    env = {**os.environ, "PYTHONPATH": site}
    version = subprocess.run([sys.executable, "-c", "import cbor2, importlib.metadata as m; "
                              "print(m.version('cbor2'), cbor2.__file__)"],
                             env=env, capture_output=True, text=True, check=True).stdout
    assert version.startswith("5.") and site in version
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "no:xdist", *SUITES], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert " passed" in done.stdout.splitlines()[-1] and "failed" not in done.stdout.splitlines()[-1]
