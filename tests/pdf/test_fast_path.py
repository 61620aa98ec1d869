"""The fast signature path (verifier/pdf/fast.py, issue 13) agrees with pyHanko's.

The fast path only ever accepts: on every file it answers either exactly
pyHanko's report of a valid signature or nothing (pyHanko decides). So the
whole verdict, reasons, signer JSON and PAdES level included, must be the
same with and without it, on every committed vector (clean and tampered),
on passports of every test signer (EC and RSA keys, revoked, expired,
outsider) and on single-byte corruptions; and the clean B-B and B-LT
passports must actually take it (else the speed-up is silently gone).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keys.certs import make_dsc
from keys.software import SoftwareKey
from signer.pdf.sign import PassportPdfSigner
from tests.fixtures.pki import NOW
from tests.pdf.conftest import CENTRE, PERSON_A, SIGN_TIME, Issued, PdfPki, make_passport
from verifier.pdf import verify_pdf
from verifier.pdf.fast import fast_signature_report
from verifier.pdf.report import PDF_CHECKS
from verifier.trust import TrustStore, load_trust, load_trust_material

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "pdf-tamper"
#: the vectors whose signature is valid and as the signer makes it (one, whole file)
FAST = {"clean", "b-lt-clean"}
CASES = [
    pytest.param(folder, case, id=f"{folder.name}-{i}")
    for folder in sorted(p for p in VECTORS.iterdir() if (p / "expected.json").is_file())
    for i, case in enumerate(json.loads((folder / "expected.json").read_text("utf-8"))["cases"])
]


def _at(folder: Path) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads((folder / "expected.json").read_text("utf-8"))["at"])


def _both(data: bytes, trust: TrustStore, now: dt.datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    fast = verify_pdf(data, trust, now=now).to_dict()
    slow = verify_pdf(data, trust, now=now, fast_path=False).to_dict()
    return fast, slow


@pytest.mark.parametrize(("folder", "case"), CASES)
def test_vectors_same_verdict_both_paths(folder: Path, case: dict[str, Any], tmp_path: Path) -> None:
    at = _at(folder)
    trust = load_trust_material([VECTORS / t for t in case["trust"]], now=at, state_dir=tmp_path)
    data = (folder / "passport.pdf").read_bytes()
    fast, slow = _both(data, trust, at)
    assert fast == slow
    assert sorted([e["check"], e["reason"]] for e in fast["errors"]) == case["errors"]
    taken = fast_signature_report(data, trust, now=at)
    assert (taken is not None) is (folder.name in FAST)
    if taken is not None:
        assert all(v is True for v in taken.checks.values()) and not taken.errors


def test_fast_path_declines_what_it_cannot_prove(tmp_path: Path) -> None:
    folder = VECTORS / "clean"
    at = _at(folder)
    data = (folder / "passport.pdf").read_bytes()
    full = [VECTORS / "trust" / "csca.pem", VECTORS / "trust" / "trustlist.cbor"]
    trust = load_trust_material(full, now=at, state_dir=tmp_path)
    assert fast_signature_report(data, trust, now=at) is not None
    # a byte after the last %%EOF, the DSC no longer valid, no CSCA (DSC files trusted directly)
    assert fast_signature_report(data + b"x", trust, now=at) is None
    later = at + dt.timedelta(days=3650)
    assert fast_signature_report(data, trust, now=later) is None
    dsc_only = load_trust_material([VECTORS / "trust" / "dsc-expired.pem"], now=at, state_dir=tmp_path)
    assert fast_signature_report(data, dsc_only, now=at) is None
    # a validation time before the signing time claimed in /M
    early = at - dt.timedelta(days=3)
    assert fast_signature_report(data, trust, now=early) is None
    assert _both(data, trust, early)[0] == _both(data, trust, early)[1]


@pytest.mark.parametrize("signer", ["good", "rsa", "revoked", "expired", "outsider"])
def test_test_signers_same_verdict_both_paths(pdf_pki: PdfPki, signer: str) -> None:
    key = getattr(pdf_pki, signer)
    issued: Issued = make_passport(key, PERSON_A, crl=pdf_pki.crl, check=signer != "expired",
                                   check_pdf=False)  # fmt: skip
    trust = pdf_pki.trust()
    fast, slow = _both(issued.pdf, trust, NOW)
    assert fast == slow
    assert fast["valid"] is (signer in ("good", "rsa"))
    assert (fast_signature_report(issued.pdf, trust, now=NOW) is not None) is fast["valid"]


@pytest.mark.parametrize(
    ("this_update", "next_update"),
    [(-40, -20), (1, 30)],  # stale at the signing time; issued after it (not yet valid then)
    ids=["stale", "later"],
)
def test_crl_not_valid_at_signing_time_same_verdict(
    pdf_pki: PdfPki, this_update: int, next_update: int
) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pdf_pki.csca.subject)
        .last_update(SIGN_TIME + dt.timedelta(days=this_update))
        .next_update(SIGN_TIME + dt.timedelta(days=next_update))
        .add_extension(x509.CRLNumber(7), critical=False)
        .sign(pdf_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    issued = make_passport(pdf_pki.good, PERSON_A, crl=crl, check_pdf=False)
    trust = pdf_pki.trust()
    assert fast_signature_report(issued.pdf, trust, now=NOW) is None
    fast, slow = _both(issued.pdf, trust, NOW)
    assert fast == slow
    assert fast["valid"] is False and fast["checks"]["pdf_revocation"] is False


def test_dsc_under_an_intermediate_ca_goes_to_pyhanko(pdf_pki: PdfPki) -> None:
    # the fast path only knows a DSC issued directly by a CSCA; pyHanko builds the longer path
    inter_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Intermediate CA")])  # fmt: skip
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                          crl_sign=True, encipher_only=False, decipher_only=False)  # fmt: skip
    inter = (
        x509.CertificateBuilder().subject_name(name).issuer_name(pdf_pki.csca.subject)
        .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=300)).not_valid_after(NOW + dt.timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(inter_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            pdf_pki.csca.public_key()), critical=False)  # type: ignore[arg-type]
        .sign(pdf_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )  # fmt: skip
    inter_crl = (
        x509.CertificateRevocationListBuilder().issuer_name(name)
        .last_update(NOW - dt.timedelta(days=10)).next_update(NOW + dt.timedelta(days=20))
        .add_extension(x509.CRLNumber(1), critical=False).sign(inter_key, hashes.SHA256())
    )  # fmt: skip
    k = ec.generate_private_key(ec.SECP256R1())
    dsc = make_dsc(inter, inter_key, k.public_key(), name="Centre under an intermediate",
                   now=NOW - dt.timedelta(days=60))  # fmt: skip
    key = SoftwareKey(private_key=k, certificate=dsc, chain=(inter, pdf_pki.csca))
    signer = PassportPdfSigner(key, centre=CENTRE, crls=[pdf_pki.crl, inter_crl], now=SIGN_TIME,
                               check_certificate_status=False)  # fmt: skip
    issued = make_passport(key, PERSON_A, crl=pdf_pki.crl, signer=signer)
    trust = pdf_pki.trust()
    assert fast_signature_report(issued.pdf, trust, now=NOW) is None
    fast, slow = _both(issued.pdf, trust, NOW)
    assert fast == slow
    assert all(fast["checks"][c] is True for c in PDF_CHECKS)  # pyHanko accepts the signature


def test_corrupted_bytes_same_verdict_both_paths(pdf_pki: PdfPki, passport_a: Issued) -> None:
    trust = load_trust(list(pdf_pki.trust_files), now=NOW, state_dir=pdf_pki.state_dir)
    rng = random.Random(13)
    data = passport_a.pdf
    for pos in sorted(rng.sample(range(len(data)), 24)):
        bad = bytearray(data)
        bad[pos] ^= 1 << rng.randrange(8)
        fast, slow = _both(bytes(bad), trust, NOW)
        assert fast == slow, pos
        if fast["valid"]:  # only a flip inside the /Contents padding can leave it valid
            assert bytes(bad).count(b"%%EOF") == data.count(b"%%EOF")


def test_command_line_imports_no_pyhanko_validation_pillow_or_rules(tmp_path: Path) -> None:
    folder = VECTORS / "b-lt-clean"
    code = (
        "import sys; from verifier.cli import main; code = main(sys.argv[1:]); "
        "heavy = sorted(m for m in sys.modules if m.startswith(('pyhanko.sign.validation', "
        "'pyhanko.sign.diff_analysis', 'pyhanko.sign.signers.', 'pyhanko_certvalidator.context', "
        "'pyhanko_certvalidator.validate', 'aiohttp', 'PIL'))); "
        "heavy += [m for m in ('verifier.rules', 'http.server') if m in sys.modules]; "  # rules_cli, serve
        "print(code, heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "pdf", "--trust", str(VECTORS / "trust" / "csca.pem"),
         "--trust", str(VECTORS / "trust" / "trustlist.cbor"), "--at", _at(folder).isoformat(),
         "--json", str(folder / "passport.pdf")],
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
        env={"VNDCC_VERIFIER_STATE": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    verdict, last = done.stdout.splitlines()
    assert json.loads(verdict)["signer"]["pades_level"] == "B-LT", done.stderr
    assert last == "0 []", last
