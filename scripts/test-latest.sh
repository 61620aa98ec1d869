#!/usr/bin/env bash
# The whole suite against the NEWEST release of every dependency (no lock), in a
# fresh venv .venv-latest, so that the next breaking upstream release is found by
# one command rather than by a user. tests/test_lock.py is left out: it checks that
# the installed versions are the locked ones, which here they are not on purpose.
# Not part of CI (CI tests the locked versions users get); run it before a lock
# refresh (docs/dependencies.md). Prints what moved against the lock.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev >/dev/null   # Debian packages and the interop venv
rm -rf .venv-latest
"${PYTHON:-python3}" -m venv .venv-latest
.venv-latest/bin/python -m pip install -q --upgrade pip setuptools
.venv-latest/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[dev]'
echo "test-latest: versions that differ from requirements/dev.txt:"
.venv-latest/bin/python scripts/lockcheck.py requirements/dev.txt requirements/build.txt 2>&1 \
  | sed -n 's/^lockcheck: //p' | grep -v 'is installed but not in' || true
export PYTHONDONTWRITEBYTECODE=1
status=0
.venv-latest/bin/python -m pytest -n 2 -q -p no:cacheprovider --deselect tests/test_lock.py "$@" \
  || status=$?
echo "test-latest: pytest exit $status"
exit $status
