"""Our SigningKey as a pyHanko signer, for pyHanko's own PdfSigner (the reference path).

    >>> from signer.pdf.pyhanko_signer import KeySigner
    >>> signer = KeySigner(key)                          # doctest: +SKIP
    >>> info = asyncio.run(signer.async_sign(digest, "sha256", use_pades=True))  # doctest: +SKIP

:class:`KeySigner` is a pyHanko :class:`~pyhanko.sign.signers.pdf_cms.Signer`
whose one primitive, ``async_sign_raw``, calls ``SigningKey.sign`` (through
:class:`signer.pdf.cms.CmsKey`). The production path
(:mod:`signer.pdf.sign`) does not import pyHanko: :mod:`signer.pdf.cms`
builds the same SignedData with asn1crypto, and tests/pdf/test_cms.py checks
it against this signer's.
"""

from __future__ import annotations

from pyhanko.sign.signers.pdf_cms import Signer
from pyhanko_certvalidator.registry import SimpleCertificateStore

from keys.base import SigningKey
from signer.pdf.cms import CmsKey
from verifier.errors import KeyBackendError


class KeySigner(Signer):
    """pyHanko signer whose raw signature comes from a :class:`keys.base.SigningKey`."""

    def __init__(self, key: SigningKey) -> None:
        own = CmsKey(key)  # checks the algorithm
        super().__init__(
            signing_cert=own.signing_cert,
            cert_registry=SimpleCertificateStore.from_certs(list(own.chain)),  # type: ignore[no-untyped-call]
            signature_mechanism=own.signature_mechanism,
            embed_roots=True,
        )
        self.key = key
        self.own = own
        self.digest_algorithm = own.digest_algorithm
        self._size = {"sha256_ecdsa": 72, "sha384_ecdsa": 104}.get(
            own.signature_mechanism["algorithm"].native, 512
        )

    def sign_raw_sync(self, data: bytes) -> bytes:
        """The one primitive: ``key.sign`` (which hashes), DER-wrapped for ECDSA."""
        return self.own.sign_raw_sync(data)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if digest_algorithm != self.digest_algorithm:
            raise KeyBackendError(f"key signs with {self.digest_algorithm}, not {digest_algorithm}")
        if dry_run:
            return bytes(self._size)
        return self.sign_raw_sync(data)
