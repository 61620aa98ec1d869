"""The fast path remembers the chain's signature checks (DSC by CSCA, CRL by CSCA) by their
bytes (verifier/pdf/fast.py: _signed_by, _crl_signed_by), never a verdict: what depends on
the time is checked at each call. One process, warm caches: the same passport is valid at a
time inside every validity period, not after the DSC expired (a B-B signature proves no
time), valid again before,
and the verdicts equal those of a cold process's pyHanko path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from verifier.pdf import fast, verify_pdf
from verifier.pdf.fast import fast_signature_report
from verifier.trust import load_trust_material

VECTORS = Path(__file__).resolve().parents[2] / "tests" / "vectors" / "pdf-tamper"
AT = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _dsc_not_after(data: bytes) -> dt.datetime:
    import io

    from asn1crypto import cms
    from pyhanko.pdf_utils.reader import PdfFileReader

    fields = PdfFileReader(io.BytesIO(data), strict=False).root["/AcroForm"]["/Fields"]
    sig = next(f.get_object() for f in fields if "/V" in f.get_object())["/V"]
    signed = cms.ContentInfo.load(sig.raw_get("/Contents").original_bytes)["content"]
    dsc = next(c.chosen for c in signed["certificates"] if not c.chosen.ca)
    return dsc["tbs_certificate"]["validity"]["not_after"].native


def test_time_is_checked_at_every_call(tmp_path: Path) -> None:
    data = (VECTORS / "clean" / "passport.pdf").read_bytes()
    trust = load_trust_material([VECTORS / "trust" / "csca.pem", VECTORS / "trust" / "trustlist.cbor"],
                                now=AT, state_dir=tmp_path)  # fmt: skip
    stale = _dsc_not_after(data) + dt.timedelta(days=1)
    fast._SIGNATURES.clear()
    for _ in range(2):
        assert fast_signature_report(data, trust, now=AT) is not None
        assert verify_pdf(data, trust, now=AT).valid
        assert fast_signature_report(data, trust, now=stale) is None  # B-B: the DSC must be valid now
        late = verify_pdf(data, trust, now=stale)
        assert not late.valid
        assert late.to_json() == verify_pdf(data, trust, now=stale, fast_path=False).to_json()
    kinds = sorted(key[0].split(b":")[0] for key in fast._SIGNATURES)
    assert kinds == [b"cert", b"crl"]  # the DSC by its CSCA and the CRL, remembered once each
    assert verify_pdf(data, trust, now=AT).to_json() == verify_pdf(data, trust, now=AT, fast_path=False).to_json()


def test_a_revoked_dsc_stays_revoked_with_warm_caches(tmp_path: Path) -> None:
    trust = load_trust_material([VECTORS / "trust" / "csca.pem", VECTORS / "trust" / "trustlist.cbor"],
                                now=AT, state_dir=tmp_path)  # fmt: skip
    clean = (VECTORS / "clean" / "passport.pdf").read_bytes()
    revoked = (VECTORS / "revoked-dsc" / "passport.pdf").read_bytes()
    for _ in range(2):
        assert verify_pdf(clean, trust, now=AT).valid
        assert not verify_pdf(revoked, trust, now=AT).valid
