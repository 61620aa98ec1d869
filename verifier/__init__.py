"""Offline verifier for EU DCC "HC1:" QR codes and signed PDF vaccine passports.

Standalone: imports nothing from ``signer`` or ``keys`` so it can be
installed alone at a checkpoint.
"""
