"""Secrets (PINs, passphrases): from an environment variable, else a prompt on a TTY.

    >>> import os
    >>> from keys.secrets import get_secret, PKCS11_PIN_ENV
    >>> os.environ[PKCS11_PIN_ENV] = "1234"
    >>> get_secret(PKCS11_PIN_ENV, what="token PIN")
    '1234'

Secrets never come from argv (visible in ``ps`` and shell history) and are
never logged: error messages name the environment variable, not the value.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping

from verifier.errors import KeyBackendError

KEY_PASSPHRASE_ENV = "VNDCC_KEY_PASSPHRASE"
CSCA_PASSPHRASE_ENV = "VNDCC_CSCA_PASSPHRASE"
PKCS11_PIN_ENV = "VNDCC_PKCS11_PIN"


def get_secret(
    env_var: str,
    *,
    what: str,
    environ: Mapping[str, str] | None = None,
    is_tty: Callable[[], bool] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """Return the secret named by ``env_var``, or ask for it on the terminal.

    Order: the environment variable (if set and not empty); else, when stdin
    is a TTY, a ``getpass`` prompt (no echo); else :class:`KeyBackendError`
    telling the operator which variable to set.
    """
    env = os.environ if environ is None else environ
    value = env.get(env_var)
    if value:
        return value
    tty = sys.stdin is not None and sys.stdin.isatty() if is_tty is None else is_tty()
    if tty:
        try:
            value = prompt(f"{what} ({env_var} not set): ")
        except (EOFError, KeyboardInterrupt):
            raise KeyBackendError(f"no {what} given") from None
        if value:
            return value
        raise KeyBackendError(f"no {what} given")
    raise KeyBackendError(f"{what} needed: set {env_var} (or run on a terminal to be prompted)")


def new_secret_twice(
    env_var: str,
    *,
    what: str,
    environ: Mapping[str, str] | None = None,
    is_tty: Callable[[], bool] | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """Like :func:`get_secret`, but a prompted new secret must be typed twice."""
    env = os.environ if environ is None else environ
    if env.get(env_var):
        return env[env_var]
    first = get_secret(env_var, what=what, environ=env, is_tty=is_tty, prompt=prompt)
    try:
        second = prompt(f"{what} again: ")
    except (EOFError, KeyboardInterrupt):
        raise KeyBackendError(f"no {what} given") from None
    if first != second:
        raise KeyBackendError(f"the two {what} entries differ")
    return first
