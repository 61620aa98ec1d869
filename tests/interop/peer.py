"""Run a test-only peer implementation in its own venv, never in the product's.

The product's venv holds exactly requirements/dev.txt (runtime lock + test
tools that cannot move a runtime version). A peer whose requirements clash
with the runtime lock (``cwt`` needs ``cbor2`` < 6) lives in ``.venv-interop``,
built from requirements/interop-cwt.txt by ``scripts/setup.sh --dev``; when it
is missing, :func:`interop_python` builds it the same way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-interop"
LOCK = ROOT / "requirements" / "interop-cwt.txt"


def interop_python() -> Path:
    """The interop venv's interpreter, built from its lock if it is missing."""
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        for lock in (ROOT / "requirements" / "build.txt", LOCK):
            subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "--require-hashes", "-r", str(lock)],
                check=True,
            )
    return python


def call_peer(script: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run ``tests/interop/<script>`` in the interop venv with one JSON request."""
    proc = subprocess.run(
        [str(interop_python()), "-I", str(Path(__file__).with_name(script))],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
