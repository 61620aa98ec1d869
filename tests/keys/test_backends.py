"""Every key backend signs in COSE form, and the signatures verify (RFC 9053 s2.1, RFC 8230)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from keys.base import SigningKey, kid_of
from keys.loader import PemKeySpec, Pkcs11KeySpec, Pkcs12KeySpec, open_key
from keys.pkcs11_key import Pkcs11Key, open_session_count
from keys.secrets import KEY_PASSPHRASE_ENV, PKCS11_PIN_ENV
from keys.software import SoftwareKey
from tests.fixtures.pki import TestPki as Pki
from tests.fixtures.softhsm import SoftHsmToken
from verifier.codec import CoseAlgorithm
from verifier.crypto import kid_for_certificate, verify_signature
from verifier.errors import KeyBackendError

PEM = serialization.Encoding.PEM


def write_pem_key(key: SoftwareKey, directory: Path, passphrase: str) -> PemKeySpec:
    key_path, cert_path = directory / "dsc.key.pem", directory / "dsc.pem"
    key_path.write_bytes(
        key.private_key.private_bytes(
            PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    cert_path.write_bytes(key.certificate.public_bytes(PEM))
    return PemKeySpec(key_path=key_path, cert_path=cert_path)


def write_p12(key: SoftwareKey, directory: Path, passphrase: str) -> Pkcs12KeySpec:
    path = directory / "dsc.p12"
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"dsc",
            key.private_key,
            key.certificate,
            list(key.chain),
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    return Pkcs12KeySpec(p12_path=path)


@pytest.fixture()
def passphrase(monkeypatch: pytest.MonkeyPatch) -> str:
    value = secrets.token_hex(12)
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, value)
    return value


Opener = Callable[[], AbstractContextManager[SigningKey]]


@pytest.fixture(params=["pem", "p12", "softhsm"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, test_pki: Pki, passphrase: str
) -> Callable[[str], Opener]:
    """backend(alg) -> a function opening a key of that alg (ES256/PS256) on this backend."""

    def for_alg(alg: str) -> Opener:
        soft = test_pki.dsc_ec if alg == "ES256" else test_pki.dsc_rsa
        if request.param == "pem":
            spec: PemKeySpec | Pkcs12KeySpec | Pkcs11KeySpec = write_pem_key(
                soft, tmp_path, passphrase
            )
        elif request.param == "p12":
            spec = write_p12(soft, tmp_path, passphrase)
        else:
            token: SoftHsmToken = request.getfixturevalue("softhsm_token")
            request.getfixturevalue("softhsm_pin_env")
            spec = token.es256 if alg == "ES256" else token.ps256
        return lambda: open_key(spec)

    return for_alg


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
def test_every_backend_signs_verifiable_cose_signatures(
    backend: Callable[[str], Opener], alg: str
) -> None:
    with backend(alg)() as key:
        assert isinstance(key, SigningKey)
        assert key.alg == CoseAlgorithm[alg]
        data = b"Sig_structure bytes " + secrets.token_bytes(16)
        sig = key.sign(data)
        if alg == "ES256":
            assert len(sig) == 64  # raw r||s, not DER
        else:
            assert len(sig) == 256
        pub = key.certificate.public_key()
        assert verify_signature(pub, key.alg, data, sig)
        assert not verify_signature(pub, key.alg, data + b"x", sig)
        der = key.certificate.public_bytes(serialization.Encoding.DER)
        assert kid_of(key) == kid_for_certificate(der)


def test_token_keys_are_generated_inside_and_not_extractable(
    softhsm_es256_key: Pkcs11Key, softhsm_ps256_key: Pkcs11Key
) -> None:
    from pkcs11 import Attribute

    for key in (softhsm_es256_key, softhsm_ps256_key):
        obj = key.private_key_object
        assert obj[Attribute.SENSITIVE] is True
        assert obj[Attribute.EXTRACTABLE] is False
        assert obj[Attribute.NEVER_EXTRACTABLE] is True
        assert obj[Attribute.LOCAL] is True


def test_second_key_on_same_token_reuses_the_logged_in_session(
    softhsm_token: SoftHsmToken,
) -> None:
    assert open_session_count() == 0
    first = Pkcs11Key(
        module=softhsm_token.module,
        token_label=softhsm_token.token_label,
        key_label="dsc-ec",
        pin=softhsm_token.pin,
    )
    second = Pkcs11Key(
        module=softhsm_token.module,
        token_label=softhsm_token.token_label,
        key_id=b"\x02",
        pin=softhsm_token.pin,
    )
    with first, second:
        # A second C_Login would raise UserAlreadyLoggedIn; both keys share one session.
        assert first.token.session is second.token.session
        assert open_session_count() == 1
        assert second.alg == CoseAlgorithm.PS256
        for k in (first, second):
            assert verify_signature(k.certificate.public_key(), k.alg, b"x", k.sign(b"x"))
    assert open_session_count() == 0
    # Closed: the key can no longer sign.
    with pytest.raises(KeyBackendError, match="not open"):
        first.sign(b"x")


def test_concurrent_signing_on_shared_session(softhsm_es256_key: Pkcs11Key) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = softhsm_es256_key
    msgs = [secrets.token_bytes(20) for _ in range(40)]
    with ThreadPoolExecutor(4) as pool:
        sigs = list(pool.map(key.sign, msgs))
    pub = key.certificate.public_key()
    assert all(verify_signature(pub, key.alg, m, s) for m, s in zip(msgs, sigs, strict=True))


# -- failures: one clean KeyBackendError each, never the secret in the message ------------


def _error(opener: Callable[[], AbstractContextManager[SigningKey]]) -> str:
    with pytest.raises(KeyBackendError) as info, opener():
        pass
    return str(info.value)


def test_wrong_passphrase_pem(
    tmp_path: Path, test_pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_pem_key(test_pki.dsc_ec, tmp_path, "right-one")
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "wrong-one")
    msg = _error(lambda: open_key(spec))
    assert "passphrase" in msg and "wrong-one" not in msg


def test_wrong_passphrase_p12(
    tmp_path: Path, test_pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_p12(test_pki.dsc_rsa, tmp_path, "right-one")
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "wrong-one")
    msg = _error(lambda: open_key(spec))
    assert "passphrase" in msg and "wrong-one" not in msg


def test_missing_passphrase_without_tty(
    tmp_path: Path, test_pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = write_pem_key(test_pki.dsc_ec, tmp_path, "right-one")
    monkeypatch.delenv(KEY_PASSPHRASE_ENV, raising=False)
    assert KEY_PASSPHRASE_ENV in _error(lambda: open_key(spec))


@pytest.mark.parametrize("which", ["key", "cert"])
def test_missing_files(tmp_path: Path, test_pki: Pki, passphrase: str, which: str) -> None:
    spec = write_pem_key(test_pki.dsc_ec, tmp_path, passphrase)
    getattr(spec, f"{which}_path").unlink()
    assert "cannot read" in _error(lambda: open_key(spec))
    assert "cannot read" in _error(lambda: open_key(Pkcs12KeySpec(p12_path=tmp_path / "no.p12")))


def test_wrong_pin(softhsm_token: SoftHsmToken, monkeypatch: pytest.MonkeyPatch) -> None:
    assert open_session_count() == 0  # a real C_Login happens, not a registry hit
    monkeypatch.setenv(PKCS11_PIN_ENV, "0000" + softhsm_token.pin)
    msg = _error(lambda: open_key(softhsm_token.es256))
    assert "wrong PIN" in msg and softhsm_token.pin not in msg
    assert open_session_count() == 0


def test_wrong_pin_while_token_is_open(
    softhsm_token: SoftHsmToken, softhsm_es256_key: Pkcs11Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shared session must not let a caller in without the right PIN.
    monkeypatch.setenv(PKCS11_PIN_ENV, "bad-pin")
    assert "wrong PIN" in _error(lambda: open_key(softhsm_token.ps256))


def test_missing_token_key_module_and_certificate(
    softhsm_token: SoftHsmToken, softhsm_pin_env: str, tmp_path: Path
) -> None:
    t = softhsm_token
    assert "no PKCS#11 token labelled 'nope'" in _error(
        lambda: open_key(Pkcs11KeySpec(module=t.module, token_label="nope", key_label="dsc-ec"))
    )
    assert "no private key with label 'nope'" in _error(
        lambda: open_key(replace(t.es256, key_label="nope"))
    )
    missing = str(tmp_path / "libnothing.so")
    assert "PKCS#11 module not found" in _error(
        lambda: open_key(Pkcs11KeySpec(module=missing, token_label=t.token_label, key_label="x"))
    )
    # A certificate file that does not belong to the token key is refused.
    other = tmp_path / "other.pem"
    other.write_bytes(t.ps256_cert.public_bytes(PEM))
    assert "does not match" in _error(lambda: open_key(replace(t.es256, cert_path=other)))
    assert open_session_count() == 0


def test_pkcs11_key_with_certificate_file_and_repr_hides_pin(
    softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    cert = tmp_path / "ec.pem"
    cert.write_bytes(softhsm_token.es256_cert.public_bytes(PEM))
    key = Pkcs11Key(
        module=softhsm_token.module,
        token_label=softhsm_token.token_label,
        key_label="dsc-ec",
        pin=softhsm_token.pin,
        cert_path=cert,
    )
    assert softhsm_token.pin not in repr(key)
    with key:
        assert key.certificate == softhsm_token.es256_cert
        assert key.alg == CoseAlgorithm.ES256


def test_es384_key_generated_in_token(softhsm_token: SoftHsmToken, test_pki: Pki) -> None:
    import datetime as dt

    from keys.certs import make_dsc
    from keys.pkcs11_key import generate_key_in_token, token_session, write_certificate_to_token

    t = softhsm_token
    label = "dsc-p384-" + secrets.token_hex(4)
    with token_session(t.module, t.token_label, t.pin, rw=True) as ts:
        public = generate_key_in_token(ts, key_type="ec-p384", label=label, key_id=b"\x38\x04")
        cert = make_dsc(
            test_pki.csca,
            test_pki.csca_key,  # type: ignore[arg-type]
            public,
            name="P-384",
            now=dt.datetime.now(dt.UTC),
        )
        write_certificate_to_token(ts, cert, label=label, key_id=b"\x38\x04")
        with pytest.raises(KeyBackendError, match="already holds a key"):
            generate_key_in_token(ts, key_type="ec-p384", label=label, key_id=b"\x38\x05")
    with Pkcs11Key(module=t.module, token_label=t.token_label, key_label=label, pin=t.pin) as key:
        assert key.alg == CoseAlgorithm.ES384
        sig = key.sign(b"data")
        assert len(sig) == 96
        assert verify_signature(cert.public_key(), CoseAlgorithm.ES384, b"data", sig)


def test_forked_child_logs_in_afresh(
    softhsm_token: SoftHsmToken, softhsm_es256_key: Pkcs11Key
) -> None:
    """PKCS#11 state does not cross fork: the child re-initialises and logs in itself."""
    t = softhsm_token
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        code = 1
        try:
            try:
                softhsm_es256_key.sign(b"x")
                result = b"parent key signed in child"
            except KeyBackendError:
                with Pkcs11Key(
                    module=t.module, token_label=t.token_label, key_label="dsc-ec", pin=t.pin
                ) as k:
                    sig = k.sign(b"child")
                    ok = verify_signature(k.certificate.public_key(), k.alg, b"child", sig)
                    result = b"ok" if ok else b"bad signature"
            code = 0
        except BaseException as err:
            result = repr(err).encode()
        finally:
            os.write(write, result)
            os._exit(code)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as fh:
        assert fh.read() == b"ok"
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's session is untouched.
    assert verify_signature(
        softhsm_es256_key.certificate.public_key(),
        softhsm_es256_key.alg,
        b"p",
        softhsm_es256_key.sign(b"p"),
    )
