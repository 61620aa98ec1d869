#!/usr/bin/env bash
# Set up and run the main job on the embedded defaults: a fresh demo PKI, the
# example records, SQLite. Output goes to ./demo-out (replaced on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m signer demo --out demo-out "$@"
