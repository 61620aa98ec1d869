"""Offline verifier for EU DCC "HC1:" QR codes and signed PDF vaccine passports.

    >>> import datetime as dt
    >>> import verifier
    >>> now = dt.datetime.now(dt.UTC)
    >>> # trust = verifier.load_trust(["csca.pem", "trustlist.cbor"], now=now)
    >>> # verdict = verifier.verify_qr_text("HC1:...", trust, now=now)
    >>> # verdict.valid, verdict.stage_failed, verdict.reasons

Standalone: imports nothing from ``signer`` or ``keys`` so it can be
installed alone at a checkpoint.
"""

from verifier.hc1 import verify_cose, verify_qr_image, verify_qr_text
from verifier.result import Verdict
from verifier.trust import TrustStore, load_trust

__all__ = ["TrustStore", "Verdict", "load_trust", "verify_cose", "verify_qr_image", "verify_qr_text"]
