"""Data cleaning (issue 4): check vaccination records against the population registry.

    python -m signer check records.csv --registry registry.csv --out cleaning-out/

Only records that pass every check come out verified (``Record.verified`` =
:func:`signer.records.record_fingerprint`); the others go to per-commune
reconciliation lists for the commune police. See docs/cleaning.md.
"""
