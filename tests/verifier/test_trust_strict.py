"""Issue 8, point 4: PS256 salt length, unsupported DSC keys, CA-only trust, cbor2 5 and 6.

The vectors live in tests/vectors/trust-strict/ (made by its make_vectors.py,
re-run here); each is checked through ``verify_qr_text`` and through the
CLI (``python -m verifier qr --trust F --json``): a certificate problem is
a JSON verdict with exit 1, never exit 2 without JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from keys.certs import make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list
from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.cli_run import load_script, run_cli
from tests.verifier.factory import make_hc1, pem, write
from verifier import codec
from verifier.crypto import (
    alg_matches_key,
    dcc_key_problem,
    ecdsa_der_to_raw,
    pss_salt_mismatch,
    verify_signature,
)
from verifier.errors import TrustError
from verifier.hc1 import verify_qr_text
from verifier.result import Reason
from verifier.trust import certificates_in, load_trust, parse_certificate, read_certificate

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "trust-strict"
NAMES = sorted(p.parent.name for p in VECTORS.glob("*/expected.json"))
DAY = dt.timedelta(days=1)


def _load_generator() -> types.ModuleType:
    return load_script(VECTORS / "make_vectors.py", "trust_strict_vectors")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh run of make_vectors.py (new keys), next to the committed folders."""
    out = tmp_path_factory.mktemp("trust-strict")
    assert _load_generator().main(["--out", str(out)]) == 0
    return out


_cli = run_cli


