"""CMS (CAdES-detached) signatures for PAdES over our SigningKey, as a patched template.

    >>> from signer.pdf.cms import CmsKey, CmsTemplate
    >>> signer = CmsKey(key)                         # doctest: +SKIP
    >>> cms = CmsTemplate.build(signer)              # doctest: +SKIP
    >>> der = cms.sign(hashlib.sha256(pdf_ranges).digest())   # doctest: +SKIP

:class:`CmsKey` wraps a :class:`keys.base.SigningKey`: the same key object
(software file or the already logged-in PKCS#11 session) signs the HC1 and
the PDF. ECDSA comes back from the key as raw ``r || s`` (COSE form) and
goes into CMS as DER; RSA uses PSS with SHA-256, MGF1-SHA-256 and a 32-byte
salt, declared as RSASSA-PSS parameters (RFC 4056).

The SignedData (signed attributes of PAdES baseline B-B: content type,
message digest, ESS signing-certificate-v2; no CMS algorithm protection, no
signing-time attribute, ETSI EN 319 142-1 section 5.2) is built once per
signer with asn1crypto, exactly as pyHanko's ``Signer.async_sign(...,
use_pades=True)`` builds it (tests/pdf/test_cms.py compares the two byte for
byte; :class:`signer.pdf.pyhanko_signer.KeySigner` is the same key inside
pyHanko, kept for the reference path), without importing pyHanko (about
0.27 s per process). Per document only the message digest and the
signature value change; :meth:`CmsTemplate.sign` patches those two into the
template's DER (re-encoding the lengths of the enclosing structures), which
costs microseconds where rebuilding the ASN.1 objects costs about 8 ms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from asn1crypto import algos, cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from keys.base import SigningKey
from verifier.codec import CoseAlgorithm
from verifier.crypto import ecdsa_raw_to_der
from verifier.errors import KeyBackendError

_DIGEST = {
    CoseAlgorithm.ES256: "sha256",
    CoseAlgorithm.ES384: "sha384",
    CoseAlgorithm.PS256: "sha256",
}


def to_asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def signature_mechanism(alg: CoseAlgorithm) -> algos.SignedDigestAlgorithm:
    """CMS signature algorithm matching the key's COSE algorithm."""
    if alg == CoseAlgorithm.ES256:
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    if alg == CoseAlgorithm.ES384:
        return algos.SignedDigestAlgorithm({"algorithm": "sha384_ecdsa"})
    if alg == CoseAlgorithm.PS256:
        params = algos.RSASSAPSSParams(
            {
                "hash_algorithm": {"algorithm": "sha256"},
                "mask_gen_algorithm": {
                    "algorithm": "mgf1",
                    "parameters": {"algorithm": "sha256"},
                },
                "salt_length": 32,
                "trailer_field": "trailer_field_bc",
            }
        )
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    raise KeyBackendError(f"no CMS mechanism for COSE algorithm {alg!r}")


class CmsKey:
    """A :class:`keys.base.SigningKey` as a CMS signer: its certificates in
    asn1crypto form, the CMS signature algorithm and the one primitive,
    :meth:`sign_raw_sync` (``key.sign``, which hashes, DER-wrapped for ECDSA).

    No pyHanko here: :class:`signer.pdf.pyhanko_signer.KeySigner` (the same
    key inside pyHanko's signer, for :mod:`signer.pdf.reference` and the
    tests) builds the same SignedData (tested byte for byte, signature
    value aside), but importing pyHanko costs about 0.27 s per process.
    """

    def __init__(self, key: SigningKey) -> None:
        alg = CoseAlgorithm(key.alg)
        if alg not in _DIGEST:
            raise KeyBackendError(f"PDF signing does not support {alg.name}")
        self.key = key
        self.signing_cert = to_asn1(key.certificate)
        self.chain = tuple(to_asn1(c) for c in key.chain)
        self.signature_mechanism = signature_mechanism(alg)
        self.digest_algorithm = _DIGEST[alg]
        self._ecdsa = alg in (CoseAlgorithm.ES256, CoseAlgorithm.ES384)

    def sign_raw_sync(self, data: bytes) -> bytes:
        """The one primitive: ``key.sign`` (which hashes), DER-wrapped for ECDSA."""
        raw = self.key.sign(data)
        return ecdsa_raw_to_der(raw) if self._ecdsa else raw


def signed_attributes(signer: CmsKey, digest: bytes) -> cms.CMSAttributes:
    """The signed attributes of PAdES baseline B-B, as pyHanko's
    ``Signer.signed_attrs(..., use_pades=True)`` makes them: content type
    (data), message digest, ESS signing-certificate-v2 (SHA-256 of the
    signing certificate, its issuer and serial; RFC 5035); no signing time
    (ETSI EN 319 142-1 section 5.2: the time is the dictionary's /M)."""
    cert = signer.signing_cert
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                tsp.ESSCertIDv2(
                    {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "cert_hash": hashlib.sha256(cert.dump()).digest(),
                        "issuer_serial": {
                            "issuer": [asn1_x509.GeneralName({"directory_name": cert.issuer})],
                            "serial_number": cert["tbs_certificate"]["serial_number"],
                        },
                    }
                )
            ]
        }
    )
    return cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
            cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
        ]
    )


