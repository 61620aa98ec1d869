"""The PKI command line end to end, in a temporary directory, secrets from the environment.

RFC 5280 (certificates, CRLs) and hcert 1.x section 5.1.1 (DSC extended key usage).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from keys import pki
from keys.base import SigningKey, kid_of
from keys.certs import DEFAULT_CRL_URL, EKU_RECOVERY, EKU_TEST, EKU_VACCINATION
from keys.cli import main
from keys.loader import PemKeySpec, Pkcs11KeySpec, open_key
from keys.pkcs11_key import open_session_count
from keys.secrets import CSCA_PASSPHRASE_ENV, KEY_PASSPHRASE_ENV, PKCS11_PIN_ENV
from keys.software import load_certificate_file
from tests.fixtures.softhsm import SoftHsmToken
from verifier.crypto import verify_signature

T0 = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)


def at(days: float) -> str:
    return (T0 + dt.timedelta(days=days)).isoformat()


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        CSCA_PASSPHRASE_ENV: "csca-" + secrets.token_hex(10),
        KEY_PASSPHRASE_ENV: "dsc-" + secrets.token_hex(10),
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


class Cli:
    """Runs ``main`` in-process and checks every output for secrets and tracebacks."""

    def __init__(
        self, capfd: pytest.CaptureFixture[str], directory: Path, secrets_: list[str]
    ) -> None:
        self.capfd, self.dir, self.secrets = capfd, directory, secrets_

    def __call__(self, *args: str, rc: int = 0) -> tuple[str, str]:
        code = main([args[0], "--pki", str(self.dir), *args[1:]])
        out, err = self.capfd.readouterr()
        assert code == rc, (args, out, err)
        for s in self.secrets:
            assert s not in out and s not in err
        assert "Traceback" not in err
        if rc:
            assert len(err.strip().splitlines()) == 1 and err.startswith("vn-dcc-keys: error: ")
        return out, err


@pytest.fixture()
def cli(tmp_path: Path, env: dict[str, str], capfd: pytest.CaptureFixture[str]) -> Cli:
    return Cli(capfd, tmp_path / "pki", list(env.values()))


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> object:
    return cert.extensions.get_extension_for_oid(oid).value


def test_dsc_in_file_has_the_right_profile_and_signs(cli: Cli, env: dict[str, str]) -> None:
    cli("init-csca", "--country", "VN", "--name", "CSCA Test", "--days", "3650", "--now", at(0))
    out, _ = cli("issue-dsc", "--name", "Trạm Y tế Phường Đống Đa", "--days", "730", "--now", at(1))
    assert "ES256" in out
    index = pki.load_index(cli.dir)
    (rec,) = index.dscs
    csca = load_certificate_file(cli.dir / "csca.pem")
    dsc = load_certificate_file(cli.dir / rec.cert)

    # Issued by the CSCA, within its validity, keyUsage digitalSignature only, EKU vaccination.
    dsc.verify_directly_issued_by(csca)
    assert dsc.issuer == csca.subject
    assert dsc.not_valid_before_utc <= T0 + dt.timedelta(days=1)
    assert dsc.not_valid_after_utc == T0 + dt.timedelta(days=731)
    assert dsc.not_valid_after_utc <= csca.not_valid_after_utc
    ku = ext(dsc, ExtensionOID.KEY_USAGE)
    assert isinstance(ku, x509.KeyUsage)
    assert ku.digital_signature and not ku.key_cert_sign and not ku.crl_sign
    eku = ext(dsc, ExtensionOID.EXTENDED_KEY_USAGE)
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert EKU_VACCINATION in eku and EKU_TEST not in eku and EKU_RECOVERY not in eku
    bc = ext(dsc, ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(bc, x509.BasicConstraints) and not bc.ca
    assert ku.content_commitment  # nonRepudiation: PDF validators' default policy (issue 13)
    assert _crl_urls(dsc) == [DEFAULT_CRL_URL]
    cbc = ext(csca, ExtensionOID.BASIC_CONSTRAINTS)
    assert isinstance(cbc, x509.BasicConstraints) and cbc.ca
    assert csca.issuer == csca.subject

    # Private files are private; the key is encrypted; no secret lands in the index.
    key_path = cli.dir / (rec.key_file or "")
    assert key_path.stat().st_mode & 0o077 == 0
    assert (cli.dir / "csca.key.pem").stat().st_mode & 0o077 == 0
    assert b"ENCRYPTED PRIVATE KEY" in key_path.read_bytes()
    index_text = (cli.dir / "index.json").read_text()
    assert all(s not in index_text for s in env.values())

    with open_key(PemKeySpec(key_path=key_path, cert_path=cli.dir / rec.cert)) as key:
        assert key.certificate == dsc
        assert verify_signature(dsc.public_key(), key.alg, b"hello", key.sign(b"hello"))


def _crl_urls(cert: x509.Certificate) -> list[str]:
    points = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)
    assert isinstance(points, x509.CRLDistributionPoints)
    return [str(n.value) for p in points for n in p.full_name or ()]


def test_dsc_crl_url_option(cli: Cli) -> None:
    cli("init-csca", "--days", "365", "--now", at(0))
    url = "file:///srv/pki/crl/csca.crl"
    cli("issue-dsc", "--name", "Centre CRL", "--crl-url", url, "--now", at(1))
    (rec,) = pki.load_index(cli.dir).dscs
    assert _crl_urls(load_certificate_file(cli.dir / rec.cert)) == [url]
    with pytest.raises(SystemExit) as usage:
        main(["issue-dsc", "--pki", str(cli.dir), "--name", "X", "--crl-url", "ldap://x/crl"])
    assert usage.value.code == 2 and "--crl-url" in cli.capfd.readouterr().err


def test_rsa_dsc_types_and_validity_clamped_to_csca(cli: Cli) -> None:
    cli("init-csca", "--days", "365", "--key-type", "ec-p384", "--now", at(0))
    out, _ = cli(
        "issue-dsc", "--name", "BV Cho Ray", "--key-type", "rsa-2048", "--types", "v,t,r",
        "--days", "3650", "--now", at(100),
    )  # fmt: skip
    assert "PS256" in out
    # hcert 3.3.2: no P-384 DSC (verifiers refuse it: dsc_key_unsupported)
    with pytest.raises(SystemExit) as usage:
        main(["issue-dsc", "--pki", str(cli.dir), "--name", "P384", "--key-type", "ec-p384"])
    assert usage.value.code == 2 and "--key-type" in cli.capfd.readouterr().err
    (rec,) = pki.load_index(cli.dir).dscs
    csca = load_certificate_file(cli.dir / "csca.pem")
    dsc = load_certificate_file(cli.dir / rec.cert)
    assert dsc.not_valid_after_utc == csca.not_valid_after_utc  # never beyond the CSCA
    eku = ext(dsc, ExtensionOID.EXTENDED_KEY_USAGE)
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert {EKU_VACCINATION, EKU_TEST, EKU_RECOVERY} <= set(eku)
    assert ExtendedKeyUsageOID.CODE_SIGNING not in eku
    assert rec.types == ("v", "t", "r")
    dsc.verify_directly_issued_by(csca)


def test_revocation_and_crls(cli: Cli) -> None:
    cli("init-csca", "--now", at(0))
    cli("issue-dsc", "--name", "A", "--now", at(1))
    cli("issue-dsc", "--name", "B", "--now", at(1))
    index = pki.load_index(cli.dir)
    a, b = index.dscs
    out, _ = cli("issue-crl", "--days", "10", "--now", at(2))
    assert "CRL number 1" in out
    cli("revoke-dsc", b.kid, "--reason", "key-compromise", "--now", at(3))
    cli("revoke-dsc", b.serial, "--now", at(3), rc=2)  # already revoked
    cli("revoke-dsc", "nobody", "--now", at(3), rc=2)
    cli("revoke-uvci", "URN:UVCI:01:VN:8Q2ZK7RW3M5P#7", "--now", at(3))
    cli("revoke-uvci", "URN:UVCI:01:VN:8Q2ZK7RW3M5P#7", "--now", at(3), rc=2)
    cli("revoke-uvci", "not a uvci", rc=2)
    cli("issue-crl", "--days", "10", "--now", at(4))

    csca = load_certificate_file(cli.dir / "csca.pem")
    first = x509.load_der_x509_crl((cli.dir / "crl/crl-1.der").read_bytes())
    crl = x509.load_der_x509_crl((cli.dir / "crl/crl-2.der").read_bytes())
    assert crl.is_signature_valid(csca.public_key())  # type: ignore[arg-type]
    assert crl.issuer == csca.subject
    number = ext_crl(crl)
    assert (ext_crl(first), number) == (1, 2)
    assert crl.last_update_utc == T0 + dt.timedelta(days=4)
    assert crl.next_update_utc == T0 + dt.timedelta(days=14)
    assert len(first) == 0
    revoked = crl.get_revoked_certificate_by_serial_number(int(b.serial, 16))
    assert revoked is not None and revoked.revocation_date_utc == T0 + dt.timedelta(days=3)
    reason = revoked.extensions.get_extension_for_class(x509.CRLReason).value
    assert reason.reason == x509.ReasonFlags.key_compromise
    assert crl.get_revoked_certificate_by_serial_number(int(a.serial, 16)) is None

    index = pki.load_index(cli.dir)
    assert index.crl_number == 2
    assert index.revoked_uvcis == (("URN:UVCI:01:VN:8Q2ZK7RW3M5P#7", at(3).replace(".000", "")),)
    out, _ = cli("list")
    assert "REVOKED" in out and "URN:UVCI:01:VN:8Q2ZK7RW3M5P#7" in out
    out, _ = cli("list", "--json")
    assert json.loads(out)["crl_number"] == 2


def ext_crl(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_dsc_in_token(
    cli: Cli, softhsm_token: SoftHsmToken, softhsm_pin_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli.secrets.append(softhsm_pin_env)
    t = softhsm_token
    cli("init-csca", "--now", at(0))
    for key_type in ("ec-p256", "rsa-2048"):
        cli(
            "issue-dsc", "--name", f"Tram {key_type}", "--key-type", key_type, "--in-token",
            "--pkcs11-module", t.module, "--token-label", t.token_label, "--now", at(1),
        )  # fmt: skip
    assert open_session_count() == 0  # the CLI gave its session back
    index = pki.load_index(cli.dir)
    csca = load_certificate_file(cli.dir / "csca.pem")
    for rec, alg in zip(index.dscs, ("ES256", "PS256"), strict=True):
        assert rec.key_file is None and rec.token is not None
        assert not list((cli.dir / "dsc").glob("*.key.pem"))
        dsc = load_certificate_file(cli.dir / rec.cert)
        dsc.verify_directly_issued_by(csca)
        # The certificate was written into the token: no certificate file needed to sign.
        spec = Pkcs11KeySpec(
            module=t.module, token_label=t.token_label, key_id=bytes.fromhex(rec.token.key_id)
        )
        with open_key(spec) as key:
            assert key.certificate == dsc
            assert key.alg.name == alg == rec.alg
            assert verify_signature(dsc.public_key(), key.alg, b"m", key.sign(b"m"))
            from pkcs11 import Attribute

            obj = key.private_key_object  # type: ignore[attr-defined]
            assert obj[Attribute.NEVER_EXTRACTABLE] is True and obj[Attribute.SENSITIVE] is True
    # A wrong PIN is a clean error, and the PIN is not echoed.
    monkeypatch.setenv(PKCS11_PIN_ENV, "x" + softhsm_pin_env)
    cli.secrets.append("x" + softhsm_pin_env)
    _, err = cli("issue-dsc", "--name", "Nope", "--in-token", "--token-label", t.token_label, rc=2)
    assert "wrong PIN" in err
    _, err = cli("issue-dsc", "--name", "Nope", "--in-token", "--token-label", "missing", rc=2)
    assert "no PKCS#11 token labelled 'missing'" in err


def test_errors_are_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, err = cli("issue-crl", rc=2)
    assert "not a PKI directory" in err
    cli("init-csca", "--now", at(0))
    _, err = cli("init-csca", "--now", at(0), rc=2)
    assert "already holds a PKI" in err
    _, err = cli("issue-dsc", "--name", "A", "--now", "yesterday", rc=2)
    assert "ISO-8601" in err
    _, err = cli("issue-dsc", "--name", "A", "--now", at(365 * 16), rc=2)
    assert "CSCA is not valid" in err
    _, err = cli("issue-dsc", "--name", "A", "--types", "v,x", rc=2)
    assert "types" in err
    wrong = "wrong-" + secrets.token_hex(6)
    cli.secrets.append(wrong)
    monkeypatch.setenv(CSCA_PASSPHRASE_ENV, wrong)
    _, err = cli("issue-crl", rc=2)
    assert "wrong passphrase" in err
    monkeypatch.delenv(CSCA_PASSPHRASE_ENV)
    _, err = cli("issue-crl", rc=2)
    assert CSCA_PASSPHRASE_ENV in err  # no TTY under pytest: says which variable to set
    assert not list(tmp_path.rglob("*.tmp"))  # nothing half-written


def test_console_entry_point_runs_as_a_process(tmp_path: Path, env: dict[str, str]) -> None:
    """A real process: exit codes, one-line errors, no traceback, no secret in the output."""
    run_env = {**os.environ, **env}
    cmd = [sys.executable, "-m", "keys"]
    ok = subprocess.run(
        [*cmd, "init-csca", "--pki", str(tmp_path / "p"), "--now", at(0)],
        env=run_env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run(
        [*cmd, "issue-dsc", "--pki", str(tmp_path / "p"), "--name", "X"],
        env={**run_env, CSCA_PASSPHRASE_ENV: "bad"}, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    for s in env.values():
        assert s not in ok.stdout + ok.stderr + bad.stdout + bad.stderr


def _run_on_terminal(argv: list[str], env: dict[str, str], answers: list[str]) -> tuple[int, str]:
    """Run ``python -m keys ...`` on a real pseudo-terminal, answering its prompts."""
    import pty
    import select
    import signal
    import time

    pid, fd = pty.fork()
    if pid == 0:  # child: exec at once
        os.execve(sys.executable, [sys.executable, "-m", "keys", *argv], env)
    output = b""
    mark = 0  # answer only a prompt printed after the previous answer (getpass flushes input)
    pending = list(answers)
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 20)
            if not ready:
                break
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if pending and output[mark:].rstrip().endswith(b":"):
                os.write(fd, pending.pop(0).encode() + b"\n")
                mark = len(output)
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        for _ in range(50):
            if done:
                break
            time.sleep(0.1)
            done, status = os.waitpid(pid, os.WNOHANG)
        if done == 0:  # stuck: never hang the test run
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_prompted_passphrase_is_not_echoed_on_the_terminal(tmp_path: Path) -> None:
    passphrase = "typed-" + secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNDCC_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    d = str(tmp_path / "p")
    code, out = _run_on_terminal(
        ["init-csca", "--pki", d, "--now", at(0)], env, [passphrase, passphrase]
    )
    assert code == 0, out
    assert "CSCA key passphrase (VNDCC_CSCA_PASSPHRASE not set):" in out
    assert passphrase not in out  # getpass turned the terminal echo off
    # The typed passphrase really encrypts the CSCA key.
    pki.load_csca(Path(d), passphrase.encode())
    code, out = _run_on_terminal(["issue-crl", "--pki", d, "--now", at(1)], env, ["nope"])
    assert code == 2 and "wrong passphrase" in out and "Traceback" not in out


def _sign_cose(key: SigningKey, uvci: str, now: dt.datetime) -> bytes:
    from verifier.codec import encode_cwt, encode_protected, encode_sign1, sig_structure

    iat = int(now.timestamp())
    dcc = {"ver": "1.3.0", "v": [{"ci": uvci}]}
    payload = encode_cwt(iss="VN", issued_at=iat, expires_at=iat + 86400 * 365, dcc=dcc)
    protected = encode_protected(key.alg, kid_of(key))
    return encode_sign1(protected, payload, key.sign(sig_structure(protected, payload)))


def test_trust_list_export_end_to_end(
    cli: Cli, env: dict[str, str], softhsm_token: SoftHsmToken, softhsm_pin_env: str, tmp_path: Path
) -> None:
    """CSCA, DSCs in file and token, revocations, CRL, trust list; read back by the verifier."""
    from verifier.hc1 import verify_cose
    from verifier.trust import load_trust

    cli.secrets.append(softhsm_pin_env)
    t = softhsm_token
    cli("init-csca", "--now", at(0))
    cli("issue-dsc", "--name", "File EC", "--now", at(1))
    cli("issue-dsc", "--name", "Token RSA", "--key-type", "rsa-2048", "--in-token",
        "--token-label", t.token_label, "--now", at(1))  # fmt: skip
    cli("issue-dsc", "--name", "Stolen", "--now", at(1))
    _, err = cli("export-trust-list", "--now", at(2), rc=2)
    assert "init-tl-signer" in err
    cli("init-tl-signer", "--now", at(2))
    revoked_uvci = "URN:UVCI:01:VN:REVOKED1234#A"
    cli("revoke-dsc", "Stolen", "--reason", "key-compromise", "--now", at(3))
    cli("revoke-uvci", revoked_uvci, "--now", at(3))
    _, err = cli("export-trust-list", "--now", at(3))
    assert "no CRL has been issued" in err  # a warning, the export still works
    cli("issue-crl", "--now", at(4))
    out_file = tmp_path / "published" / "trustlist.cbor"
    out, err = cli("export-trust-list", "--out", str(out_file), "--now", at(4))
    assert "seq 2" in out and err == ""
    index = pki.load_index(cli.dir)
    assert index.trust_list_seq == 2
    assert out_file.read_bytes() == (cli.dir / "trustlist/trustlist-2.cbor").read_bytes()

    state = tmp_path / "verifier-state"
    now = T0 + dt.timedelta(days=5)
    trust = load_trust([out_file, cli.dir / "csca.pem"], now=now, state_dir=state)
    (info,) = trust.trust_lists
    assert (info.seq, info.country, info.dscs, info.revoked_dscs, info.crls) == (2, "VN", 3, 1, 1)
    assert info.revoked_uvcis == 1 and trust.uvci_revoked(revoked_uvci)
    assert not trust.uvci_revoked("URN:UVCI:01:VN:OTHER#A")
    # Rollback: the older list (seq 1) is refused once seq 2 was accepted.
    from verifier.errors import TrustError

    with pytest.raises(TrustError):
        load_trust(
            [cli.dir / "trustlist/trustlist-1.cbor", cli.dir / "csca.pem"], now=now, state_dir=state
        )

    # Keys issued by the PKI sign QRs that the verifier accepts (signature, key usage) ...
    file_rec, token_rec, stolen_rec = index.dscs
    assert token_rec.token is not None
    spec = Pkcs11KeySpec(
        module=t.module, token_label=t.token_label, key_label=token_rec.token.key_label
    )
    with open_key(spec) as token_key:
        verdict = verify_cose(_sign_cose(token_key, "URN:UVCI:01:VN:OK1#A", now), trust, now=now)
        assert verdict.checks["signature"] is True and verdict.checks["key_usage"] is True
        verdict = verify_cose(_sign_cose(token_key, revoked_uvci, now), trust, now=now)
        assert verdict.checks["signature"] is False or not verdict.valid
        assert "uvci_revoked" in {e.reason for e in verdict.errors}
    with open_key(
        PemKeySpec(key_path=cli.dir / (file_rec.key_file or ""), cert_path=cli.dir / file_rec.cert)
    ) as k:
        verdict = verify_cose(_sign_cose(k, "URN:UVCI:01:VN:OK2#A", now), trust, now=now)
        assert verdict.checks["signature"] is True
    # ... and the revoked DSC's signatures are refused.
    with open_key(
        PemKeySpec(
            key_path=cli.dir / (stolen_rec.key_file or ""), cert_path=cli.dir / stolen_rec.cert
        )
    ) as k:
        verdict = verify_cose(_sign_cose(k, "URN:UVCI:01:VN:OK3#A", now), trust, now=now)
        assert not verdict.valid and "dsc_revoked" in {e.reason for e in verdict.errors}


def test_openssl_agrees_on_chain_and_crl(cli: Cli) -> None:
    """Independent check: OpenSSL verifies the DSCs under the CSCA and sees the revocation."""
    import shutil

    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed (Debian package openssl)"
    cli("init-csca", "--now", at(0))
    cli("issue-dsc", "--name", "Good", "--now", at(1))
    cli("issue-dsc", "--name", "Bad", "--key-type", "rsa-2048", "--now", at(1))
    cli("revoke-dsc", "Bad", "--now", at(2))
    cli("issue-crl", "--now", at(3))
    good, bad = pki.load_index(cli.dir).dscs
    attime = str(int((T0 + dt.timedelta(days=4)).timestamp()))

    def verify(rec: pki.DscRecord, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [openssl, "verify", "-x509_strict", "-attime", attime, "-CAfile",
             str(cli.dir / "csca.pem"), *extra, str(cli.dir / rec.cert)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    crl = ("-crl_check", "-CRLfile", str(cli.dir / "crl/crl-1.pem"))
    assert verify(good).returncode == 0
    assert verify(good, *crl).returncode == 0
    assert verify(bad).returncode == 0
    revoked = verify(bad, *crl)
    assert revoked.returncode != 0 and "revoked" in (revoked.stdout + revoked.stderr)