def _check_vector(folder: Path, state: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    text = (folder / "qr.txt").read_text(encoding="ascii").removesuffix("\n")
    now = dt.datetime.fromisoformat(expected["at"].replace("Z", "+00:00"))
    files = [str(folder / name) for name in expected["trust"]]
    if expected["exit"] == 2:
        with pytest.raises(TrustError):
            load_trust(files, now=now, state_dir=state)
    else:
        verdict = verify_qr_text(text, load_trust(files, now=now, state_dir=state), now=now)
        assert verdict.valid is expected["valid"]
        assert verdict.stage_failed == expected["stage_failed"]
        assert [str(r) for r in verdict.reasons] == expected["reasons"]
    # The CLI: one JSON verdict and exit 0/1, or exit 2 with one line and no JSON.
    argv = [a for f in files for a in ("--trust", f)]
    code, out, err = _cli("qr", *argv, "--json", "--at", expected["at"], text)
    assert code == expected["exit"], err
    if code == 2:
        assert out == "" and err.startswith("error: ") and err.count("\n") == 1
        return
    result = json.loads(out)
    assert result["valid"] is expected["valid"]
    assert result["stage_failed"] == expected["stage_failed"]
    assert [e["reason"] for e in result["errors"]] == expected["reasons"]


@pytest.mark.parametrize("name", NAMES)
def test_committed_vector(name: str, verifier_state: Path) -> None:
    _check_vector(VECTORS / name, verifier_state)


def test_regenerated_vectors_agree(regenerated: Path, verifier_state: Path) -> None:
    """make_vectors.py still makes the committed folders, with the same expected results."""
    fresh = sorted(p.parent.name for p in regenerated.glob("*/expected.json"))
    assert fresh == NAMES
    for name in NAMES:
        committed = json.loads((VECTORS / name / "expected.json").read_text(encoding="utf-8"))
        again = json.loads((regenerated / name / "expected.json").read_text(encoding="utf-8"))
        assert again == committed, name
        assert sorted(p.name for p in (regenerated / name).iterdir()) == sorted(
            p.name for p in (VECTORS / name).iterdir()
        )
        _check_vector(regenerated / name, verifier_state / "fresh")
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    assert readme == (regenerated / "README.md").read_text(encoding="utf-8")


def test_no_private_key_in_the_vectors() -> None:
    for path in VECTORS.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVATE KEY" not in data, path
            if path.suffix in (".pem", ".der"):
                assert b"-----BEGIN" not in data or data.count(b"-----BEGIN CERTIFICATE-----") == (
                    data.count(b"-----BEGIN")
                ), path


@pytest.mark.parametrize("name", ["ca-only-other-signer", "key-ed25519", "trust-file-garbage"])
def test_cli_subprocess(name: str, verifier_state: Path) -> None:
    """`python -m verifier qr --trust F --json` as a checkpoint runs it."""
    folder = VECTORS / name
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    argv = [a for f in expected["trust"] for a in ("--trust", str(folder / f))]
    text = (folder / "qr.txt").read_text(encoding="ascii").strip()
    env = {**os.environ, "VNDCC_VERIFIER_STATE": str(verifier_state)}
    run = subprocess.run(
        [sys.executable, "-m", "verifier", "qr", *argv, "--json", "--at", expected["at"], text],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == expected["exit"], run.stderr
    if expected["exit"] == 2:
        assert run.stdout == "" and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    else:
        result = json.loads(run.stdout)
        assert result["valid"] is False
        assert [e["reason"] for e in result["errors"]] == expected["reasons"]


# --------------------------------------------------------------------------
# verifier.crypto: PS256 is PSS with a 32-byte salt, nothing else


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 2048)


def _pss(key: rsa.RSAPrivateKey, salt: Any, data: bytes = b"data") -> bytes:
    scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
    return key.sign(data, scheme, hashes.SHA256())


@pytest.mark.parametrize("salt", [0, 1, 20, 31, 33, 48, 64, padding.PSS.MAX_LENGTH])
def test_pss_salt_other_than_32_does_not_verify(rsa_key: rsa.RSAPrivateKey, salt: Any) -> None:
    sig = _pss(rsa_key, salt)
    pub = rsa_key.public_key()
    assert not verify_signature(pub, codec.CoseAlgorithm.PS256, b"data", sig)
    assert pss_salt_mismatch(pub, codec.CoseAlgorithm.PS256, b"data", sig)


def test_pss_salt_32_verifies(rsa_key: rsa.RSAPrivateKey) -> None:
    sig = _pss(rsa_key, 32)
    pub = rsa_key.public_key()
    assert verify_signature(pub, codec.CoseAlgorithm.PS256, b"data", sig)
    assert not pss_salt_mismatch(pub, codec.CoseAlgorithm.PS256, b"data", sig)
    # A forged or altered signature is no salt problem.
    assert not pss_salt_mismatch(pub, codec.CoseAlgorithm.PS256, b"other", sig)
    assert not pss_salt_mismatch(pub, codec.CoseAlgorithm.PS256, b"data", b"\0" * 256)
    assert not pss_salt_mismatch(pub, codec.CoseAlgorithm.ES256, b"data", sig)


def test_ecdsa_needs_the_curve_of_its_algorithm() -> None:
    """RFC 9053 2.1: ES256 is P-256, ES384 P-384, ES512 P-521."""
    for curve, alg, hash_alg, size in (
        (ec.SECP256R1(), codec.CoseAlgorithm.ES256, hashes.SHA256(), 32),
        (ec.SECP384R1(), codec.CoseAlgorithm.ES384, hashes.SHA384(), 48),
        (ec.SECP521R1(), codec.CoseAlgorithm.ES512, hashes.SHA512(), 66),
    ):
        key = ec.generate_private_key(curve)
        sig = ecdsa_der_to_raw(key.sign(b"m", ec.ECDSA(hash_alg)), size)
        assert verify_signature(key.public_key(), alg, b"m", sig)
        for other in codec.CoseAlgorithm:
            if other != alg:
                assert not verify_signature(key.public_key(), other, b"m", sig)
    # P-256 signing with SHA-384 used to pass as ES384 (curve size under the bound).
    p256 = ec.generate_private_key(ec.SECP256R1())
    sig = ecdsa_der_to_raw(p256.sign(b"m", ec.ECDSA(hashes.SHA384())), 48)
    assert not verify_signature(p256.public_key(), codec.CoseAlgorithm.ES384, b"m", sig)


def test_es256_also_verifies_with_a_p384_key() -> None:
    """Real issuers signed ES256 with P-384 DSCs (official vectors ES/401-403):
    SHA-256, r || s of 48 bytes each; nothing else about ES256 loosens."""
    p384 = ec.generate_private_key(ec.SECP384R1())
    der_sig = p384.sign(b"m", ec.ECDSA(hashes.SHA256()))
    sig = ecdsa_der_to_raw(der_sig, 48)
    assert verify_signature(p384.public_key(), codec.CoseAlgorithm.ES256, b"m", sig)
    assert alg_matches_key(p384.public_key(), codec.CoseAlgorithm.ES256)
    assert not verify_signature(p384.public_key(), codec.CoseAlgorithm.ES256, b"other", sig)
    assert not verify_signature(p384.public_key(), codec.CoseAlgorithm.ES256, b"m", sig[:64])  # P-256 size
    assert not verify_signature(p384.public_key(), codec.CoseAlgorithm.ES256, b"m", b"\0" + sig)
    sha384 = ecdsa_der_to_raw(p384.sign(b"m", ec.ECDSA(hashes.SHA384())), 48)
    assert not verify_signature(p384.public_key(), codec.CoseAlgorithm.ES256, b"m", sha384)
    p521 = ec.generate_private_key(ec.SECP521R1())
    sig521 = ecdsa_der_to_raw(p521.sign(b"m", ec.ECDSA(hashes.SHA256())), 66)
    assert not verify_signature(p521.public_key(), codec.CoseAlgorithm.ES256, b"m", sig521)
    assert not alg_matches_key(p521.public_key(), codec.CoseAlgorithm.ES256)


@pytest.mark.parametrize("alg", [[1], {}, None, True, 2**5000, -7.0, "ES256"])
def test_odd_algorithm_values_never_raise(alg: Any, rsa_key: rsa.RSAPrivateKey) -> None:
    for key in (ec.generate_private_key(ec.SECP256R1()), rsa_key):
        assert not verify_signature(key.public_key(), alg, b"m", b"\0" * 64)
        assert not pss_salt_mismatch(key.public_key(), alg, b"m", b"\0" * 64)


def test_dcc_key_policy() -> None:
    """hcert 1.x 3.3.2: ES256 (P-256; P-384 as issued) and PS256 (RSA, 2048 bits; larger accepted)."""
    ok = [ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP384R1()),
          rsa.generate_private_key(65537, 2048)]
    refused = [
        ec.generate_private_key(ec.SECP521R1()),
        ec.generate_private_key(ec.BrainpoolP256R1()),
        ed25519.Ed25519PrivateKey.generate(),
        rsa.generate_private_key(65537, 1024),
    ]
    assert all(dcc_key_problem(k.public_key()) is None for k in ok)
    assert all(dcc_key_problem(k.public_key()) for k in refused)
    assert dcc_key_problem(None)