def signed_data(signer: CmsKey, signed_attrs: cms.CMSAttributes, signature: bytes) -> cms.ContentInfo:
    """A detached SignedData (version 1, content type data) as pyHanko's
    ``Signer._package_signature`` makes it with ``embed_roots=True``: the
    signing certificate and its whole chain, one SignerInfo identified by
    issuer and serial number."""
    cert = signer.signing_cert
    digest_algorithm = algos.DigestAlgorithm({"algorithm": signer.digest_algorithm})
    info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": cert.issuer, "serial_number": cert.serial_number}
                    )
                }
            ),
            "digest_algorithm": digest_algorithm,
            "signature_algorithm": signer.signature_mechanism,
            "signed_attrs": signed_attrs,
            "signature": signature,
        }
    )
    certs = [cms.CertificateChoices(name="certificate", value=c) for c in (*signer.chain, cert)]
    return cms.ContentInfo(
        {
            "content_type": cms.ContentType("signed_data"),
            "content": cms.SignedData(
                {
                    "version": "v1",
                    "digest_algorithms": cms.DigestAlgorithms((digest_algorithm,)),
                    "encap_content_info": {"content_type": "data"},
                    "certificates": certs,  # a SET OF: asn1crypto sorts the encodings (DER)
                    "signer_infos": [info],
                }
            ),
        }
    )


#: id-aa-signatureTimeStampToken (RFC 3161 appendix A, RFC 5652 section 11.4)
_TST_ATTR_OID: bytes = core.ObjectIdentifier("1.2.840.113549.1.9.16.2.14").dump()
#: bytes the unsignedAttrs [1] wrapper adds around a timestamp token (upper bound)
TIMESTAMP_OVERHEAD = 32


def signature_timestamp_attrs(token_der: bytes) -> bytes:
    """``unsignedAttrs [1] { signatureTimeStampToken { token } }`` as DER (PAdES B-T)."""
    values = b"\x31" + _der_length(len(token_der)) + token_der
    attr_body = _TST_ATTR_OID + values
    attr = b"\x30" + _der_length(len(attr_body)) + attr_body
    return b"\xa1" + _der_length(len(attr)) + attr


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(header length, content length, end) of the DER TLV at ``pos``."""
    first = data[pos + 1]
    if first < 0x80:
        return 2, first, pos + 2 + first
    n = first & 0x7F
    length = int.from_bytes(data[pos + 2 : pos + 2 + n], "big")
    return 2 + n, length, pos + 2 + n + length


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


@dataclass(frozen=True)
class CmsTemplate:
    """A pyHanko-built SignedData split around its message digest and signature.

    ``levels`` are the enclosing containers from the outside in (ContentInfo,
    [0], SignedData, signerInfos, SignerInfo), each as (tag byte, content
    before its last child); the SignerInfo's last child is the signature.
    """

    signer: CmsKey
    levels: tuple[tuple[int, bytes], ...]
    digest_marker: bytes
    signed_attrs: bytes  # DER SET OF Attribute, as signed (tag 0x31)
    size_hint: int

    @classmethod
    def build(cls, signer: CmsKey) -> CmsTemplate:
        digest_alg = signer.digest_algorithm
        marker = hashlib.new(digest_alg, b"vn-dcc cms template digest").digest()
        attrs_obj = signed_attributes(signer, marker)
        signed = b"\x31" + attrs_obj.dump()[1:]
        info = signed_data(signer, attrs_obj, signer.sign_raw_sync(signed))
        der = info.dump()
        signer_info = info["content"]["signer_infos"][0]
        signature = signer_info["signature"].native
        attrs = signer_info["signed_attrs"].dump()
        if der.count(marker) != 1 or attrs.count(marker) != 1:
            raise KeyBackendError("CMS template: message digest not found exactly once")
        levels: list[tuple[int, bytes]] = []
        pos, end = 0, len(der)
        for _ in range(5):  # ContentInfo, [0], SignedData, SET signerInfos, SignerInfo
            hlen, _clen, cend = _tlv(der, pos)
            if cend != end:
                raise KeyBackendError("CMS template: unexpected structure")
            child = pos + hlen
            last = child
            while True:
                _h, _c, nxt = _tlv(der, child)
                if nxt >= cend:
                    break
                child = nxt
            last = child
            levels.append((der[pos], der[pos + hlen : last]))
            pos = last
        hlen, _clen, cend = _tlv(der, pos)
        if der[pos] != 0x04 or der[pos + hlen : cend] != signature:
            raise KeyBackendError("CMS template: signature is not the last element")
        return cls(
            signer=signer,
            levels=tuple(levels),
            digest_marker=marker,
            signed_attrs=b"\x31" + attrs[1:],
            size_hint=len(der) + 16,
        )

    def sign(self, digest: bytes, *, timestamp: Callable[[bytes], bytes] | None = None) -> bytes:
        """DER ContentInfo signing ``digest`` (the PDF byte-range hash).

        With ``timestamp`` (signature value -> DER TimeStampToken, e.g.
        :meth:`signer.pdf.tsa.HttpTimestamper.timestamp`) the SignerInfo gets
        the signature timestamp as its unsigned attribute, after the
        signature value (ETSI EN 319 142-1 section 5.3, PAdES B-T).
        """
        if len(digest) != len(self.digest_marker):
            raise KeyBackendError("digest length does not match the signer's algorithm")
        attrs = self.signed_attrs.replace(self.digest_marker, digest)
        signature = self.signer.sign_raw_sync(attrs)
        body = b"\x04" + _der_length(len(signature)) + signature
        if timestamp is not None:
            body += signature_timestamp_attrs(timestamp(signature))
        levels = self.levels
        last = len(levels) - 1
        for i in range(last, -1, -1):
            tag, prefix = levels[i]
            if i == last:
                prefix = prefix.replace(self.digest_marker, digest)
            content = prefix + body
            body = bytes((tag,)) + _der_length(len(content)) + content
        return body


def load_cms(der: bytes) -> cms.ContentInfo:
    """Parse a CMS ContentInfo (for tests and checks)."""
    return cms.ContentInfo.load(der)
