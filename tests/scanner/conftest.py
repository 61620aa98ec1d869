"""The scanner's tests need node, the npm packages of scanner/package-lock.json and
Debian's chromium, all installed by ``scripts/setup.sh --dev``. Without them the
tests fail with that instruction; they never skip."""

from __future__ import annotations

import pytest

from tests.scanner.fake_camera import missing_tools


@pytest.fixture(autouse=True)
def _scanner_tools() -> None:
    missing = missing_tools()
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run bash scripts/setup.sh --dev")
