#!/usr/bin/env bash
# Set up, then serve the citizen portal and the health-centre API on demo data
# in ./portal-data (made on the first run, reused afterwards): a demo PKI, the
# example records signed through the API's job path, a centre API key in
# portal-data/centre-api-key. Extra options go to 'signer serve' (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m signer serve --demo --data portal-data "$@"
