"""Secrets from env or prompt (never argv), and key selection from command-line options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from keys.loader import (
    PemKeySpec,
    Pkcs11KeySpec,
    Pkcs12KeySpec,
    add_key_arguments,
    key_spec_from_args,
)
from keys.pkcs11_key import DEFAULT_MODULE
from keys.secrets import get_secret, new_secret_twice
from verifier.errors import ConfigError, KeyBackendError


def test_env_wins_over_prompt() -> None:
    def prompt(_: str) -> str:
        raise AssertionError("must not prompt")

    assert (
        get_secret("X", what="pin", environ={"X": "s3"}, is_tty=lambda: True, prompt=prompt) == "s3"
    )


def test_prompt_on_tty_when_env_missing_or_empty() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    assert (
        get_secret("X", what="token PIN", environ={"X": ""}, is_tty=lambda: True, prompt=prompt)
        == "typed"
    )
    assert asked == ["token PIN (X not set): "]


def test_no_tty_no_env_is_a_clear_error() -> None:
    with pytest.raises(KeyBackendError, match="set VNDCC_PKCS11_PIN"):
        get_secret("VNDCC_PKCS11_PIN", what="token PIN", environ={}, is_tty=lambda: False)


def test_empty_prompt_and_eof_are_errors() -> None:
    with pytest.raises(KeyBackendError, match="no pin given"):
        get_secret("X", what="pin", environ={}, is_tty=lambda: True, prompt=lambda _: "")

    def eof(_: str) -> str:
        raise EOFError

    with pytest.raises(KeyBackendError, match="no pin given"):
        get_secret("X", what="pin", environ={}, is_tty=lambda: True, prompt=eof)


def test_new_secret_is_typed_twice() -> None:
    answers = iter(["one", "two"])
    with pytest.raises(KeyBackendError, match="differ"):
        new_secret_twice(
            "X", what="passphrase", environ={}, is_tty=lambda: True, prompt=lambda _: next(answers)
        )
    same = iter(["one", "one"])
    assert (
        new_secret_twice(
            "X", what="p", environ={}, is_tty=lambda: True, prompt=lambda _: next(same)
        )
        == "one"
    )


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_key_arguments(parser)
    return parser.parse_args(list(argv))


def test_no_option_takes_a_secret() -> None:
    parser = argparse.ArgumentParser()
    add_key_arguments(parser)
    options = {o for a in parser._actions for o in a.option_strings}
    assert not {o for o in options if any(w in o for w in ("pin", "pass", "secret", "password"))}


def test_key_specs_from_options() -> None:
    assert key_spec_from_args(
        parse("--key", "k.pem", "--cert", "c.pem", "--chain", "ca.pem")
    ) == PemKeySpec(key_path=Path("k.pem"), cert_path=Path("c.pem"), chain_paths=(Path("ca.pem"),))
    assert key_spec_from_args(parse("--p12", "a.p12")) == Pkcs12KeySpec(p12_path=Path("a.p12"))
    spec = key_spec_from_args(
        parse("--token-label", "HC", "--key-label", "dsc", "--key-id", "0a0b")
    )
    assert spec == Pkcs11KeySpec(
        module=DEFAULT_MODULE, token_label="HC", key_label="dsc", key_id=b"\x0a\x0b"
    )
    spec = key_spec_from_args(
        parse(
            "--pkcs11-module", "/x.so", "--token-label", "HC", "--key-label", "k", "--cert", "c.pem"
        )
    )
    assert (
        isinstance(spec, Pkcs11KeySpec)
        and spec.module == "/x.so"
        and spec.cert_path == Path("c.pem")
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "choose exactly one"),
        (("--key", "k.pem", "--p12", "a.p12"), "choose exactly one"),
        (("--key", "k.pem"), "--key needs --cert"),
        (("--p12", "a.p12", "--cert", "c.pem"), "drop --cert"),
        (("--token-label", "HC"), "--key-label or --key-id"),
        (("--token-label", "HC", "--key-id", "zz"), "hexadecimal"),
    ],
)
def test_bad_option_combinations(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        key_spec_from_args(parse(*argv))
