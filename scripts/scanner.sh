#!/usr/bin/env bash
# Serve the checkpoint scanner page on http://127.0.0.1:8045/ with the demo's trust
# material (demo-out/, made by scripts/demo.sh when missing) and the Vietnamese rule
# profiles. Verification runs in the browser; docs/scanner.md.
#   bash scripts/scanner.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f demo-out/pki/trustlist.cbor ]; then
  bash scripts/demo.sh >/dev/null
else
  bash scripts/setup.sh >/dev/null
fi
exec .venv/bin/python -m verifier serve --trust demo-out/pki/csca.pem \
  --trust demo-out/pki/trustlist.cbor --rules verifier/data/rules "$@"
