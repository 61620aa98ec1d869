#!/usr/bin/env bash
# Checkpoint install: the verifier alone (distribution vn-dcc-verifier, built from
# verifier/), with only what verification needs, at the locked versions
# (requirements/verifier.txt, hashes checked). No signer, no keys, no web stack.
#   bash scripts/setup-verifier.sh            # -> .venv-verifier/bin/vn-dcc-verify
#   VENV=/opt/vn-dcc-verifier bash scripts/setup-verifier.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-verifier}

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
# python3-venv for the venv; poppler-utils (pdftoppm) reads the QR of a PDF passport.
missing=""
for p in python3-venv poppler-utils; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup-verifier: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --require-hashes -r requirements/build.txt
"$VENV/bin/python" -m pip install -q --require-hashes -r requirements/verifier.txt
# Build from a copy, so that no build/ or egg-info lands inside verifier/.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r verifier "$src/verifier"
find "$src/verifier" -name __pycache__ -prune -exec rm -rf {} +
"$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation --force-reinstall "$src/verifier"
"$VENV/bin/python" scripts/lockcheck.py --prune requirements/verifier.txt requirements/build.txt
echo "setup-verifier: ok ($VENV/bin/vn-dcc-verify, or $VENV/bin/python -m verifier)"
