"""The same passport signed by pyHanko's own ``PdfSigner`` (reference path).

    >>> from signer.pdf.reference import PyHankoPassportSigner
    >>> ref = PyHankoPassportSigner(key, centre="Trạm Y tế", crls=[crl], now=now)  # doctest: +SKIP
    >>> pdf = ref.sign(passport_data, now=now)                                    # doctest: +SKIP

Not the production path (:class:`signer.pdf.sign.PassportPdfSigner` is about
10x faster); kept because it is the textbook pyHanko use of our key adapter
:class:`signer.pdf.pyhanko_signer.KeySigner` (any ``SigningKey``, software or PKCS#11),
with the tuned settings from the field notes: ``bytes_reserved`` instead of a
dry-run signature, validation data in the same revision as the signature
(``DSSContentSettings(include_vri=False, placement=TOGETHER_WITH_SIGNATURE)``),
signer and validation context reused. The tests verify its output with
``verifier pdf`` (a cross-check of the adapter in pyHanko's own pipeline) and
``bench/pdf.py`` times it.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import DSSContentSettings, SigDSSPlacementPreference
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from keys.base import SigningKey
from signer.pdf.cms import CmsKey, CmsTemplate, to_asn1
from signer.pdf.model import PassportData
from signer.pdf.pyhanko_signer import KeySigner
from signer.pdf.sign import PassportPdfSigner


class PyHankoPassportSigner:
    """Render with our layout, sign with pyHanko's ``PdfSigner`` (B-B + DSS, certified)."""

    def __init__(
        self,
        key: SigningKey,
        *,
        centre: str,
        now: dt.datetime,
        crls: Sequence[x509.CertificateRevocationList] = (),
        check_certificate_status: bool = True,
    ) -> None:
        self.renderer = PassportPdfSigner(
            key, centre=centre, crls=crls, now=now,
            check_certificate_status=check_certificate_status,
        )
        self.signer = KeySigner(key)
        # in hex digits of /Contents: twice the DER size of the CMS, plus slack
        self.bytes_reserved = 2 * (CmsTemplate.build(CmsKey(key)).size_hint + 64)
        roots = [to_asn1(c) for c in key.chain[-1:]] or [to_asn1(key.certificate)]
        self.context = ValidationContext(
            trust_roots=roots,
            crls=[c.public_bytes(Encoding.DER) for c in crls],
            allow_fetching=False,
            moment=now,
        )
        t = self.renderer.template
        self.meta = signers.PdfSignatureMetadata(
            field_name=t.field_name,
            md_algorithm=self.signer.digest_algorithm,
            subfilter=fields.SigSeedSubFilter.PADES,
            certify=True,
            docmdp_permissions=fields.MDPPerm.NO_CHANGES,
            embed_validation_info=True,
            validation_context=self.context,
            signer_key_usage={"digital_signature"},
            reason=t.reason,
            location=centre,
            name=centre,
            dss_settings=DSSContentSettings(
                include_vri=False, placement=SigDSSPlacementPreference.TOGETHER_WITH_SIGNATURE
            ),
        )
        r = self.renderer.layout.sig_rect
        box = (round(r.x), round(r.y), round(r.x + r.w), round(r.y + r.h))
        self.field = fields.SigFieldSpec(t.field_name, box=box)
        # pyHanko's built-in stamp font is Latin-1: the centre comes from the certificate
        self.style = TextStampStyle(stamp_text="Digitally signed by:\n%(signer)s\n%(ts)s")

    def sign(self, data: PassportData, *, now: dt.datetime) -> bytes:
        unsigned = self.renderer.render_unsigned(data, now=now)
        pdf_signer = signers.PdfSigner(
            self.meta, signer=self.signer, stamp_style=self.style, new_field_spec=self.field
        )
        out = pdf_signer.sign_pdf(
            IncrementalPdfFileWriter(io.BytesIO(unsigned)), bytes_reserved=self.bytes_reserved
        )
        return bytes(out.getbuffer())
