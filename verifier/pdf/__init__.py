"""Offline verification of signed PDF passports (issue 3).

    >>> from verifier.pdf import verify_pdf
    >>> # verdict = verify_pdf(pdf_bytes, trust, now=now); verdict.valid, verdict.to_json()

Imports nothing from ``signer`` or ``keys``. pyHanko is imported lazily (it
takes about a second), so ``verifier qr`` does not pay for it, and without
its signing half (:mod:`verifier.pdf.lean_imports`: aiohttp and the signers
are 0.5 s of imports an offline verifier never runs).
"""

from __future__ import annotations

from typing import Any

from verifier.pdf.lean_imports import defer_signing_packages

defer_signing_packages()  # before any pyhanko.sign.* import of this package

__all__ = ["PdfVerdict", "verify_pdf"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from verifier.pdf import verify

        return getattr(verify, name)
    raise AttributeError(name)
