"""The scanner's tests need node, the npm packages of scanner/package-lock.json and
Debian's chromium, all installed by ``scripts/setup.sh --dev``. Without them the
tests fail with that instruction; they never skip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEEDED = {
    "node": lambda: shutil.which("node") is not None,
    "scanner/node_modules (npm ci)": lambda: (ROOT / "scanner" / "node_modules" / "ajv").is_dir()
    and (ROOT / "scanner" / "node_modules" / "playwright-core").is_dir(),
    "chromium": lambda: shutil.which("chromium") is not None or Path("/usr/bin/chromium").exists(),
}


@pytest.fixture(autouse=True)
def _scanner_tools() -> None:
    missing = [name for name, present in NEEDED.items() if not present()]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run bash scripts/setup.sh --dev")
