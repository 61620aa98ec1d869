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
import threading
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
from keys.tsa import TimeStampAuthority, make_server, make_tsa_certificate  # noqa: E402
from signer.issue import Hc1Issuer  # noqa: E402
from signer.pdf import PassportPdfSigner, passport_data  # noqa: E402
from signer.pdf.tsa import HttpTimestamper  # noqa: E402
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


def _passport(key: SoftwareKey, *, crl: Any, when: dt.datetime, check: bool = True,
              timestamper: Any = None, archive: bool = False,
              qr_when: dt.datetime | None = None) -> bytes:
    """A passport signed at ``when`` (the QR's iat too), its QR valid for a year.

    The QR's exp is not clamped to the DSC's expiry (the issuer would): an
    attacker's tool holding an expired DSC's key would not clamp it either.
    """
    issuer = Hc1Issuer(key, issuer_name="Ministry of Health of Viet Nam", validity_days=365)
    issuer.not_after = int((when + dt.timedelta(days=366)).timestamp())
    issued = issuer.issue(PERSON, now=qr_when or when, uvci=_uvci(), allow_unverified=True)
    signer = PassportPdfSigner(key, centre=CENTRE, crls=[crl], now=when,
                               check_certificate_status=check, timestamper=timestamper,
                               archive_timestamp=archive)  # fmt: skip
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
    before_dsc = _passport(good, crl=current_crl, check=False, qr_when=AT - dt.timedelta(days=2),
                           when=good.certificate.not_valid_before_utc - dt.timedelta(days=3))
    vectors: dict[str, bytes] = {
        "clean": clean,
        "expired-dsc-backdated": backdated,
        "metadata-update": tamper.change_metadata(clean),
        "title-update": tamper.change_title_only(clean),
        "digest-mismatch": tamper.flip_signed_byte(clean),
        "revoked-dsc": _passport(revoked, crl=current_crl, when=AT - dt.timedelta(days=2),
                                 check=False),
        "name-painted-over": tamper.overwrite_name(clean, x=212, y=600),
        "page-added": tamper.add_page(clean),
        "signature-removed": tamper.remove_signature(clean),
        "signing-time-before-dsc": before_dsc,
    }
    # B-LTA: the national TSA (keys.tsa over loopback HTTP, its clock pinned)
    tsa_key = new_private_key("ec-p256")
    tsa_cert = make_tsa_certificate(csca, ca_key, tsa_key.public_key(),  # type: ignore[arg-type]
                                    now=AT - dt.timedelta(days=100))
    (trust / "tsa.pem").write_bytes(tsa_cert.public_bytes(Encoding.PEM))
    when = AT - dt.timedelta(days=2)
    server = make_server(TimeStampAuthority(key=tsa_key, certificate=tsa_cert, chain=(csca,)),
                         clock=lambda: when + dt.timedelta(seconds=2))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # fmt: skip
    thread.start()
    try:
        stamper = HttpTimestamper(f"http://127.0.0.1:{server.server_address[1]}/")
        lta = _passport(good, crl=current_crl, when=when, timestamper=stamper, archive=True)
        blt = _passport(good, crl=current_crl, when=when, timestamper=stamper)
        stamper.close()
    finally:
        server.shutdown()
        server.server_close()
    token_at = lta.index(b"/Contents <", lta.rindex(b"/ETSI.RFC3161")) + 200
    rect_at = lta.rindex(b"/Rect [0 0 0 0]")
    vectors.update({
        "b-lt-clean": blt,
        "b-lta-clean": lta,
        "b-lta-archive-token-altered": (
            lta[:token_at] + (b"1" if lta[token_at : token_at + 1] == b"0" else b"0")
            + lta[token_at + 1 :]
        ),
        "b-lta-visible-timestamp-widget": lta[:rect_at] + b"/Rect [1 1 9 9]" + lta[rect_at + 15 :],
        "b-lta-then-title-update": tamper.change_title_only(lta),
    })  # fmt: skip
    for name, pdf in vectors.items():
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "passport.pdf").write_bytes(pdf)
    print(f"wrote {len(vectors)} vectors to {out}")


def write_expected(out: Path) -> None:
    """``--expected``: (re)write each expected.json from what the verifier says now.

    Only for a new vector or a deliberate change of verdict: review the diff,
    the test compares against these files.
    """
    import tempfile

    from verifier.pdf import verify_pdf
    from verifier.trust import load_trust_material

    trusts = [["trust/csca.pem", "trust/trustlist.cbor"], ["trust/csca.pem", "trust/dsc-expired.pem"]]
    for folder in sorted(p for p in out.iterdir() if (p / "passport.pdf").is_file()):
        cases = []
        for names in trusts:
            with tempfile.TemporaryDirectory() as state:
                trust = load_trust_material([out / n for n in names], now=AT, state_dir=state)
                v = verify_pdf((folder / "passport.pdf").read_bytes(), trust, now=AT)
            cases.append({
                "trust": names, "valid": v.valid,
                "errors": sorted([e.check, e.reason] for e in v.errors),
                "pades_level": v.signer and v.signer["pades_level"],
                "signing_time_proven": v.signer and v.signer["signing_time_proven"],
            })  # fmt: skip
        (folder / "expected.json").write_text(
            json.dumps({"at": AT.isoformat(), "cases": cases}, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )


def main() -> int:
    import logging

    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)  # its warnings on the tampered files
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--expected", action="store_true",
                        help="also rewrite expected.json from the current verifier (review the diff)")
    args = parser.parse_args()
    generate(args.out)
    if args.expected:
        write_expected(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
