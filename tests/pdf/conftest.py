"""PDF passport fixtures: a PKI with good, revoked, expired and outsider signers, a
signed trust list, and a handful of signed passports (module/session scoped: signing
setup costs a few hundred ms, each passport a few ms).

How the material is made (nothing committed; keys generated per test session):
- CSCA "PDF Test CSCA VN" (ECDSA P-256), DSCs issued by it for: a good EC signer,
  an RSA-2048 (PS256) signer, a signer revoked in the CSCA's CRL and in the trust
  list, and a signer whose certificate expired before ``NOW``;
- an outsider CSCA + DSC that no trust material mentions;
- the trust list (keys.trustlist.build_trust_list) holding the CSCA, the DSCs,
  the revoked DSC and the CRL; verifiers load it with the CSCA pinned by file.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list
from signer.issue import Hc1Issuer
from signer.pdf import PassportPdfSigner, passport_data
from signer.records import Dose, Record
from tests.fixtures.pki import NOW
from verifier.trust import TrustStore, load_trust

CENTRE = "Trạm Y tế Phường Bến Nghé"
SIGN_TIME = NOW - dt.timedelta(days=2)

PERSON_A = Record(
    record_id="T-1",
    full_name="Nguyễn Thị Thanh Hương",
    date_of_birth="1985-03-14",
    sex="F",
    nationality="VN",
    id_number="079185001234",
    doses=(
        Dose("2021-08-02", "AstraZeneca", "ABV5811", 1, 2, "Trạm Y tế Phường Bến Nghé"),
        Dose("2021-10-25", "AstraZeneca", "ABX1504", 2, 2, "Trạm Y tế Phường Bến Nghé"),
    ),
)
PERSON_B = Record(
    record_id="T-2",
    full_name="Trần Văn Đức",
    date_of_birth="1962",
    sex="M",
    nationality="VN",
    id_number="001062004567",
    doses=(
        Dose("2021-09-10", "Sinopharm", "202107B2139", 1, 2, "Trung tâm Y tế Quận Hoàn Kiếm"),
        Dose("2021-10-08", "Sinopharm", "202108B2236", 2, 2, "Trung tâm Y tế Quận Hoàn Kiếm"),
        Dose("2022-01-15", "Pfizer", "FK5618", 3, 3, "Trung tâm Y tế Quận Hoàn Kiếm"),
    ),
)


@dataclass(frozen=True)
class PdfPki:
    csca: x509.Certificate
    csca_key: object
    crl: x509.CertificateRevocationList
    good: SoftwareKey
    rsa: SoftwareKey
    revoked: SoftwareKey
    expired: SoftwareKey
    outsider: SoftwareKey
    trust_files: tuple[Path, ...]
    csca_pem: Path
    state_dir: Path

    def trust(self, now: dt.datetime = NOW) -> TrustStore:
        return load_trust(list(self.trust_files), now=now, state_dir=self.state_dir)


def _key(
    csca: x509.Certificate, ca_key: object, name: str, *, key_type: str = "ec-p256",
    issued: dt.datetime = NOW - dt.timedelta(days=60), days: int = 730,
) -> SoftwareKey:
    k = new_private_key(key_type)
    cert = make_dsc(csca, ca_key, k.public_key(), name=name, now=issued, days=days)  # type: ignore[arg-type]
    return SoftwareKey(private_key=k, certificate=cert, chain=(csca,))


@pytest.fixture(scope="session")
def pdf_pki(tmp_path_factory: pytest.TempPathFactory) -> PdfPki:
    base = tmp_path_factory.mktemp("pdfpki")
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="PDF Test CSCA VN", now=NOW - dt.timedelta(days=400))
    good = _key(csca, ca_key, CENTRE)
    rsa = _key(csca, ca_key, "Trung tâm Y tế Quận Hoàn Kiếm", key_type="rsa-2048")
    revoked = _key(csca, ca_key, "Revoked centre")
    expired = _key(csca, ca_key, "Expired centre", issued=NOW - dt.timedelta(days=200), days=30)
    other_ca_key = new_private_key("ec-p256")
    other_ca = make_csca(other_ca_key, country="VN", name="Outsider CA", now=NOW - dt.timedelta(days=400))
    outsider = _key(other_ca, other_ca_key, "Outsider centre")
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(NOW - dt.timedelta(days=10))
        .next_update(NOW + dt.timedelta(days=20))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(revoked.certificate.serial_number)
            .revocation_date(NOW - dt.timedelta(days=30))
            .build()
        )
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(csca, ca_key, tl_key.public_key(), now=NOW - dt.timedelta(days=300))  # type: ignore[arg-type]
    tl = build_trust_list(
        signer=SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(csca,)),
        cscas=[csca],
        dscs=[good.certificate, rsa.certificate, revoked.certificate, expired.certificate],
        revoked_dscs=[(revoked.certificate, NOW - dt.timedelta(days=30))],
        revoked_uvcis=[],
        crls=[crl],
        seq=1,
        now=NOW - dt.timedelta(days=3),
        country="VN",
    )
    tl_path = base / "trustlist.cbor"
    tl_path.write_bytes(tl)
    csca_pem = base / "csca.pem"
    csca_pem.write_bytes(csca.public_bytes(Encoding.PEM))
    state = base / "state"
    state.mkdir()
    return PdfPki(
        csca=csca, csca_key=ca_key, crl=crl, good=good, rsa=rsa, revoked=revoked,
        expired=expired, outsider=outsider, trust_files=(csca_pem, tl_path),
        csca_pem=csca_pem, state_dir=state,
    )


@dataclass(frozen=True)
class Issued:
    pdf: bytes
    hc1: str
    record: Record


def make_passport(
    key: SoftwareKey | object, record: Record, *, crl: x509.CertificateRevocationList,
    when: dt.datetime = SIGN_TIME, check: bool = True, signer: PassportPdfSigner | None = None,
    centre: str = CENTRE, check_pdf: bool | None = None,
) -> Issued:
    issuer = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam")  # type: ignore[arg-type]
    if check:
        issued = issuer.issue(record, now=when, allow_unverified=True)
    else:  # an HC1 from a DSC that is not usable at `when` (expired): sign it inside its validity
        nb = key.certificate.not_valid_before_utc  # type: ignore[attr-defined]
        issued = issuer.issue(record, now=nb + dt.timedelta(days=1), allow_unverified=True)
    pdf_signer = signer or PassportPdfSigner(
        key, centre=centre, crls=[crl], now=when,  # type: ignore[arg-type]
        check_certificate_status=check if check_pdf is None else check_pdf,
    )
    data = passport_data(
        dcc=issued.dcc, hc1=issued.hc1, centre=centre, record=record,
        issued_at=dt.datetime.fromtimestamp(issued.iat, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC),
    )
    return Issued(pdf=pdf_signer.sign(data, now=when), hc1=issued.hc1, record=record)


@pytest.fixture(scope="session")
def good_signer(pdf_pki: PdfPki) -> PassportPdfSigner:
    return PassportPdfSigner(pdf_pki.good, centre=CENTRE, crls=[pdf_pki.crl], now=SIGN_TIME)


@pytest.fixture(scope="session")
def passport_a(pdf_pki: PdfPki, good_signer: PassportPdfSigner) -> Issued:
    return make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=good_signer)


@pytest.fixture(scope="session")
def passport_b(pdf_pki: PdfPki, good_signer: PassportPdfSigner) -> Issued:
    return make_passport(pdf_pki.good, PERSON_B, crl=pdf_pki.crl, signer=good_signer)


# -- pdfsig (poppler) with an NSS database trusting the test CSCA ---------------


@dataclass(frozen=True)
class PdfSig:
    nssdir: Path

    def run(self, pdf: bytes, tmp: Path, name: str = "doc.pdf") -> str:
        path = tmp / name
        path.write_bytes(pdf)
        done = subprocess.run(
            ["pdfsig", "-nssdir", f"sql:{self.nssdir}", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        return done.stdout + done.stderr


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed (Debian: poppler-utils, libnss3-tools)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def pdfsig(pdf_pki: PdfPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PdfSig]:
    _need("pdfsig")
    certutil = _need("certutil")
    crlutil = _need("crlutil")
    nss = tmp_path_factory.mktemp("nssdb")
    subprocess.run([certutil, "-N", "-d", f"sql:{nss}", "--empty-password"], check=True,
                   capture_output=True)
    subprocess.run(
        [certutil, "-A", "-d", f"sql:{nss}", "-n", "PDF Test CSCA", "-t", "C,C,C", "-a", "-i",
         str(pdf_pki.csca_pem)],
        check=True, capture_output=True,
    )
    crl_file = nss / "csca.crl"
    crl_file.write_bytes(pdf_pki.crl.public_bytes(Encoding.DER))
    subprocess.run([crlutil, "-I", "-d", f"sql:{nss}", "-i", str(crl_file), "-B"], check=True,
                   capture_output=True)
    yield PdfSig(nssdir=nss)
