#!/usr/bin/env bash
# Re-make the locks in requirements/ from pyproject.toml and verifier/pyproject.toml
# with uv (pinned in the dev lock). Procedure and schedule: docs/dependencies.md.
#   bash scripts/lock.sh             # keep the pinned versions, add what is new in pyproject
#   bash scripts/lock.sh --upgrade   # move every pin to the newest release that fits
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-.venv/bin/uv}
[ -x "$UV" ] || { echo "lock: $UV not found: run bash scripts/setup.sh --dev first" >&2; exit 2; }
UP=()
if [ "${1:-}" = "--upgrade" ]; then UP=(--upgrade); fi
C=(--universal --python-version 3.11 --generate-hashes --no-header --quiet "${UP[@]}")
cd requirements
# The runtime lock first: the dev and checkpoint locks are constrained by it, so a
# test-only package can never move a runtime version (uv fails on a conflict).
"../$UV" pip compile ../pyproject.toml "${C[@]}" -o runtime.txt
"../$UV" pip compile ../pyproject.toml --extra dev -c runtime.txt "${C[@]}" -o dev.txt
"../$UV" pip compile ../verifier/pyproject.toml -c runtime.txt "${C[@]}" -o verifier.txt
"../$UV" pip compile build.in "${C[@]}" -o build.txt
"../$UV" pip compile interop-cwt.in "${C[@]}" -o interop-cwt.txt
"../$UV" pip compile fuzz.in "${C[@]}" -o fuzz.txt
echo "lock: requirements/*.txt written; now run bash scripts/test.sh"
