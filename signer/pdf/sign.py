"""Signed, certified PDF passports (PAdES baseline B-B with embedded validation data).

    >>> from signer.pdf.sign import PassportPdfSigner
    >>> pdf_signer = PassportPdfSigner(key, centre="Trạm Y tế Phường Bến Nghé",
    ...                                crls=[csca_crl], now=now)       # doctest: +SKIP
    >>> pdf = pdf_signer.sign(passport_data, now=now)                 # doctest: +SKIP

One object per key and template, reused for every passport. It prepares
once: the subset fonts, the static half of the page, the catalog with the
certification (DocMDP P=1, ISO 32000-1 section 12.8.2.2), the Document
Security Store with the certificate chain and the CSCA's CRL (ETSI EN 319
142-1 section 5.4: validation data in the same revision as the signature,
so ``pdfsig`` sees the total document signed), and the CMS template built by
pyHanko (:mod:`signer.pdf.cms`). Per passport it writes the values, the
vector QR code, the visible signature appearance naming the health centre
and the signature dictionary (/M signing time, /Reason, /Location), hashes
the byte range and signs with the key: one ``SigningKey.sign`` call.

By default this is PAdES baseline B-B plus the validation data. With a
``timestamper`` (the national PKI's RFC 3161 TSA, :mod:`signer.pdf.tsa`)
each signature also gets a signature timestamp (unsigned attribute
id-aa-signatureTimeStampToken over the signature value, ETSI EN 319 142-1
section 5.3) and the DSS also holds the TSA's certificate, whose CRL is the
CSCA's: strict baseline B-LT. With ``archive_timestamp`` a document
timestamp follows in an incremental update (B-LTA, :mod:`signer.pdf.lta`).
See docs/pdf.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.base import SigningKey
from signer.pdf.cms import TIMESTAMP_OVERHEAD, CmsKey, CmsTemplate
from signer.pdf.font import load_font, nfc
from signer.pdf.layout import PageLayout
from signer.pdf.lta import append_document_timestamp
from signer.pdf.model import PassportData
from signer.pdf.pdfsyntax import indirect, pdf_date, raw_stream, stream, text_string, xref_table
from signer.pdf.template import PassportTemplate, load_template
from signer.pdf.tsa import Timestamper, token_certificates
from verifier.errors import ConfigError, KeyBackendError

_BYTERANGE_PLACEHOLDER = b"/ByteRange [0 0000000000 0000000000 0000000000]"
PRODUCER = "vn-dcc signer (PDF writer), pyHanko (CMS)"

# fixed object numbers
CATALOG, PAGES, PAGE, STATIC, VALUES, INFO, XMP, SIG, WIDGET, APPEARANCE, DSS = range(1, 12)
_DYNAMIC = (VALUES, INFO, SIG, WIDGET, APPEARANCE)
#: room left for a timestamp token larger than the probe's (serial, nonce, signature lengths)
_TOKEN_MARGIN = 256
_PROBE = b"vn-dcc timestamp probe"


@dataclass(frozen=True)
class _Prefix:
    data: bytes
    offsets: dict[int, int]
    count: int
    font_refs: bytes
    catalog: bytes = b""
    page: bytes = b""


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _load_crl(crl: x509.CertificateRevocationList | bytes) -> x509.CertificateRevocationList:
    if isinstance(crl, x509.CertificateRevocationList):
        return crl
    try:
        if crl.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(crl)
        return x509.load_der_x509_crl(crl)
    except ValueError:
        raise KeyBackendError("not a valid CRL (DER or PEM)") from None


class PassportPdfSigner:
    """Renders and signs passports with one key; build once, call :meth:`sign` many times."""

    def __init__(
        self,
        key: SigningKey,
        *,
        centre: str,
        now: dt.datetime,
        location: str | None = None,
        crls: Sequence[x509.CertificateRevocationList | bytes] = (),
        template: PassportTemplate | None = None,
        check_certificate_status: bool = True,
        timestamper: Timestamper | None = None,
        archive_timestamp: bool = False,
    ) -> None:
        self.key = key
        self.timestamper = timestamper
        if archive_timestamp and timestamper is None:
            raise ConfigError("PAdES B-LTA (a document timestamp) needs a time-stamping authority")
        #: B-LTA: a document timestamp after the signature and its DSS (signer.pdf.lta)
        self.archive_timestamp = archive_timestamp
        probe = timestamper.timestamp(_PROBE) if timestamper is not None else b""
        self._archive_reserved = len(probe) + _TOKEN_MARGIN
        known = {_der(c) for c in (key.certificate, *key.chain)}
        try:
            tsa_certs = tuple(c for c in token_certificates(probe) if _der(c) not in known) if probe else ()
        except ValueError:
            raise KeyBackendError("the timestamp authority's token cannot be parsed") from None
        if timestamper is not None and not token_certificates(probe):
            raise KeyBackendError("the timestamp authority did not return its certificate")
        #: the TSA's certificates put in the DSS (its issuer, the CSCA, is in the chain)
        self.tsa_certs = tsa_certs
        # NFC: the font carries precomposed Vietnamese letters only (a centre typed
        # in NFD, e.g. on macOS, must not fail every record)
        self.centre = nfc(centre)
        self.location = nfc(location or centre)
        self.template = template or load_template()
        self.crls = tuple(_load_crl(c) for c in crls)
        self.check_certificate_status = check_certificate_status
        if check_certificate_status:
            self._check_certificate(now)
            checked = [self._check_tsa(c, now) for c in (token_certificates(probe) if probe else ())]
            if probe and not any(checked):
                raise KeyBackendError(
                    "the timestamp authority's certificate lacks the id-kp-timeStamping usage"
                )
        t = self.template
        self.regular = load_font(t.font_regular, tag="VNDCCA")
        self.bold = load_font(t.font_bold, tag="VNDCCB")
        if not (self.regular.supports(self.centre) and self.bold.supports(self.centre)):
            raise ConfigError("the centre's name has characters outside the passport font repertoire")
        self.layout = PageLayout.build(t, self.regular, self.bold)
        self.cms = CmsTemplate.build(CmsKey(key))
        self.reserved = self.cms.size_hint
        if probe:
            self.reserved += len(probe) + TIMESTAMP_OVERHEAD + _TOKEN_MARGIN
        self._prefix = self._build_prefix()
        # the signed digest starts with the prefix, the same bytes in every passport of the run
        self._prefix_digest = hashlib.new(self.cms.signer.digest_algorithm, self._prefix.data)
        self._appearance_cache: tuple[str, bytes] | None = None

    # -- checks ------------------------------------------------------------
    def _check_tsa(self, cert: x509.Certificate, now: dt.datetime) -> bool:
        """A TSA certificate (time-stamping EKU): valid, a current CRL of its issuer, not revoked."""
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is None or x509.oid.ExtendedKeyUsageOID.TIME_STAMPING not in eku:
            return False  # an extra certificate of the token (e.g. a CA): checked by verifiers
        self._check_certificate(now, cert, what="timestamp authority's certificate")
        return True

    def _check_certificate(
        self, now: dt.datetime, cert: x509.Certificate | None = None,
        what: str = "signing certificate",
    ) -> None:
        cert = cert or self.key.certificate
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise KeyBackendError(
                f"the {what} is not valid at {now.isoformat()} "
                f"(valid {cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d})"
            )
        if cert.issuer == cert.subject:
            return  # self-issued (trusted directly): no issuer CRL to embed
        own = [crl for crl in self.crls if crl.issuer == cert.issuer]
        if not own:
            raise KeyBackendError(
                f"no CRL from the {what}'s issuer was given: verifiers could not "
                "check revocation offline (pass the CSCA's current CRL)"
            )
        for crl in own:
            next_update = crl.next_update_utc
            if crl.last_update_utc > now or (next_update is not None and next_update < now):
                raise KeyBackendError(
                    f"the CRL is not current at {now.isoformat()} (issue a fresh one)"
                )
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number):
                raise KeyBackendError(f"the {what} is revoked in the given CRL")

    # -- static part -------------------------------------------------------
    def _build_prefix(self) -> _Prefix:
        t = self.template
        chain = (self.key.certificate, *self.key.chain, *self.tsa_certs)
        next_num = DSS + 1
        cert_nums = list(range(next_num, next_num + len(chain)))
        next_num += len(chain)
        crl_nums = list(range(next_num, next_num + len(self.crls)))
        next_num += len(self.crls)
        f1, f2 = next_num, next_num + 5
        count = f2 + 5 - 1
        font_refs = f"/Font << /F1 {f1} 0 R /F2 {f2} 0 R >>".encode()

        def refs(nums: list[int]) -> bytes:
            return b"[" + b" ".join(f"{n} 0 R".encode() for n in nums) + b"]"

        objects: dict[int, bytes] = {
            CATALOG: (
                f"<< /Type /Catalog /Pages {PAGES} 0 R /Metadata {XMP} 0 R /Lang ".encode()
                + text_string(t.language)
                + f" /AcroForm << /Fields [{WIDGET} 0 R] /SigFlags 3 >>"
                f" /Perms << /DocMDP {SIG} 0 R >> /DSS {DSS} 0 R"
                " /ViewerPreferences << /DisplayDocTitle true >>"
                # PAdES structures (DSS, CAdES subfilter) in a PDF 1.7 file
                " /Extensions << /ESIC << /BaseVersion /1.7 /ExtensionLevel 1 >> >> >>".encode()
            ),
            PAGES: f"<< /Type /Pages /Kids [{PAGE} 0 R] /Count 1 >>".encode(),
            PAGE: (
                f"<< /Type /Page /Parent {PAGES} 0 R /MediaBox [0 0 {t.width:.2f} {t.height:.2f}]"
                f" /Contents [{STATIC} 0 R {VALUES} 0 R] /Resources << ".encode()
                + font_refs
                + f" /ProcSet [/PDF /Text] >> /Annots [{WIDGET} 0 R] >>".encode()
            ),
            STATIC: stream(self.layout.static_ops, level=9),
            XMP: raw_stream(self._xmp(), b" /Type /Metadata /Subtype /XML"),
            DSS: b"<< /Certs " + refs(cert_nums) + b" /CRLs " + refs(crl_nums) + b" >>",
        }
        for num, cert in zip(cert_nums, chain, strict=True):
            objects[num] = stream(_der(cert), level=9)
        for num, crl in zip(crl_nums, self.crls, strict=True):
            objects[num] = stream(crl.public_bytes(Encoding.DER), level=9)
        for first, font in ((f1, self.regular), (f2, self.bold)):
            for i, body in enumerate(font.objects(first)):
                objects[first + i] = body
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets: dict[int, int] = {}
        for num in sorted(objects):
            offsets[num] = len(out)
            out += indirect(num, objects[num])
        return _Prefix(data=bytes(out), offsets=offsets, count=count, font_refs=font_refs,
                       catalog=objects[CATALOG], page=objects[PAGE])  # fmt: skip

    def _xmp(self) -> bytes:
        t = self.template

        def esc(s: str) -> str:
            return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        xmp = (
            '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
            ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
            ' xmlns:pdf="http://ns.adobe.com/pdf/1.3/">'
            f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{esc(t.title_meta)}</rdf:li>'
            "</rdf:Alt></dc:title>"
            f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{esc(t.subject_meta)}'
            "</rdf:li></rdf:Alt></dc:description>"
            f"<dc:language><rdf:Bag><rdf:li>{esc(t.language)}</rdf:li></rdf:Bag></dc:language>"
            f"<pdf:Keywords>{esc(t.keywords)}</pdf:Keywords>"
            f"<pdf:Producer>{esc(PRODUCER)}</pdf:Producer>"
            "</rdf:Description></rdf:RDF></x:xmpmeta>\n"
            '<?xpacket end="r"?>'
        )
        return xmp.encode("utf-8")

    # -- per passport ------------------------------------------------------
    def sign(self, data: PassportData, *, now: dt.datetime) -> bytes:
        """The complete signed PDF for one passport, signing time ``now``."""
        t, layout = self.template, self.layout
        prefix = self._prefix
        when = pdf_date(now)
        r = layout.sig_rect
        signed_on = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        contents_hex = b"0" * (2 * self.reserved)
        objects = {
            VALUES: stream(layout.values_ops(data), level=1),  # level 1: 0.07 ms vs 0.5 ms, +1.3 kB
            INFO: (
                b"<< /Title " + text_string(t.title_meta)
                + b" /Subject " + text_string(t.subject_meta)
                + b" /Keywords " + text_string(t.keywords)
                + b" /Author " + text_string(self.centre)
                + b" /Creator (vn-dcc) /Producer " + text_string(PRODUCER)
                + b" /CreationDate " + when + b" /ModDate " + when + b" >>"
            ),
            SIG: (
                b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached "
                + _BYTERANGE_PLACEHOLDER
                + b" /Contents <" + contents_hex + b">"
                + b" /M " + when
                + b" /Name " + text_string(self.centre)
                + b" /Reason " + text_string(t.reason)
                + b" /Location " + text_string(self.location)
                + b" /Reference [<< /Type /SigRef /TransformMethod /DocMDP"
                b" /TransformParams << /Type /TransformParams /P 1 /V /1.2 >> >>]"
                b" /Prop_Build << /App << /Name /vn-dcc >> >> >>"
            ),
            WIDGET: (
                b"<< /Type /Annot /Subtype /Widget /FT /Sig /T "
                + text_string(t.field_name)
                + f" /V {SIG} 0 R /F 132 /P {PAGE} 0 R"
                f" /Rect [{r.x:.2f} {r.y:.2f} {r.x + r.w:.2f} {r.y + r.h:.2f}]"
                f" /AP << /N {APPEARANCE} 0 R >> >>".encode()
            ),
            APPEARANCE: self._appearance(signed_on),
        }
        out = bytearray(prefix.data)
        offsets = dict(prefix.offsets)
        for num in _DYNAMIC:
            offsets[num] = len(out)
            out += indirect(num, objects[num])
        xref_at = len(out)
        file_id = hashlib.md5(bytes(out[-4096:]) + when, usedforsecurity=False).hexdigest()
        out += xref_table([offsets[n] for n in range(1, prefix.count + 1)])
        out += (
            f"trailer\n<< /Size {prefix.count + 1} /Root {CATALOG} 0 R /Info {INFO} 0 R"
            f" /ID [<{file_id}> <{file_id}>] >>\nstartxref\n{xref_at}\n%%EOF\n"
        ).encode()
        signed = self._sign_bytes(out, offsets[SIG])
        if not self.archive_timestamp or self.timestamper is None:
            return signed
        return append_document_timestamp(
            signed, catalog=(CATALOG, prefix.catalog), page=(PAGE, prefix.page), widget=WIDGET,
            size=prefix.count + 1, info=INFO, file_id=file_id, timestamper=self.timestamper,
            reserved=self._archive_reserved,
        )  # fmt: skip

    def _appearance(self, signed_on: str) -> bytes:
        """The signature box's form XObject for a signing minute (the same for
        every passport of a run: made once, not compressed again per passport)."""
        cached = self._appearance_cache
        if cached is None or cached[0] != signed_on:
            r = self.layout.sig_rect
            body = stream(
                self.layout.signature_appearance(self.centre, signed_on),
                f" /Type /XObject /Subtype /Form /BBox [0 0 {r.w:.2f} {r.h:.2f}]"
                " /Resources << ".encode() + self._prefix.font_refs + b" >>",
            )
            cached = self._appearance_cache = (signed_on, body)
        return cached[1]

    def render_unsigned(self, data: PassportData, *, now: dt.datetime) -> bytes:
        """The same page as an ordinary unsigned PDF (for signing by other tools).

        Used by :mod:`signer.pdf.reference` (pyHanko's own ``PdfSigner``) as a
        cross-check and benchmark point; not on the fast path.
        """
        t = self.template
        when = pdf_date(now)
        f1, f2 = 8, 13
        font_refs = f"/Font << /F1 {f1} 0 R /F2 {f2} 0 R >>".encode()
        objects: dict[int, bytes] = {
            1: (
                b"<< /Type /Catalog /Pages 2 0 R /Metadata 6 0 R /Lang "
                + text_string(t.language)
                + b" /ViewerPreferences << /DisplayDocTitle true >> >>"
            ),
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: (
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {t.width:.2f} {t.height:.2f}]"
                " /Contents [4 0 R 5 0 R] /Resources << ".encode()
                + font_refs
                + b" /ProcSet [/PDF /Text] >> >>"
            ),
            4: stream(self.layout.static_ops, level=9),
            5: stream(self.layout.values_ops(data), level=6),
            6: raw_stream(self._xmp(), b" /Type /Metadata /Subtype /XML"),
            7: (
                b"<< /Title " + text_string(t.title_meta)
                + b" /Subject " + text_string(t.subject_meta)
                + b" /Author " + text_string(self.centre)
                + b" /Producer " + text_string(PRODUCER)
                + b" /CreationDate " + when + b" >>"
            ),
        }
        for first, font in ((f1, self.regular), (f2, self.bold)):
            for i, body in enumerate(font.objects(first)):
                objects[first + i] = body
        out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for num in sorted(objects):
            offsets.append(len(out))
            out += indirect(num, objects[num])
        xref_at = len(out)
        out += xref_table(offsets)
        out += (
            f"trailer\n<< /Size {len(offsets) + 1} /Root 1 0 R /Info 7 0 R >>\n"
            f"startxref\n{xref_at}\n%%EOF\n"
        ).encode()
        return bytes(out)

    def _sign_bytes(self, out: bytearray, sig_offset: int) -> bytes:
        br_at = out.index(_BYTERANGE_PLACEHOLDER, sig_offset)
        start = out.index(b"/Contents <", sig_offset) + len(b"/Contents ")
        end = start + 2 * self.reserved + 2
        total = len(out)
        byte_range = f"/ByteRange [0 {start:>10} {end:>10} {total - end:>10}]".encode()
        out[br_at : br_at + len(byte_range)] = byte_range
        # out starts with the run's prefix (sign() copies it) and the signature
        # object comes after it: the prefix's part of the digest is made once per run
        digest = self._prefix_digest.copy()
        view = memoryview(out)
        digest.update(view[len(self._prefix.data) : start])
        digest.update(view[end:])
        del view
        stamp = self.timestamper.timestamp if self.timestamper is not None else None
        cms_der = self.cms.sign(digest.digest(), timestamp=stamp)
        if len(cms_der) > self.reserved:
            raise KeyBackendError("CMS signature larger than the space reserved for it")
        hex_sig = cms_der.hex().encode("ascii")
        out[start + 1 : start + 1 + len(hex_sig)] = hex_sig
        return bytes(out)
