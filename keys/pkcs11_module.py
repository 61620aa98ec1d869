"""Where the PKCS#11 module (SoftHSM2's by default) is, without importing python-pkcs11.

The command lines show the default in their help and build key specs from it;
only opening a token (:mod:`keys.pkcs11_key`) needs the PKCS#11 binding.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def default_module() -> str | None:
    """SoftHSM2's module path when it is installed, else None."""
    return DEFAULT_MODULE if Path(DEFAULT_MODULE).exists() else None
