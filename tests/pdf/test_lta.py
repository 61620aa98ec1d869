"""PAdES B-LTA (issue 13): a document timestamp after the signature and its validation data.

The national TSA (keys.tsa over HTTP on 127.0.0.1, as in test_tsa.py) stamps the
signature (B-LT) and then the whole document (signer/pdf/lta.py). Checked: our
verifier (pdf_archive_timestamp, pades_level B-LTA), pyHanko's own validator (the
document timestamp intact, valid and trusted; the signature under its default policy,
the update classified as LTA_UPDATES), pdfsig, a tampered token, a change appended
after the timestamp, `signer sign --pdf --pades-level B-LTA` end to end.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko_certvalidator import ValidationContext

from signer.pdf import PassportPdfSigner
from signer.pdf.cms import to_asn1
from signer.pdf.tsa import HttpTimestamper
from tests.fixtures.pki import NOW
from tests.pdf import tamper
from tests.pdf.conftest import CENTRE, PERSON_A, SIGN_TIME, PdfPki, PdfSig, make_passport
from tests.pdf.test_tsa import ROOT, TSA_TIME, Tsa, _authority, _run, _serve
from verifier.errors import ConfigError
from verifier.pdf import verify_pdf


@pytest.fixture(scope="module")
def lta_tsa(pdf_pki: PdfPki) -> Iterator[Tsa]:
    yield from _serve(_authority(pdf_pki.csca, pdf_pki.csca_key))


@pytest.fixture(scope="module")
def lta_pdf(pdf_pki: PdfPki, lta_tsa: Tsa) -> bytes:
    signer = PassportPdfSigner(pdf_pki.good, centre=CENTRE, crls=[pdf_pki.crl], now=SIGN_TIME,
                               timestamper=HttpTimestamper(lta_tsa.url), archive_timestamp=True)
    return make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, signer=signer).pdf


def test_b_lta_verifies(lta_pdf: bytes, pdf_pki: PdfPki) -> None:
    v = verify_pdf(lta_pdf, pdf_pki.trust(), now=NOW)
    assert v.valid, v.errors
    assert v.checks["pdf_timestamp"] is True and v.checks["pdf_archive_timestamp"] is True
    assert v.signer is not None and v.signer["pades_level"] == "B-LTA"
    assert v.signer["archive_timestamp"] == TSA_TIME.isoformat()
    assert v.signer["signing_time_proven"] is True
    assert v.to_dict()["checks"]["pdf_archive_timestamp"] is True


def test_pyhanko_validates_b_lta(lta_pdf: bytes, pdf_pki: PdfPki) -> None:
    vc = ValidationContext(trust_roots=[to_asn1(pdf_pki.csca)],
                           crls=[pdf_pki.crl.public_bytes(Encoding.DER)], allow_fetching=False,
                           moment=NOW)  # fmt: skip
    reader = PdfFileReader(io.BytesIO(lta_pdf))
    (doc_ts,) = reader.embedded_timestamp_signatures
    status = validate_pdf_timestamp(doc_ts, vc)
    assert status.intact and status.valid and status.trusted
    assert status.timestamp == TSA_TIME
    (sig,) = reader.embedded_regular_signatures
    sig_status = validate_pdf_signature(sig, vc)  # pyHanko's default policy
    assert sig_status.bottom_line, sig_status.pretty_print_details()
    assert sig_status.modification_level == ModificationLevel.LTA_UPDATES and sig_status.docmdp_ok


def test_pdfsig_b_lta(lta_pdf: bytes, pdfsig: PdfSig, tmp_path: Path) -> None:
    out = pdfsig.run(lta_pdf, tmp_path)
    first = out.split("Signature #2")[0]
    assert "Signature is Valid" in first and "Certificate is Trusted" in first, out


def test_altered_document_timestamp(lta_pdf: bytes, pdf_pki: PdfPki) -> None:
    at = lta_pdf.rindex(b"/ETSI.RFC3161")
    start = lta_pdf.index(b"/Contents <", at) + 200  # inside the token's hex
    flipped = b"0" if lta_pdf[start : start + 1] != b"0" else b"1"
    bad = lta_pdf[:start] + flipped + lta_pdf[start + 1 :]
    v = verify_pdf(bad, pdf_pki.trust(), now=NOW)
    assert not v.valid and v.checks["pdf_archive_timestamp"] is False
    assert v.checks["pdf_signature"] is True and v.signer is not None
    assert v.signer["pades_level"] is None


def test_change_after_the_document_timestamp(lta_pdf: bytes, pdf_pki: PdfPki) -> None:
    v = verify_pdf(tamper.change_title_only(lta_pdf), pdf_pki.trust(), now=NOW)
    assert not v.valid and v.checks["pdf_modifications"] is False


def test_b_lta_needs_a_tsa(pdf_pki: PdfPki) -> None:
    with pytest.raises(ConfigError):
        PassportPdfSigner(pdf_pki.good, centre=CENTRE, crls=[pdf_pki.crl], now=SIGN_TIME,
                          archive_timestamp=True)  # fmt: skip


def test_signer_sign_pades_level_b_lta(pdf_pki: PdfPki, lta_tsa: Tsa, tmp_path: Path) -> None:
    secret = "test-" + os.urandom(6).hex()
    key_pem = tmp_path / "dsc.key.pem"
    key_pem.write_bytes(pdf_pki.good.private_key.private_bytes(
        Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret.encode()),
    ))  # fmt: skip
    (tmp_path / "dsc.pem").write_bytes(pdf_pki.good.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "csca.crl").write_bytes(pdf_pki.crl.public_bytes(Encoding.DER))
    records = tmp_path / "records.jsonl"
    records.write_text((ROOT / "examples" / "records.jsonl").read_text().splitlines()[0] + "\n")
    common = ["--key", str(key_pem), "--cert", str(tmp_path / "dsc.pem"), "--chain",
              str(pdf_pki.csca_pem), "--crl", str(tmp_path / "csca.crl"), "--centre", CENTRE,
              "--at", SIGN_TIME.isoformat(), "--allow-unverified", "--override-reason",
              "test fixture", "--operator", "pytest"]  # fmt: skip
    env = {"VNDCC_KEY_PASSPHRASE": secret}
    # B-LTA without a TSA: one line, exit 2
    done = _run("signer", "sign", "--pdf", str(records), "--out", str(tmp_path / "o1"), *common,
                "--pades-level", "B-LTA", env=env)  # fmt: skip
    assert done.returncode == 2 and "--tsa-url" in done.stderr, done.stderr
    out = tmp_path / "out"
    done = _run("signer", "sign", "--pdf", str(records), "--out", str(out), *common,
                "--tsa-url", lta_tsa.url, "--pades-level", "B-LTA", env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    pdf = sorted(out.glob("*.pdf"))[0]
    trust = [a for f in pdf_pki.trust_files for a in ("--trust", str(f))]
    done = _run("verifier", "pdf", *trust, "--at", NOW.isoformat(), "--json", str(pdf),
                env={"VNDCC_VERIFIER_STATE": str(tmp_path / "state")})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["signer"]["pades_level"] == "B-LTA"
    assert result["checks"]["pdf_archive_timestamp"] is True


def test_visible_document_timestamp_widget_is_a_modification(lta_pdf: bytes, pdf_pki: PdfPki) -> None:
    # a document timestamp's widget with an area could paint over the page: not validation data
    at = lta_pdf.rindex(b"/Rect [0 0 0 0]")
    visible = lta_pdf[:at] + b"/Rect [1 1 9 9]" + lta_pdf[at + 15 :]
    v = verify_pdf(visible, pdf_pki.trust(), now=NOW)
    assert not v.valid and v.checks["pdf_modifications"] is False


def test_signing_time_before_the_dsc_is_refused(pdf_pki: PdfPki) -> None:
    before = pdf_pki.good.certificate.not_valid_before_utc - dt.timedelta(days=3)
    issued = make_passport(pdf_pki.good, PERSON_A, crl=pdf_pki.crl, when=before, check=False,
                           check_pdf=False)  # fmt: skip
    v = verify_pdf(issued.pdf, pdf_pki.trust(), now=NOW)
    assert not v.valid and "dsc_not_yet_valid" in v.reasons
