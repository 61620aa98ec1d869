"""Signed PDF vaccine passports (issue 3): render, QR, PAdES signature.

    >>> from signer.pdf import PassportPdfSigner, passport_data
    >>> pdf_signer = PassportPdfSigner(key, centre="Trạm Y tế", crls=[crl], now=now)  # doctest: +SKIP
    >>> pdf = pdf_signer.sign(passport_data(dcc=payload, hc1=hc1, centre="Trạm Y tế",
    ...                                     issued_at=iat, expires_at=exp), now=now)  # doctest: +SKIP

Modules: :mod:`.template` (layout and labels as data), :mod:`.font` (embedded
subset font), :mod:`.qr` (QR matrix, vector drawing), :mod:`.layout` (page),
:mod:`.model` (what the page shows), :mod:`.cms` (pyHanko signer over a
SigningKey), :mod:`.sign` (the PDF and its signature), :mod:`.cli`.
The heavy imports (pyHanko, fontTools) happen on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PassportData", "PassportPdfSigner", "passport_data"]


def __getattr__(name: str) -> Any:
    if name == "PassportPdfSigner":
        from signer.pdf.sign import PassportPdfSigner

        return PassportPdfSigner
    if name in ("PassportData", "passport_data"):
        from signer.pdf import model

        return getattr(model, name)
    raise AttributeError(name)