# --------------------------------------------------------------------------
# verifier.trust: unreadable certificates, CA files, parse_certificate's contract


def test_read_certificate_never_raises_on_content() -> None:
    for data in (b"", b"\x30", b"\x30\x03\x02\x01\x01", b"\xff" * 40, b"\x30\x82\xff\xff"):
        info = read_certificate(data)
        assert info.problem is not None and info.problem.reason == "dsc_malformed"
        assert info.public_key is None and not info.valid_at(NOW)
        assert "unreadable" in info.describe()
        with pytest.raises(TrustError) as err:
            parse_certificate(data)
        assert err.value.reason == "certificate_invalid"


def test_unreadable_certificate_answers_only_its_kid(
    test_pki: pki_fixture.TestPki, tmp_path: Path
) -> None:
    """Kept out of ``dscs`` (trust show, the PDF verifier's roots), found by kid."""
    junk = b"\x30\x03\x02\x01\x01"
    trust = load_trust(
        [
            write(tmp_path / "junk.der", junk),
            write(tmp_path / "d.pem", pem(test_pki.dsc_ec.certificate)),
        ],
        now=NOW,
    )
    assert [e.info.der for e in trust.unreadable] == [junk]
    assert [e.info.der for e in trust.dscs] == [
        test_pki.dsc_ec.certificate.public_bytes(Encoding.DER)
    ]
    (entry,) = trust.candidates(read_certificate(junk).kid)
    assert entry.info.der == junk
    only_junk = load_trust([write(tmp_path / "junk2.der", junk)], now=NOW)  # a verdict, not no_dsc
    assert only_junk.dscs == () and len(only_junk.unreadable) == 1


def test_parse_certificate_still_refuses_non_ec_rsa() -> None:
    """signer.issue and the trust-list signer rely on it; P-384 stays usable there."""
    folder = VECTORS / "key-ed25519"
    (ed_der,) = certificates_in((folder / "trust.pem").read_bytes(), where="x")
    assert read_certificate(ed_der).problem is not None
    with pytest.raises(TrustError) as err:
        parse_certificate(ed_der)
    assert err.value.reason == "certificate_key_unsupported"
    (p521_der,) = certificates_in((VECTORS / "key-p521" / "trust.pem").read_bytes(), where="x")
    info = parse_certificate(p521_der)
    assert info.problem is not None and info.problem.reason == "dsc_key_unsupported"
    (p384_der,) = certificates_in((VECTORS / "key-p384" / "trust.pem").read_bytes(), where="x")
    assert parse_certificate(p384_der).problem is None


