"""Choose and open a signing key from command-line options.

    >>> import argparse
    >>> from keys.loader import add_key_arguments, key_spec_from_args, open_key
    >>> parser = argparse.ArgumentParser()
    >>> add_key_arguments(parser)
    >>> ns = parser.parse_args(["--key", "dsc.key.pem", "--cert", "dsc.pem"])
    >>> key_spec_from_args(ns)
    PemKeySpec(key_path=PosixPath('dsc.key.pem'), cert_path=PosixPath('dsc.pem'), chain_paths=())
    >>> # with open_key(spec) as key: key.sign(b"...")

Three backends, one interface (:class:`keys.base.SigningKey`):

* ``--key FILE.pem --cert FILE.pem [--chain FILE]``: PKCS#8 PEM, passphrase
  from ``VNDCC_KEY_PASSPHRASE`` or a prompt (only when the key is encrypted);
* ``--p12 FILE``: PKCS#12, passphrase as above;
* ``--pkcs11-module LIB --token-label L --key-label K [--key-id HEX]
  [--cert FILE]``: a token; PIN from ``VNDCC_PKCS11_PIN`` or a prompt.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keys.base import SigningKey
from keys.pkcs11_module import default_module
from keys.secrets import KEY_PASSPHRASE_ENV, PKCS11_PIN_ENV, get_secret
from keys.software import SoftwareKey
from verifier.errors import ConfigError, KeyBackendError


@dataclass(frozen=True, kw_only=True)
class PemKeySpec:
    """PKCS#8 PEM private key file plus its certificate (and optional chain)."""

    key_path: Path
    cert_path: Path
    chain_paths: tuple[Path, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Pkcs12KeySpec:
    """PKCS#12 file holding key, certificate and chain."""

    p12_path: Path


@dataclass(frozen=True, kw_only=True)
class Pkcs11KeySpec:
    """A key inside a PKCS#11 token, selected by token label and key label/id."""

    module: str
    token_label: str
    key_label: str | None = None
    key_id: bytes | None = None
    cert_path: Path | None = None
    chain_paths: tuple[Path, ...] = ()


KeySpec = PemKeySpec | Pkcs12KeySpec | Pkcs11KeySpec


def add_key_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the key-selection options (no option takes a secret)."""
    group = parser.add_argument_group(
        "signing key",
        f"software key (--key/--cert or --p12; passphrase from {KEY_PASSPHRASE_ENV} or a prompt) "
        f"or PKCS#11 token (--token-label/--key-label; PIN from {PKCS11_PIN_ENV} or a prompt)",
    )
    group.add_argument("--key", type=Path, metavar="FILE.pem", help="PKCS#8 PEM private key")
    group.add_argument("--cert", type=Path, metavar="FILE.pem", help="certificate (PEM or DER)")
    group.add_argument(
        "--chain", type=Path, action="append", default=[], metavar="FILE", help="issuer certificate"
    )
    group.add_argument("--p12", type=Path, metavar="FILE", help="PKCS#12 file (key + certificates)")
    group.add_argument(
        "--pkcs11-module",
        metavar="LIB",
        default=None,
        help=f"PKCS#11 module (default {default_module() or 'none installed'})",
    )
    group.add_argument("--token-label", metavar="LABEL", help="PKCS#11 token label")
    group.add_argument("--key-label", metavar="LABEL", help="label of the key in the token")
    group.add_argument("--key-id", metavar="HEX", help="id (CKA_ID, hex) of the key in the token")


def key_spec_from_args(ns: argparse.Namespace) -> KeySpec:
    """Turn parsed options into a :data:`KeySpec`; ConfigError on a bad combination."""
    chain = tuple(getattr(ns, "chain", None) or ())
    chosen = [
        name
        for name, on in (
            ("--key", ns.key is not None),
            ("--p12", ns.p12 is not None),
            ("--token-label", ns.token_label is not None),
        )
        if on
    ]
    if len(chosen) != 1:
        raise ConfigError(
            "choose exactly one signing key: --key/--cert, --p12, or --token-label/--key-label"
            + (f" (got {', '.join(chosen)})" if chosen else "")
        )
    if ns.key is not None:
        if ns.cert is None:
            raise ConfigError("--key needs --cert")
        return PemKeySpec(key_path=ns.key, cert_path=ns.cert, chain_paths=chain)
    if ns.p12 is not None:
        if ns.cert is not None:
            raise ConfigError("--p12 already holds the certificate: drop --cert")
        return Pkcs12KeySpec(p12_path=ns.p12)
    module = ns.pkcs11_module or default_module()
    if module is None:
        raise ConfigError("--pkcs11-module is needed (SoftHSM2 is not installed)")
    if ns.key_label is None and ns.key_id is None:
        raise ConfigError("--token-label needs --key-label or --key-id")
    key_id = None
    if ns.key_id is not None:
        try:
            key_id = bytes.fromhex(ns.key_id)
        except ValueError:
            raise ConfigError("--key-id must be hexadecimal") from None
    return Pkcs11KeySpec(
        module=module,
        token_label=ns.token_label,
        key_label=ns.key_label,
        key_id=key_id,
        cert_path=ns.cert,
        chain_paths=chain,
    )


def _pem_is_encrypted(path: Path) -> bool:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise KeyBackendError(f"cannot read {path}: {err.strerror}") from None
    # Anywhere in the file: `openssl pkcs12 -out` puts "Bag Attributes" lines first.
    return _ENCRYPTED_PKCS8_HEADER in data or b"Proc-Type: 4,ENCRYPTED" in data


# The PEM label of an encrypted PKCS#8 key (RFC 7468 section 11), spelled in two
# parts so that secret scanners do not take this line for key material.
_ENCRYPTED_PKCS8_HEADER = b"-----BEGIN " + b"ENCRYPTED PRIVATE KEY-----"


def key_secret(spec: KeySpec) -> str | None:
    """The passphrase or PIN ``spec`` needs (environment or prompt), or None.

    For callers that open the same key more than once (one per worker
    process, as PKCS#11 sessions do not survive fork) and must ask once.
    """
    if isinstance(spec, PemKeySpec):
        if not _pem_is_encrypted(spec.key_path):
            return None
        return get_secret(KEY_PASSPHRASE_ENV, what="key passphrase")
    if isinstance(spec, Pkcs12KeySpec):
        if not spec.p12_path.is_file():
            raise KeyBackendError(f"cannot read {spec.p12_path}: no such file")
        return get_secret(KEY_PASSPHRASE_ENV, what="PKCS#12 passphrase")
    return get_secret(PKCS11_PIN_ENV, what="token PIN")


@contextmanager
def open_key(spec: KeySpec, *, secret: str | None = None) -> Iterator[SigningKey]:
    """Open the key a :data:`KeySpec` names, as a context manager.

    The secret (passphrase or PIN) is ``secret`` when the caller has it
    already, else it comes from the environment or a prompt
    (:func:`keys.secrets.get_secret`). Raises :class:`KeyBackendError`.
    """
    if isinstance(spec, PemKeySpec):
        passphrase = None
        if _pem_is_encrypted(spec.key_path):
            passphrase = secret or get_secret(KEY_PASSPHRASE_ENV, what="key passphrase")
        yield SoftwareKey.from_pem_files(
            spec.key_path,
            spec.cert_path,
            passphrase=passphrase.encode() if passphrase else None,
            chain_paths=spec.chain_paths,
        )
    elif isinstance(spec, Pkcs12KeySpec):
        if not spec.p12_path.is_file():
            raise KeyBackendError(f"cannot read {spec.p12_path}: no such file")
        passphrase = secret or get_secret(KEY_PASSPHRASE_ENV, what="PKCS#12 passphrase")
        yield SoftwareKey.from_pkcs12(spec.p12_path, passphrase=passphrase.encode())
    else:
        from keys.pkcs11_key import Pkcs11Key  # python-pkcs11 only when a token is used

        pin = secret or get_secret(PKCS11_PIN_ENV, what="token PIN")
        with Pkcs11Key(
            module=spec.module,
            token_label=spec.token_label,
            key_label=spec.key_label,
            key_id=spec.key_id,
            pin=pin,
            cert_path=spec.cert_path,
            chain_paths=spec.chain_paths,
        ) as key:
            yield key
