"""Signed PDF vaccine passports (issue 3): render, QR, PAdES signature.

    >>> from signer.pdf import PassportPdfSigner, passport_data
    >>> pdf_signer = PassportPdfSigner(key, centre="Trạm Y tế", crls=[crl], now=now)  # doctest: +SKIP
    >>> pdf = pdf_signer.sign(passport_data(dcc=payload, hc1=hc1, centre="Trạm Y tế",
    ...                                     issued_at=iat, expires_at=exp), now=now)  # doctest: +SKIP
"""

from signer.pdf.model import PassportData, passport_data
from signer.pdf.sign import PassportPdfSigner

__all__ = ["PassportData", "PassportPdfSigner", "passport_data"]