def test_ca_file_is_anchor_and_plain_certificate(
    test_pki: pki_fixture.TestPki, tmp_path: Path
) -> None:
    csca = write(tmp_path / "csca.pem", pem(test_pki.csca))
    trust = load_trust([csca], now=NOW)
    assert [e.info.der for e in trust.dscs] == [trust.anchors[0].der]
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW), trust, now=NOW)
    assert v.reasons == (Reason.UNKNOWN_KID,)


# --------------------------------------------------------------------------
# cbor2 5 (lists, dicts) and cbor2 6 (tuples, frozendicts inside tags)


def _frozen(obj: Any) -> Any:
    """What cbor2 6 returns for a value inside a tag: tuples and immutable maps."""
    immutable: Callable[[dict[Any, Any]], Mapping[Any, Any]] = getattr(
        cbor2, "frozendict", types.MappingProxyType
    )
    if isinstance(obj, Mapping):
        return immutable({_frozen(k): _frozen(v) for k, v in obj.items()})
    if isinstance(obj, list | tuple):
        return tuple(_frozen(x) for x in obj)
    return obj


def _thawed(obj: Any) -> Any:
    """What cbor2 5 returns: lists and dicts."""
    if isinstance(obj, Mapping):
        return {_thawed(k): _thawed(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_thawed(x) for x in obj]
    return obj


@contextlib.contextmanager
def _decoder_like(shape: Callable[[Any], Any]) -> Iterator[None]:
    """Make codec.cbor_loads / decode_sign1 return containers of one shape."""

    def loads(data: bytes, *, reason: str) -> Any:
        return shape(cbor2.loads(data))

    def decode_sign1(data: bytes) -> codec.Sign1:
        obj = cbor2.loads(data)
        while isinstance(obj, cbor2.CBORTag):
            obj = obj.value
        protected_bytes, unprotected, payload, signature = obj
        return codec.Sign1(
            protected_bytes=protected_bytes,
            protected=shape(cbor2.loads(protected_bytes)),
            unprotected=shape(unprotected),
            payload=payload,
            signature=signature,
        )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "cbor_loads", loads)
        mp.setattr(codec, "decode_sign1", decode_sign1)
        yield


@pytest.mark.parametrize("shape", [_frozen, _thawed], ids=["cbor2-6", "cbor2-5"])
def test_trust_list_decoding_with_both_cbor2_shapes(
    shape: Callable[[Any], Any], test_pki: pki_fixture.TestPki, tmp_path: Path
) -> None:
    key = new_private_key("ec-p256")
    cert = make_trust_list_signer(
        test_pki.csca, test_pki.csca_key, key.public_key(), now=NOW - 10 * DAY
    )  # type: ignore[arg-type]
    blob = build_trust_list(
        signer=SoftwareKey(private_key=key, certificate=cert, chain=(test_pki.csca,)),
        cscas=[test_pki.csca],
        dscs=[test_pki.dsc_ec.certificate, test_pki.dsc_rsa.certificate],
        revoked_dscs=[(test_pki.dsc_rsa.certificate, NOW - DAY)],
        revoked_uvcis=["URN:UVCI:01:VN:ABC#1"],
        crls=[],
        seq=4,
        now=NOW - DAY,
        country="VN",
    )
    files = [write(tmp_path / "tl.cbor", blob), write(tmp_path / "csca.pem", pem(test_pki.csca))]
    with _decoder_like(shape):
        trust = load_trust(files, now=NOW, state_dir=tmp_path / "state")
    assert len(trust.dscs) == 2 and all(e.listed and e.chain_ok for e in trust.dscs)
    (summary,) = trust.trust_lists
    assert (summary.seq, summary.revoked_dscs, summary.revoked_uvcis) == (4, 1, 1)
    revoked = {e.info.der for e in trust.dscs if e.revoked_at is not None}
    assert revoked == {test_pki.dsc_rsa.certificate.public_bytes(Encoding.DER)}
    assert trust.uvci_revoked("URN:UVCI:01:VN:ABC#1")
