"""One exception root for the whole project.

Exceptions are for programmer and configuration errors (missing file, wrong
PIN, bad trust list). Untrusted input handed to the verifier never raises: it
gets a :class:`verifier.result.Verdict` with machine-readable reasons.

``signer`` and ``keys`` import these classes; ``verifier`` imports nothing
from them.
"""

from __future__ import annotations


class PassportError(Exception):
    """Root of every exception this project raises on purpose."""


class ConfigError(PassportError):
    """Bad configuration, missing or unreadable file, bad command-line use."""


class CodecError(PassportError):
    """Malformed encoded data (base45, zlib, CBOR, COSE).

    Carries a machine-readable ``reason`` so the verifier can report it.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class TrustError(PassportError):
    """The trust material (trust list, pinned CSCA, DSC files) is unusable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class KeyBackendError(PassportError):
    """A signing key could not be loaded or used (wrong PIN, missing token, ...)."""


class InputError(PassportError):
    """Bad input records (broken CSV, invalid record)."""
