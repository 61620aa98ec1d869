#!/usr/bin/env bash
# Set up a fresh Debian machine for this project: system packages + a venv in .venv
# holding exactly the locked versions (requirements/*.txt, hashes checked).
# Usage: scripts/setup.sh [--dev]
#   --dev  also the test and lint tools (requirements/dev.txt: the runtime lock
#          plus test-only packages that cannot move a runtime version) and the
#          interop venv .venv-interop (python-cwt, which needs an older cbor2)
#          and the API fuzzer's venv .venv-fuzz (schemathesis, with its own pins).
# How the locks are made and refreshed: docs/dependencies.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

APT_PKGS="python3-venv python3-dev openssl softhsm2 opensc poppler-utils libnss3-tools postgresql util-linux redis-server"
# Node.js and npm: the scanner page's packages (zxing-wasm, ajv, certlogic-js) and its tests.
if ! command -v npm >/dev/null; then APT_PKGS="$APT_PKGS nodejs npm"; fi
# Headless Chromium for the scanner page's Playwright test (tests/scanner, playwright-core).
if [ "${1:-}" = "--dev" ]; then APT_PKGS="$APT_PKGS chromium wrk"; fi  # wrk: bench/portal_load.py
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
LOCK=requirements/runtime.txt
if [ "${1:-}" = "--dev" ]; then LOCK=requirements/dev.txt; fi
# A venv set up with --dev stays a dev venv (dev.txt holds runtime.txt's exact
# versions): the demo after the tests must not remove the test tools.
if [ "$(cat .venv/.vn-dcc-lock 2>/dev/null)" = requirements/dev.txt ]; then LOCK=requirements/dev.txt; fi

# venv_from_lock DIR LOCK: DIR holds exactly LOCK's packages (plus pip and
# setuptools from requirements/build.txt); anything else installed there is removed.
venv_from_lock() {
  local dir=$1 lock=$2
  [ -x "$dir/bin/python" ] || "$PY" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --require-hashes -r requirements/build.txt
  "$dir/bin/python" -m pip install -q --require-hashes -r "$lock"
  "$dir/bin/python" scripts/lockcheck.py --prune "$lock" requirements/build.txt
}

venv_from_lock .venv "$LOCK"
# The project itself, without touching the locked dependencies.
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
.venv/bin/python scripts/lockcheck.py "$LOCK" requirements/build.txt
echo "$LOCK" > .venv/.vn-dcc-lock

# The scanner's npm packages, exactly as scanner/package-lock.json says
# (`verifier serve` hands zxing-wasm to the page; --dev adds playwright-core).
if [ "$LOCK" = requirements/dev.txt ]; then
  venv_from_lock .venv-interop requirements/interop-cwt.txt
  venv_from_lock .venv-fuzz requirements/fuzz.txt
  npm ci --prefix scanner --no-audit --no-fund --loglevel=error >/dev/null
else
  npm ci --prefix scanner --omit=dev --no-audit --no-fund --loglevel=error >/dev/null
fi
echo "setup: ok (.venv matches $LOCK)"
