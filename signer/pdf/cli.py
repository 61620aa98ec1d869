"""``python -m signer pdf``: signed PDF passports (and their HC1) for a records file.

    $ export VNDCC_KEY_PASSPHRASE=...                 # or VNDCC_PKCS11_PIN for a token
    $ python -m signer pdf examples/records.jsonl --out out/ \\
          --key dsc.key.pem --cert dsc.pem --chain csca.pem \\
          --crl pki/crl/crl-1.der --centre "Trạm Y tế Phường Bến Nghé"

Per record: ``DIR/<record_id>.pdf`` (certified PAdES signature by the health
centre's key, QR inside) and ``DIR/<record_id>.hc1.txt``, plus a line in
``DIR/manifest.jsonl``. It is ``signer sign --pdf`` without the PNG: the same
loop, the same key object signs the HC1 and the PDF (one PKCS#11 session for
a token). With ``--tsa-url URL`` each signature gets an RFC 3161 signature
timestamp from the national TSA (PAdES B-LT); ``--pades-level B-LTA`` adds a
document timestamp after the validation data. Exit codes as ``signer sign``.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keys.base import SigningKey
from verifier.errors import ConfigError

if TYPE_CHECKING:
    from signer.issue import Issued
    from signer.pdf.sign import PassportPdfSigner
    from signer.records import Record

# signer.pdf.sign / signer.pdf.model (pyHanko, fontTools: ~1 s to import) are
# imported when a PDF is asked for, so `python -m signer sign` does not pay for them.


def _read_crl(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read CRL {path}: {err.strerror}") from None


@dataclass
class PdfOutput:
    """Renders and signs the passport of each issued HC1 in a signing run."""

    signer: PassportPdfSigner
    centre: str

    @classmethod
    def from_args(cls, ns: argparse.Namespace, key: SigningKey, *, now: dt.datetime) -> PdfOutput:
        from signer.pdf.sign import PassportPdfSigner

        crls = [_read_crl(p) for p in ns.crl]
        timestamper = None
        level = getattr(ns, "pades_level", None)
        tsa_url = getattr(ns, "tsa_url", None)
        if level in ("B-LT", "B-LTA") and not tsa_url:
            raise ConfigError(f"--pades-level {level} needs --tsa-url URL (a time-stamping authority)")
        if level == "B-B" and tsa_url:
            raise ConfigError("--pades-level B-B has no timestamp: leave out --tsa-url")
        if tsa_url:
            from signer.pdf.tsa import HttpTimestamper

            timestamper = HttpTimestamper(tsa_url)
        signer = PassportPdfSigner(
            key, centre=ns.centre, location=ns.location, crls=crls, now=now,
            timestamper=timestamper, archive_timestamp=level == "B-LTA",
        )  # fmt: skip
        return cls(signer=signer, centre=ns.centre)

    def render_and_sign(self, issued: Issued, record: Record, *, now: dt.datetime) -> bytes:
        from signer.pdf.model import passport_data

        data = passport_data(
            dcc=issued.dcc,
            hc1=issued.hc1,
            centre=self.centre,
            record=record,
            issued_at=dt.datetime.fromtimestamp(issued.iat, dt.UTC),
            expires_at=dt.datetime.fromtimestamp(issued.exp, dt.UTC),
        )
        return self.signer.sign(data, now=now)


def register(subparsers: Any) -> None:
    """``pdf RECORDS --out DIR --centre NAME --crl FILE <key options>`` = ``sign --pdf`` minus PNG."""
    from signer.cli import register_sign, run_sign

    register_sign(subparsers, name="pdf")

    def run_pdf(ns: argparse.Namespace) -> int:
        ns.pdf = True
        return run_sign(ns)

    subparsers.choices["pdf"].set_defaults(func=run_pdf, png=False)
