"""PAdES B-LT with the national TSA: RFC 3161 signature timestamps over HTTP.

A real HTTP TSA (keys.tsa.make_server, the server behind `python -m keys tsa-serve`)
runs on 127.0.0.1 with a free port in a thread for this module; its clock is pinned
to SIGN_TIME + 2 s. Its key and certificate are made here from the test CSCA of
tests/pdf/conftest.py (ECDSA P-256; EKU id-kp-timeStamping, critical); a rogue TSA
has its own CA that no trust material names. Nothing is committed.

Checked: passports signed with a timestamper verify (pdf_timestamp, pades_level
B-LT, the DSC validated at the token's genTime), pyHanko's own validator sees the
timestamp valid and trusted, pdfsig still says valid + trusted; a rogue TSA, a
token over another signature value, an altered token, a revoked TSA and a TSA
certificate without the timeStamping EKU are rejected with their reasons; the
default (no TSA) stays B-B; both CLIs end to end; a SoftHSM2 token key with a TSA.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext

from keys.certs import make_csca, make_dsc, new_private_key
from keys.pkcs11_key import Pkcs11Key
from keys.tsa import TimeStampAuthority, make_server, make_tsa_certificate
from signer.pdf import PassportPdfSigner
from signer.pdf.model import PassportData
from signer.pdf.tsa import HttpTimestamper
from tests.fixtures import pki as pki_fixtures
from tests.fixtures.pki import NOW
from tests.pdf.conftest import CENTRE, PERSON_A, PERSON_B, SIGN_TIME, PdfPki, PdfSig, make_passport
from verifier.errors import KeyBackendError
from verifier.pdf import verify_pdf
from verifier.trust import load_trust

TSA_TIME = SIGN_TIME + dt.timedelta(seconds=2)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Tsa:
    authority: TimeStampAuthority
    url: str



def _serve(authority: TimeStampAuthority) -> Iterator[Tsa]:
    server = make_server(authority, host="127.0.0.1", port=0, clock=lambda: TSA_TIME)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Tsa(authority=authority, url=f"http://127.0.0.1:{server.server_address[1]}/tsa")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _authority(ca: x509.Certificate, ca_key: object, *, key_type: str = "ec-p256",
               eku: bool = True) -> TimeStampAuthority:
    key = new_private_key(key_type)
    if eku:
        cert = make_tsa_certificate(ca, ca_key, key.public_key(),  # type: ignore[arg-type]
                                    now=NOW - dt.timedelta(days=100))
    else:  # a DSC-shaped certificate: no id-kp-timeStamping
        cert = make_dsc(ca, ca_key, key.public_key(), name="Not a TSA",  # type: ignore[arg-type]
                        now=NOW - dt.timedelta(days=100))
    return TimeStampAuthority(key=key, certificate=cert, chain=(ca,))


@pytest.fixture(scope="module")
def tsa(pdf_pki: PdfPki) -> Iterator[Tsa]:
    yield from _serve(_authority(pdf_pki.csca, pdf_pki.csca_key))


@pytest.fixture(scope="module")
def tsa_signer(pdf_pki: PdfPki, tsa: Tsa) -> PassportPdfSigner:
    return PassportPdfSigner(pdf_pki.good, centre=CENTRE, crls=[pdf_pki.crl], now=SIGN_TIME,
                             timestamper=HttpTimestamper(tsa.url))


@pytest.fixture(scope="module")
def blt_pdf(pdf_pki: PdfPki, tsa_signer: PassportPdfSigner) -> bytes:
    return make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=tsa_signer).pdf


def _signer_with(pdf_pki: PdfPki, timestamper: Any, **kw: Any) -> PassportPdfSigner:
    return PassportPdfSigner(pdf_pki.good, centre=CENTRE, crls=kw.pop("crls", [pdf_pki.crl]),
                             now=SIGN_TIME, timestamper=timestamper, **kw)


def test_b_lt_passport_verifies(blt_pdf: bytes, pdf_pki: PdfPki, tsa: Tsa) -> None:
    v = verify_pdf(blt_pdf, pdf_pki.trust(), now=NOW)
    assert v.valid, v.errors
    assert v.checks["pdf_timestamp"] is True
    assert v.signer is not None
    assert v.signer["pades_level"] == "B-LT"
    assert v.signer["timestamp"] == TSA_TIME.isoformat()
    assert "Time-Stamping Authority" in v.signer["tsa"]
    out = v.to_dict()
    assert out["checks"]["pdf_timestamp"] is True and out["signer"]["pades_level"] == "B-LT"
    # the TSA certificate is in the DSS (validation data), with the CSCA's CRL
    tsa_der = tsa.authority.certificate.public_bytes(Encoding.DER)
    reader = PdfFileReader(io.BytesIO(blt_pdf))
    dss = reader.root["/DSS"]
    assert tsa_der in [ref.get_object().data for ref in dss["/Certs"]]
    assert len(dss["/CRLs"]) == 1


def test_default_stays_b_b(passport_a: object, pdf_pki: PdfPki) -> None:
    v = verify_pdf(passport_a.pdf, pdf_pki.trust(), now=NOW)  # type: ignore[attr-defined]
    assert v.valid and v.signer is not None and v.signer["pades_level"] == "B-B"
    assert v.signer["timestamp"] is None
    assert "pdf_timestamp" not in v.to_dict()["checks"]


def test_dsc_validity_is_checked_at_the_timestamp(
    pdf_pki: PdfPki, tsa: Tsa
) -> None:
    # /M claims a time when the DSC was valid, the TSA says it was already expired
    late = pdf_pki.good.certificate.not_valid_after_utc + dt.timedelta(days=1)
    server = make_server(tsa.authority, clock=lambda: late)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        # a CRL current at the TSA's time, so that the timestamp itself is valid
        crl = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pdf_pki.csca.subject)
            .last_update(late - dt.timedelta(days=1))
            .next_update(late + dt.timedelta(days=20))
            .add_extension(x509.CRLNumber(3), critical=False)
            .sign(pdf_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        signer = _signer_with(pdf_pki, HttpTimestamper(url), crls=[crl],
                              check_certificate_status=False)
        pdf = make_passport(pdf_pki.good, PERSON_A, crl=crl, signer=signer).pdf
    finally:
        server.shutdown()
        server.server_close()
    v = verify_pdf(pdf, pdf_pki.trust(), now=late + dt.timedelta(days=1))
    assert not v.valid
    assert v.signer is not None and v.signer["timestamp"] == late.isoformat()
    assert v.checks["pdf_timestamp"] is True
    assert v.checks["pdf_chain"] is False and "dsc_expired" in v.reasons


def test_pyhanko_sees_the_timestamp_valid(blt_pdf: bytes, pdf_pki: PdfPki) -> None:
    root = asn1_x509.Certificate.load(pdf_pki.csca.public_bytes(Encoding.DER))
    crl = asn1_crl.CertificateList.load(pdf_pki.crl.public_bytes(Encoding.DER))
    ctx = ValidationContext(trust_roots=[root], crls=[crl], allow_fetching=False, moment=TSA_TIME)
    sig = PdfFileReader(io.BytesIO(blt_pdf)).embedded_signatures[0]
    status = validate_pdf_signature(
        sig, ctx, key_usage_settings=KeyUsageConstraints(key_usage={"digital_signature"})
    )
    ts = status.timestamp_validity
    assert ts is not None and ts.intact and ts.valid and ts.trusted
    assert ts.timestamp == TSA_TIME
    assert status.bottom_line


def test_pdfsig_still_valid_and_trusted(pdfsig: PdfSig, blt_pdf: bytes, tmp_path: Path) -> None:
    out = pdfsig.run(blt_pdf, tmp_path)
    assert "Signature Validation: Signature is Valid." in out, out
    assert "Certificate Validation: Certificate is Trusted." in out, out
    assert "Total document signed" in out


def test_rogue_tsa_rejected(pdf_pki: PdfPki) -> None:
    rogue_ca_key = new_private_key("ec-p256")
    rogue_ca = make_csca(rogue_ca_key, country="VN", name="Rogue TSA CA",
                         now=NOW - dt.timedelta(days=400))
    for rogue in _serve(_authority(rogue_ca, rogue_ca_key)):
        # the signer refuses a TSA whose issuer gave no CRL ...
        with pytest.raises(KeyBackendError, match="timestamp authority's certificate"):
            _signer_with(pdf_pki, HttpTimestamper(rogue.url))
        # ... and a verifier rejects its timestamp when a signer does not check
        signer = _signer_with(pdf_pki, HttpTimestamper(rogue.url), check_certificate_status=False)
        pdf = make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=signer).pdf
    v = verify_pdf(pdf, pdf_pki.trust(), now=NOW)
    assert not v.valid
    assert v.checks["pdf_timestamp"] is False and "tsa_untrusted" in v.reasons
    assert v.signer is not None and v.signer["pades_level"] is None
    # everything else about the passport is fine
    assert all(v.checks[k] for k in ("pdf_signature", "pdf_integrity", "pdf_chain", "qr"))


def test_invalid_timestamp_leaves_the_claim_in_charge(pdf_pki: PdfPki) -> None:
    # an untrusted TSA claiming a time after the DSC's expiry: the timestamp fails and
    # proves nothing, so the DSC is judged now (issue 13: /M is only a claim), never
    # at the untrusted genTime
    late = pdf_pki.good.certificate.not_valid_after_utc + dt.timedelta(days=1)
    rogue_ca_key = new_private_key("ec-p256")
    rogue_ca = make_csca(rogue_ca_key, country="VN", name="Rogue TSA CA",
                         now=NOW - dt.timedelta(days=400))
    server = make_server(_authority(rogue_ca, rogue_ca_key), clock=lambda: late)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        signer = _signer_with(pdf_pki, HttpTimestamper(url), check_certificate_status=False)
        pdf = make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=signer).pdf
    finally:
        server.shutdown()
        server.server_close()
    checked = late + dt.timedelta(days=1)
    v = verify_pdf(pdf, pdf_pki.trust(), now=checked)
    assert not v.valid
    assert v.checks["pdf_timestamp"] is False and "tsa_untrusted" in v.reasons
    assert v.checks["pdf_chain"] is False and "dsc_expired" in v.reasons
    assert v.signer is not None and v.signer["signing_time_proven"] is False
    assert v.signer["certificate_checked_at"] == checked.isoformat()
    assert v.signer["pades_level"] is None


class _OtherImprint:
    """A timestamper that stamps another signature value than the one it is given."""

    def __init__(self, inner: HttpTimestamper) -> None:
        self.inner = inner

    def timestamp(self, data: bytes) -> bytes:
        return self.inner.timestamp(b"another signature " + data)


def test_token_over_another_signature_rejected(pdf_pki: PdfPki, tsa: Tsa) -> None:
    signer = _signer_with(pdf_pki, _OtherImprint(HttpTimestamper(tsa.url)))
    pdf = make_passport(pdf_pki.good, PERSON_B, crl=pdf_pki.crl, signer=signer).pdf
    v = verify_pdf(pdf, pdf_pki.trust(), now=NOW)
    assert not v.valid
    assert v.checks["pdf_timestamp"] is False and "timestamp_imprint_mismatch" in v.reasons


def test_altered_token_rejected(blt_pdf: bytes, pdf_pki: PdfPki) -> None:
    # /Contents is outside the signed byte range: change the token's genTime in place
    old = TSA_TIME.strftime("%Y%m%d%H%M%SZ").encode().hex().encode()
    new = (TSA_TIME - dt.timedelta(days=1)).strftime("%Y%m%d%H%M%SZ").encode().hex().encode()
    assert blt_pdf.count(old) == 1
    v = verify_pdf(blt_pdf.replace(old, new), pdf_pki.trust(), now=NOW)
    assert not v.valid
    assert v.checks["pdf_integrity"] is True
    assert v.checks["pdf_timestamp"] is False and "timestamp_bad_signature" in v.reasons


def test_revoked_tsa_rejected(pdf_pki: PdfPki, tsa: Tsa) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pdf_pki.csca.subject)
        .last_update(NOW - dt.timedelta(days=5))
        .next_update(NOW + dt.timedelta(days=20))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(tsa.authority.certificate.serial_number)
            .revocation_date(NOW - dt.timedelta(days=30))
            .build()
        )
        .add_extension(x509.CRLNumber(2), critical=False)
        .sign(pdf_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    with pytest.raises(KeyBackendError, match="revoked"):
        _signer_with(pdf_pki, HttpTimestamper(tsa.url), crls=[crl])
    signer = _signer_with(pdf_pki, HttpTimestamper(tsa.url), crls=[crl],
                          check_certificate_status=False)
    pdf = make_passport(pdf_pki.good, PERSON_A, crl=crl, signer=signer).pdf
    v = verify_pdf(pdf, pdf_pki.trust(), now=NOW)
    assert not v.valid
    assert v.checks["pdf_timestamp"] is False and "tsa_revoked" in v.reasons


def test_tsa_without_timestamping_eku_rejected(pdf_pki: PdfPki) -> None:
    for bad in _serve(_authority(pdf_pki.csca, pdf_pki.csca_key, eku=False)):
        with pytest.raises(KeyBackendError, match="id-kp-timeStamping"):
            _signer_with(pdf_pki, HttpTimestamper(bad.url))
        signer = _signer_with(pdf_pki, HttpTimestamper(bad.url), check_certificate_status=False)
        pdf = make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=signer).pdf
    v = verify_pdf(pdf, pdf_pki.trust(), now=NOW)
    assert not v.valid
    assert v.checks["pdf_timestamp"] is False and "tsa_not_timestamping" in v.reasons


def test_rsa_tsa_and_unreachable_tsa(pdf_pki: PdfPki) -> None:
    for rsa_tsa in _serve(_authority(pdf_pki.csca, pdf_pki.csca_key, key_type="rsa-2048")):
        signer = _signer_with(pdf_pki, HttpTimestamper(rsa_tsa.url))
        pdf = make_passport(pdf_pki.good, PERSON_B, crl=pdf_pki.crl, signer=signer).pdf
    v = verify_pdf(pdf, pdf_pki.trust(), now=NOW)
    assert v.valid, v.errors
    assert v.signer is not None and v.signer["pades_level"] == "B-LT"
    # the server is gone now (its kept-alive connection too, once the client drops it):
    # a clear error, never a passport without its timestamp
    assert isinstance(signer.timestamper, HttpTimestamper)
    signer.timestamper.close()
    with pytest.raises(KeyBackendError, match="unreachable"):
        signer.sign(_data(pdf_pki), now=SIGN_TIME)


def _data(pdf_pki: PdfPki) -> PassportData:
    from signer.issue import Hc1Issuer
    from signer.pdf import passport_data

    issued = Hc1Issuer(pdf_pki.good, issuer_name="MoH").issue(PERSON_A, now=SIGN_TIME,
                                                             allow_unverified=True)
    data: PassportData = passport_data(
        dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=PERSON_A,
        issued_at=SIGN_TIME, expires_at=SIGN_TIME + dt.timedelta(days=365),
    )
    return data


# -- the two CLIs ------------------------------------------------------------------


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300,
        env={**os.environ, **(env or {})}, check=False,
    )


def test_keys_init_tsa_and_tsa_serve_cli(tmp_path: Path) -> None:
    secret = "test-" + os.urandom(6).hex()
    env = {"VNDCC_CSCA_PASSPHRASE": secret}
    pki_dir = tmp_path / "pki"
    at = ["--now", NOW.isoformat()]
    assert _run("keys", "init-csca", "--pki", str(pki_dir), *at, env=env).returncode == 0
    done = _run("keys", "init-tsa", "--pki", str(pki_dir), *at, env=env)
    assert done.returncode == 0, done.stderr
    assert secret not in done.stdout + done.stderr
    index = json.loads((pki_dir / "index.json").read_text())
    cert = x509.load_pem_x509_certificate((pki_dir / index["tsa_cert"]).read_bytes())
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature
    key_pem = (pki_dir / index["tsa_key"]).read_bytes()
    assert b"ENCRYPTED" in key_pem
    serialization.load_pem_private_key(key_pem, password=secret.encode())
    # wrong passphrase: one line, exit 2
    bad = _run("keys", "tsa-serve", "--pki", str(pki_dir), "--port", "0",
               env={"VNDCC_CSCA_PASSPHRASE": "wrong"})
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.splitlines()) == 1
    proc = subprocess.Popen(
        [sys.executable, "-m", "keys", "tsa-serve", "--pki", str(pki_dir), "--port", "0", *at],
        cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + (proc.stderr.read() if proc.stderr else "")
        token = HttpTimestamper(f"http://127.0.0.1:{match.group(1)}/").timestamp(b"signature")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == NOW
    # revoke-tsa: the next CRL lists it, and tsa-serve refuses to run it
    later = ["--now", (NOW + dt.timedelta(days=1)).isoformat()]
    done = _run("keys", "revoke-tsa", "--pki", str(pki_dir), "--reason", "key-compromise", *later)
    assert done.returncode == 0, done.stderr
    assert _run("keys", "issue-crl", "--pki", str(pki_dir), *later, env=env).returncode == 0
    crl = x509.load_der_x509_crl(sorted((pki_dir / "crl").glob("*.der"))[-1].read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    refused = _run("keys", "tsa-serve", "--pki", str(pki_dir), "--port", "0", env=env)
    assert refused.returncode == 2 and "revoked" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_signer_pdf_cli_with_tsa_url(pdf_pki: PdfPki, tsa: Tsa, tmp_path: Path) -> None:
    secret = "test-" + os.urandom(6).hex()
    key_pem = tmp_path / "dsc.key.pem"
    key_pem.write_bytes(pdf_pki.good.private_key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret.encode()),
    ))
    (tmp_path / "dsc.pem").write_bytes(pdf_pki.good.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "csca.crl").write_bytes(pdf_pki.crl.public_bytes(Encoding.DER))
    records = tmp_path / "records.jsonl"
    records.write_text((ROOT / "examples" / "records.jsonl").read_text().splitlines()[0] + "\n")
    out = tmp_path / "out"
    done = _run(
        "signer", "sign", "--pdf", str(records), "--out", str(out), "--key", str(key_pem),
        "--cert", str(tmp_path / "dsc.pem"), "--chain", str(pdf_pki.csca_pem),
        "--crl", str(tmp_path / "csca.crl"), "--centre", CENTRE, "--tsa-url", tsa.url,
        "--at", SIGN_TIME.isoformat(), "--allow-unverified",
        "--override-reason", "test fixture", "--operator", "pytest",
        env={"VNDCC_KEY_PASSPHRASE": secret},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    pdf = sorted(out.glob("*.pdf"))[0]
    trust = [a for f in pdf_pki.trust_files for a in ("--trust", str(f))]
    done = _run("verifier", "pdf", *trust, "--at", NOW.isoformat(), "--json", str(pdf),
                env={"VNDCC_VERIFIER_STATE": str(tmp_path / "state")})
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["valid"] and result["checks"]["pdf_timestamp"] is True
    assert result["signer"]["pades_level"] == "B-LT"
    # an unreachable TSA stops the run with one line, no passport without timestamp
    done = _run(
        "signer", "pdf", str(records), "--out", str(tmp_path / "out2"), "--key", str(key_pem),
        "--cert", str(tmp_path / "dsc.pem"), "--chain", str(pdf_pki.csca_pem),
        "--crl", str(tmp_path / "csca.crl"), "--centre", CENTRE,
        "--tsa-url", "http://127.0.0.1:9/", "--at", SIGN_TIME.isoformat(), "--allow-unverified",
        "--override-reason", "test fixture", "--operator", "pytest",
        env={"VNDCC_KEY_PASSPHRASE": secret},
    )
    assert done.returncode == 2 and "unreachable" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not list((tmp_path / "out2").glob("*.pdf"))


def test_softhsm_token_key_with_tsa(
    softhsm_es256_key: Pkcs11Key, test_pki: pki_fixtures.TestPki, tmp_path: Path
) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(test_pki.csca.subject)
        .last_update(NOW - dt.timedelta(days=5))
        .next_update(NOW + dt.timedelta(days=25))
        .sign(test_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    for own in _serve(_authority(test_pki.csca, test_pki.csca_key)):
        signer = PassportPdfSigner(softhsm_es256_key, centre="Trạm Y tế Xã Tân Phú", crls=[crl],
                                   now=SIGN_TIME, timestamper=HttpTimestamper(own.url))
        issued = make_passport(softhsm_es256_key, PERSON_A, crl=crl, signer=signer,
                               centre="Trạm Y tế Xã Tân Phú")
    csca = tmp_path / "csca.pem"
    csca.write_bytes(test_pki.csca.public_bytes(Encoding.PEM))
    dsc = tmp_path / "dsc.pem"
    dsc.write_bytes(softhsm_es256_key.certificate.public_bytes(Encoding.PEM))
    trust = load_trust([csca, dsc], now=NOW, state_dir=tmp_path / "state")
    v = verify_pdf(issued.pdf, trust, now=NOW)
    assert v.valid, v.errors
    assert v.signer is not None and v.signer["pades_level"] == "B-LT"
