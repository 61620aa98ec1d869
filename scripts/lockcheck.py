"""Compare a venv's installed distributions with lock files (stdlib only).

    python scripts/lockcheck.py LOCK [LOCK ...]          # exit 1 on any difference
    python scripts/lockcheck.py --prune LOCK [LOCK ...]  # first uninstall what no lock names

Run with the venv's own interpreter. A lock is a pip requirements file of
exact pins (``name==version``, hashes on continuation lines, optional
environment markers after ``;``). A pin whose marker does not apply here is
not required; a pin that applies must be installed at exactly that version;
an installed distribution that no lock names is an error (or, with
``--prune``, removed), except the projects themselves (vn-dcc,
vn-dcc-verifier). tests/test_lock.py imports :func:`differences`.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re
import subprocess
import sys
from pathlib import Path

#: Our own distributions: installed from the work tree, not from a lock.
OWN = frozenset({"vn-dcc", "vn-dcc-verifier"})

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def normalise(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _marker_applies(marker: str | None) -> bool:
    if not marker:
        return True
    try:
        from packaging.markers import Marker
    except ImportError:  # a bare runtime venv: pip vendors packaging
        from pip._vendor.packaging.markers import Marker
    return bool(Marker(marker).evaluate())


def read_lock(path: str | Path) -> dict[str, tuple[str, bool]]:
    """name -> (version, applies here) for every pin in a lock file."""
    pins: dict[str, tuple[str, bool]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line.strip())
        if m:
            pins[normalise(m.group(1))] = (m.group(2), _marker_applies(m.group(3)))
    if not pins:
        raise SystemExit(f"lockcheck: {path}: no pins found")
    return pins


def installed() -> dict[str, str]:
    """name -> version of every distribution in this interpreter's environment."""
    return {normalise(d.metadata["Name"]): d.version for d in metadata.distributions()}


def differences(locks: list[str | Path]) -> tuple[list[str], list[str]]:
    """(wrong or missing pins, installed distributions no lock names)."""
    pins: dict[str, tuple[str, bool]] = {}
    for lock in locks:
        pins.update(read_lock(lock))
    have = installed()
    wrong = [
        f"{name}: locked {version}, installed {have.get(name, 'nothing')}"
        for name, (version, applies) in sorted(pins.items())
        if applies and have.get(name) != version
    ]
    extra = sorted(f"{n}=={v}" for n, v in have.items() if n not in pins and n not in OWN)
    return wrong, extra


def main(argv: list[str]) -> int:
    prune = "--prune" in argv
    locks: list[str | Path] = [a for a in argv if a != "--prune"]
    if not locks:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    wrong, extra = differences(locks)
    if prune and extra:
        names = [e.split("==")[0] for e in extra]
        subprocess.run(
            [sys.executable, "-m", "pip", "uninstall", "-q", "-y", *names], check=True
        )
        wrong, extra = differences(locks)
    for line in wrong:
        print(f"lockcheck: {line}", file=sys.stderr)
    for line in extra:
        print(f"lockcheck: {line} is installed but not in {', '.join(map(str, locks))}", file=sys.stderr)
    return 1 if wrong or extra else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
