"""Offline verification of signed PDF passports (issue 3).

    >>> from verifier.pdf import verify_pdf
    >>> # verdict = verify_pdf(pdf_bytes, trust, now=now); verdict.valid, verdict.to_json()

Imports nothing from ``signer`` or ``keys``. pyHanko is imported lazily (it
takes about a second), so ``verifier qr`` does not pay for it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PdfVerdict", "verify_pdf"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from verifier.pdf import verify

        return getattr(verify, name)
    raise AttributeError(name)
