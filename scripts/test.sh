#!/usr/bin/env bash
# Set up (system packages + .venv with dev tools) and run every test, then the linters.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
export PYTHONDONTWRITEBYTECODE=1
.venv/bin/python -m pytest -n 2 -q -p no:cacheprovider "$@"
.venv/bin/ruff check .
.venv/bin/mypy signer verifier keys
