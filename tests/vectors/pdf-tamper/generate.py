"""Write the PDF tamper vectors of issue 13 (run from the repository root).

    .venv/bin/python tests/vectors/pdf-tamper/generate.py [--out tests/vectors/pdf-tamper]

Everything is fixed (validation time, validity periods, records, UVCIs,
signing times, tamper steps) except the keys: a fresh throw-away PKI is made
on every run and its private keys are never written, so no private key is
committed. Running it again gives other bytes (keys, serials, signature
values) and the same verdicts: ``expected.json`` does not change, and the
test (tests/pdf/test_tamper_vectors.py) checks the committed files against it.
See README.md for what each vector is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key  # noqa: E402
from keys.software import SoftwareKey  # noqa: E402
from keys.trustlist import build_trust_list  # noqa: E402
from signer.issue import Hc1Issuer  # noqa: E402
from signer.pdf import PassportPdfSigner, passport_data  # noqa: E402
from signer.records import Dose, Record  # noqa: E402
from tests.pdf import tamper  # noqa: E402

#: The validation time of every vector (``verifier pdf --at``).
AT = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
CENTRE = "Trạm Y tế Phường Bến Nghé"
PERSON = Record(
    record_id="V-1",
    full_name="Nguyễn Thị Thanh Hương",
    date_of_birth="1985-03-14",
    sex="F",
    nationality="VN",
    id_number="079185001234",
    doses=(
        Dose("2021-08-02", "AstraZeneca", "ABV5811", 1, 2, CENTRE),
        Dose("2021-10-25", "AstraZeneca", "ABX1504", 2, 2, CENTRE),
    ),
)
UVCI = "URN:UVCI:01:VN:PDFTAMPERVECTR2345"


def _crl(csca: x509.Certificate, ca_key: Any, *, this: dt.datetime, days: int,
         revoked: tuple[tuple[x509.Certificate, dt.datetime], ...] = (), number: int) -> Any:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(csca.subject)
        .last_update(this)
        .next_update(this + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for cert, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
            .revocation_date(when).build()
        )
    return builder.sign(ca_key, hashes.SHA256())


def _key(csca: x509.Certificate, ca_key: Any, name: str, *, issued: dt.datetime,
         days: int) -> SoftwareKey:
    k = new_private_key("ec-p256")
    cert = make_dsc(csca, ca_key, k.public_key(), name=name, now=issued, days=days)  # type: ignore[arg-type]
    return SoftwareKey(private_key=k, certificate=cert, chain=(csca,))


def _passport(key: SoftwareKey, *, crl: Any, when: dt.datetime, check: bool = True) -> bytes:
    """A passport signed at ``when`` (the QR's iat too), its QR valid for a year.

    The QR's exp is not clamped to the DSC's expiry (the issuer would): an
    attacker's tool holding an expired DSC's key would not clamp it either.
    """
    issuer = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam", validity_days=365)
    issuer.not_after = int((when + dt.timedelta(days=366)).timestamp())
    issued = issuer.issue(PERSON, now=when, uvci=_uvci(), allow_unverified=True)
    signer = PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=when,
                               check_certificate_status=check)
    data = passport_data(
        dcc=issued.dcc, hc1=issued.hc1, centre=CENTRE, record=PERSON,
        issued_at=dt.datetime.fromtimestamp(issued.iat, dt.UTC),
        expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC),
    )
    return signer.sign(data, now=when)


def _uvci() -> str:
    from signer.uvci import with_checksum

    return str(with_checksum(UVCI))


def generate(out: Path) -> None:
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="PDF Tamper Vectors CSCA",
                     now=AT - dt.timedelta(days=400))
    good = _key(csca, ca_key, CENTRE, issued=AT - dt.timedelta(days=60), days=730)
    # valid from AT-200d to AT-170d: expired for 170 days at AT
    expired = _key(csca, ca_key, CENTRE, issued=AT - dt.timedelta(days=200), days=30)
    revoked = _key(csca, ca_key, CENTRE, issued=AT - dt.timedelta(days=60), days=730)
    current_crl = _crl(csca, ca_key, this=AT - dt.timedelta(days=10), days=30,
                       revoked=((revoked.certificate, AT - dt.timedelta(days=5)),), number=7)
    # the CRL the attacker kept from the time the expired DSC was still valid
    old_crl = _crl(csca, ca_key, this=AT - dt.timedelta(days=185), days=30, number=2)
    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(csca, ca_key, tl_key.public_key(),  # type: ignore[arg-type]
                                     now=AT - dt.timedelta(days=300))
    # a current trust list: expired DSCs are left out (keys export-trust-list)
    trust_list = build_trust_list(
        signer=SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(csca,)),
        cscas=[csca], dscs=[good.certificate, revoked.certificate],
        revoked_dscs=[(revoked.certificate, AT - dt.timedelta(days=5))], revoked_uvcis=[],
        crls=[current_crl], seq=1, now=AT - dt.timedelta(days=1), country="VN",
    )
    trust = out / "trust"
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "csca.pem").write_bytes(csca.public_bytes(Encoding.PEM))
    (trust / "dsc-expired.pem").write_bytes(expired.certificate.public_bytes(Encoding.PEM))
    (trust / "trustlist.cbor").write_bytes(trust_list)
    (trust / "crl-current.der").write_bytes(current_crl.public_bytes(Encoding.DER))

    clean = _passport(good, crl=current_crl, when=AT - dt.timedelta(days=2))
    backdated = _passport(expired, crl=old_crl, when=AT - dt.timedelta(days=180))
    vectors: dict[str, bytes] = {
        "clean": clean,
        "expired-dsc-backdated": backdated,
        "metadata-update": tamper.change_metadata(clean),
        "digest-mismatch": tamper.flip_signed_byte(clean),
        "revoked-dsc": _passport(revoked, crl=current_crl, when=AT - dt.timedelta(days=2),
                                 check=False),
    }
    for name, pdf in vectors.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "passport.pdf").write_bytes(pdf)
        expected = folder / "expected.json"
        if not expected.exists():
            expected.write_text(json.dumps({"cases": []}, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(vectors)} vectors to {out}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    generate(parser.parse_args().out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
