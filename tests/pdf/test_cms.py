"""The CMS template patch (signer.pdf.cms, asn1crypto only) against pyHanko building the
same CMS from scratch: identical except the (randomised) signature value, which verifies."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding

from signer.pdf.cms import CmsKey, CmsTemplate, load_cms
from signer.pdf.pyhanko_signer import KeySigner
from tests.pdf.conftest import PdfPki


@pytest.mark.parametrize("which", ["good", "rsa"])
def test_patched_cms_equals_pyhanko_build(which: str, pdf_pki: PdfPki) -> None:
    key = getattr(pdf_pki, which)
    signer = KeySigner(key)
    template = CmsTemplate.build(CmsKey(key))
    digest = hashlib.sha256(b"some PDF byte ranges").digest()
    ours_der = template.sign(digest)
    ours = load_cms(ours_der)
    theirs = asyncio.run(signer.async_sign(digest, "sha256", use_pades=True))
    # byte for byte, once pyHanko's signature value is put in ours' place
    theirs["content"]["signer_infos"][0]["signature"] = ours["content"]["signer_infos"][0]["signature"].native
    assert theirs.dump(force=True) == ours_der
    ours_sd, theirs_sd = ours["content"], theirs["content"]
    assert ours_sd["certificates"].dump() == theirs_sd["certificates"].dump()
    assert ours_sd["digest_algorithms"].dump() == theirs_sd["digest_algorithms"].dump()
    si, si2 = ours_sd["signer_infos"][0], theirs_sd["signer_infos"][0]
    for part in ("sid", "digest_algorithm", "signed_attrs", "signature_algorithm"):
        assert si[part].dump() == si2[part].dump(), part
    attrs = {a["type"].native: a["values"][0] for a in si["signed_attrs"]}
    assert attrs["message_digest"].native == digest
    assert "signing_time" not in attrs  # PAdES: the time is the dictionary's /M
    # exactly what docs/pdf.md lists (nothing per-document but the digest)
    assert set(attrs) == {"content_type", "message_digest", "signing_certificate_v2"}
    # the signature over the DER SET of the signed attributes verifies
    signed = b"\x31" + si["signed_attrs"].dump()[1:]
    public = key.certificate.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(si["signature"].native, signed, ec.ECDSA(hashes.SHA256()))
    else:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        public.verify(si["signature"].native, signed, pss, hashes.SHA256())
    # many signatures: the re-encoded lengths hold for every ECDSA length (70-72 bytes)
    for i in range(40):
        d = hashlib.sha256(bytes([i])).digest()
        info = load_cms(template.sign(d))
        assert info["content"]["signer_infos"][0]["signed_attrs"][1]["values"][0].native == d
        assert len(template.sign(d)) <= template.size_hint
