"""Offline verifier for EU DCC "HC1:" QR codes and signed PDF vaccine passports.

    >>> import datetime as dt
    >>> import verifier
    >>> now = dt.datetime.now(dt.UTC)
    >>> # trust = verifier.load_trust(["csca.pem", "trustlist.cbor"], now=now)
    >>> # verdict = verifier.verify_qr_text("HC1:...", trust, now=now)
    >>> # verdict.valid, verdict.stage_failed, verdict.reasons

Standalone: imports nothing from ``signer`` or ``keys`` so it can be
installed alone at a checkpoint.

The names below are imported on first use (PEP 562): ``import verifier``
itself stays cheap, so that the daemon client in :mod:`verifier.__main__`
starts without the cryptography stack (docs/verifier-daemon.md).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing is 2 ms of the client's start
if TYPE_CHECKING:
    from typing import Any

    from verifier.hc1 import verify_cose, verify_qr_image, verify_qr_text
    from verifier.result import Verdict
    from verifier.trust import TrustStore, load_trust

__all__ = ["TrustStore", "Verdict", "load_trust", "verify_cose", "verify_qr_image", "verify_qr_text"]

_HOME = {
    "TrustStore": "verifier.trust",
    "Verdict": "verifier.result",
    "load_trust": "verifier.trust",
    "verify_cose": "verifier.hc1",
    "verify_qr_image": "verifier.hc1",
    "verify_qr_text": "verifier.hc1",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'verifier' has no attribute {name!r}")
    value = getattr(__import__(home, fromlist=[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
