"""Trust material: DSC files, pinned CSCAs, the signed trust list (producer and consumer)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list
from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.factory import dcc, make_hc1, pem, write
from verifier import cli
from verifier.errors import TrustError
from verifier.hc1 import verify_qr_text
from verifier.result import Reason
from verifier.trust import load_trust, pin_csca, uvci_hash

Pki = pki_fixture.TestPki
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def tl_signer(test_pki: Pki) -> SoftwareKey:
    key = new_private_key("ec-p256")
    cert = make_trust_list_signer(
        test_pki.csca, test_pki.csca_key, key.public_key(), now=NOW - 10 * DAY
    )  # type: ignore[arg-type]
    return SoftwareKey(private_key=key, certificate=cert, chain=(test_pki.csca,))


def build(test_pki: Pki, signer: SoftwareKey, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "signer": signer,
        "cscas": [test_pki.csca],
        "dscs": [test_pki.dsc_ec.certificate, test_pki.dsc_rsa.certificate],
        "revoked_dscs": [],
        "revoked_uvcis": [],
        "crls": [],
        "seq": 1,
        "now": NOW - DAY,
        "country": "VN",
    }
    args.update(kw)
    return build_trust_list(**args)


@pytest.fixture()
def csca_pem(test_pki: Pki, tmp_path: Path) -> str:
    return write(tmp_path / "csca.pem", pem(test_pki.csca))


def _load(
    tmp_path: Path, blob: bytes, *extra: str, name: str = "tl.cbor", now: dt.datetime = NOW
) -> Any:
    return load_trust([write(tmp_path / name, blob), *extra], now=now)


def test_trust_list_roundtrip(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    trust = _load(tmp_path, build(test_pki, tl_signer, seq=3), csca_pem)
    assert {e.info.kid for e in trust.dscs} == {
        e.info.kid
        for e in load_trust(
            [
                write(
                    tmp_path / "d.pem",
                    pem(test_pki.dsc_ec.certificate, test_pki.dsc_rsa.certificate),
                )
            ],
            now=NOW,
        ).dscs
    }
    assert all(e.listed and e.chain_ok and e.country == "VN" for e in trust.dscs)
    (info,) = trust.trust_lists
    assert info.seq == 3 and info.country == "VN" and info.dscs == 2
    for key in (test_pki.dsc_ec, test_pki.dsc_rsa):
        v = verify_qr_text(make_hc1(key, now=NOW), trust, now=NOW)
        assert v.valid, v.errors


def test_trust_list_format(test_pki: Pki, tl_signer: SoftwareKey) -> None:
    """docs/trust-list.md: tagged COSE_Sign1, alg/kid/x5chain protected, text-keyed payload."""
    blob = build(test_pki, tl_signer, revoked_uvcis=["URN:UVCI:01:VN:ABC#1"], next_update=NOW + DAY)
    cose = cbor2.loads(blob)
    assert cose.tag == 18
    protected = cbor2.loads(cose.value[0])
    assert protected[1] == -7 and len(protected[4]) == 8
    assert protected[33] == [tl_signer.certificate.public_bytes(Encoding.DER)]
    assert cose.value[1] == {}
    body = cbor2.loads(cose.value[2])
    assert set(body) == {
        "v",
        "seq",
        "iat",
        "nextUpdate",
        "country",
        "cscas",
        "dscs",
        "revokedDscs",
        "revokedUvcis",
        "crls",
    }
    assert body["v"] == 1 and body["revokedUvcis"] == [uvci_hash("URN:UVCI:01:VN:ABC#1")]
    assert set(body["dscs"][0]) == {"kid", "country", "cert"}


def test_untrusted_without_pinned_csca(
    test_pki: Pki, tl_signer: SoftwareKey, tmp_path: Path
) -> None:
    with pytest.raises(TrustError) as err:
        _load(tmp_path, build(test_pki, tl_signer))
    assert err.value.reason == "trust_list_untrusted"


def test_pinned_csca_in_state_dir(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path, verifier_state: Path
) -> None:
    target = pin_csca(csca_pem)
    assert target.parent == verifier_state / "pinned"
    trust = _load(tmp_path, build(test_pki, tl_signer))
    assert verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW), trust, now=NOW).valid


def test_pin_refuses_non_ca(test_pki: Pki, tmp_path: Path, verifier_state: Path) -> None:
    with pytest.raises(TrustError) as err:
        pin_csca(write(tmp_path / "dsc.pem", pem(test_pki.dsc_ec.certificate)))
    assert err.value.reason == "not_a_csca"
    # A non-CA slipped into the pinned folder by hand is refused too.
    (verifier_state / "pinned").mkdir(parents=True)
    (verifier_state / "pinned" / "x.pem").write_bytes(pem(test_pki.dsc_ec.certificate))
    with pytest.raises(TrustError) as err:
        load_trust([write(tmp_path / "d.pem", pem(test_pki.dsc_ec.certificate))], now=NOW)
    assert err.value.reason == "not_a_csca"


def test_rollback_refused(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path, verifier_state: Path
) -> None:
    _load(tmp_path, build(test_pki, tl_signer, seq=5), csca_pem, name="5.cbor")
    state = json.loads((verifier_state / "trustlist-seq.json").read_text())
    assert list(state.values()) == [5]
    with pytest.raises(TrustError) as err:
        _load(tmp_path, build(test_pki, tl_signer, seq=4), csca_pem, name="4.cbor")
    assert err.value.reason == "trust_list_rollback"
    _load(tmp_path, build(test_pki, tl_signer, seq=5), csca_pem, name="5b.cbor")  # same seq: fine
    _load(tmp_path, build(test_pki, tl_signer, seq=9), csca_pem, name="9.cbor")
    assert list(json.loads((verifier_state / "trustlist-seq.json").read_text()).values()) == [9]
    assert sorted(p.name for p in verifier_state.iterdir()) == [
        ".lock",  # serialises the read-compare-write of the counter between processes
        "trustlist-seq.json",
    ]  # no temp files left


def test_a_held_state_lock_is_waited_for_a_bounded_time(
    test_pki: Pki,
    tl_signer: SoftwareKey,
    csca_pem: str,
    tmp_path: Path,
    verifier_state: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process holding the state folder's lock (stuck, or a slow disk) makes a
    command give up with ``state_busy`` after LOCK_WAIT_SECONDS instead of waiting for
    ever: a daemon serving every command of its user must not stall behind it."""
    import fcntl
    import os
    import time

    from verifier import trust

    monkeypatch.setattr(trust, "LOCK_WAIT_SECONDS", 0.3)
    verifier_state.mkdir(parents=True, exist_ok=True)
    holder = os.open(verifier_state / trust.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)  # its own open file description: a second holder
        started = time.monotonic()
        with pytest.raises(TrustError) as err:
            _load(tmp_path, build(test_pki, tl_signer, seq=3), csca_pem, name="3.cbor")
        assert err.value.reason == "state_busy"
        assert 0.25 <= time.monotonic() - started < 5
        assert not (verifier_state / trust.SEQ_FILE).exists()
    finally:
        os.close(holder)
    _load(tmp_path, build(test_pki, tl_signer, seq=3), csca_pem, name="3b.cbor")  # free again
    assert list(json.loads((verifier_state / trust.SEQ_FILE).read_text()).values()) == [3]


def test_state_dir_argument_and_default(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    explicit = tmp_path / "explicit"
    load_trust(
        [write(tmp_path / "a.cbor", build(test_pki, tl_signer, seq=2)), csca_pem],
        now=NOW,
        state_dir=explicit,
    )
    assert (explicit / "trustlist-seq.json").is_file()


def test_tampered_list(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    cose = cbor2.loads(build(test_pki, tl_signer))
    body = cbor2.loads(cose.value[2])
    body["dscs"].append({"kid": b"12345678", "country": "XX", "cert": body["dscs"][0]["cert"]})
    array = list(cose.value)  # cbor2 6 decodes a tag's array as a tuple
    array[2] = cbor2.dumps(body)
    with pytest.raises(TrustError) as err:
        _load(tmp_path, cbor2.dumps(cbor2.CBORTag(cose.tag, array)), csca_pem)
    assert err.value.reason == "trust_list_bad_signature"


def test_list_signed_by_a_dsc_is_refused(test_pki: Pki, csca_pem: str, tmp_path: Path) -> None:
    with pytest.raises(TrustError) as err:
        _load(tmp_path, build(test_pki, test_pki.dsc_ec), csca_pem)
    assert err.value.reason == "trust_list_untrusted"


def test_list_signer_from_foreign_csca(test_pki: Pki, csca_pem: str, tmp_path: Path) -> None:
    ca_key = new_private_key("ec-p256")
    foreign = make_csca(ca_key, country="VN", name="Rogue CSCA", now=NOW - 10 * DAY)
    key = new_private_key("ec-p256")
    cert = make_trust_list_signer(foreign, ca_key, key.public_key(), now=NOW - DAY)  # type: ignore[arg-type]
    rogue = SoftwareKey(private_key=key, certificate=cert)
    with pytest.raises(TrustError) as err:
        _load(tmp_path, build(test_pki, rogue, cscas=[foreign]), csca_pem)
    assert err.value.reason == "trust_list_untrusted"


def test_stale_list(test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path) -> None:
    with pytest.raises(TrustError) as err:
        _load(tmp_path, build(test_pki, tl_signer, next_update=NOW - 1 * DAY), csca_pem)
    assert err.value.reason == "trust_list_stale"


def _verdict(trust: Any, key: SoftwareKey, *, now: dt.datetime = NOW, **kw: Any) -> Any:
    return verify_qr_text(make_hc1(key, now=NOW, **kw), trust, now=now)


def test_revoked_dsc(test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path) -> None:
    blob = build(test_pki, tl_signer, revoked_dscs=[(test_pki.dsc_ec.certificate, NOW - DAY)])
    trust = _load(tmp_path, blob, csca_pem)
    v = _verdict(trust, test_pki.dsc_ec)
    assert not v.valid and v.reasons == (Reason.DSC_REVOKED,) and v.stage_failed == "signature"
    assert _verdict(trust, test_pki.dsc_rsa).valid
    earlier = NOW - 2 * DAY  # before the revocation
    assert _verdict(trust, test_pki.dsc_ec, now=earlier, iat=earlier.timestamp() - 60).valid


def test_direct_file_cannot_bypass_list_revocation(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    blob = build(test_pki, tl_signer, revoked_dscs=[(test_pki.dsc_ec.certificate, NOW - DAY)])
    dsc_file = write(tmp_path / "dsc.pem", pem(test_pki.dsc_ec.certificate))
    trust = _load(tmp_path, blob, dsc_file, csca_pem)
    assert len(trust.candidates(trust.dscs[0].info.kid)) == 1
    assert _verdict(trust, test_pki.dsc_ec).reasons == (Reason.DSC_REVOKED,)


def test_revoked_by_crl(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(test_pki.csca.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + 30 * DAY)
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(test_pki.dsc_rsa.certificate.serial_number)
            .revocation_date(NOW - DAY)
            .build()
        )
        .sign(test_pki.csca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    trust = _load(tmp_path, build(test_pki, tl_signer, crls=[crl]), csca_pem)
    assert _verdict(trust, test_pki.dsc_rsa).reasons == (Reason.DSC_REVOKED,)
    assert _verdict(trust, test_pki.dsc_ec).valid


def test_crl_not_from_csca_refused(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    other = new_private_key("ec-p256")
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(test_pki.csca.subject)
        .last_update(NOW - DAY)
        .next_update(NOW + DAY)
        .sign(other, hashes.SHA256())  # type: ignore[arg-type]
    )
    with pytest.raises(TrustError):
        _load(tmp_path, build(test_pki, tl_signer, crls=[crl]), csca_pem)


def test_dsc_outside_validity(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    trust = _load(tmp_path, build(test_pki, tl_signer), csca_pem)
    later = test_pki.dsc_ec.certificate.not_valid_after_utc + DAY
    v = _verdict(trust, test_pki.dsc_ec, now=later, exp=later.timestamp() + 10)
    assert v.reasons == (Reason.DSC_EXPIRED,) and v.checks["expiry"] is True


def test_dsc_from_unknown_csca_untrusted(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    ca_key = new_private_key("ec-p256")
    foreign = make_csca(ca_key, country="VN", name="Unlisted CSCA", now=NOW - 10 * DAY)
    key = new_private_key("ec-p256")
    cert = make_dsc(foreign, ca_key, key.public_key(), name="Stray DSC", now=NOW - DAY)  # type: ignore[arg-type]
    stray = SoftwareKey(private_key=key, certificate=cert)
    trust = _load(tmp_path, build(test_pki, tl_signer, dscs=[cert]), csca_pem)
    assert _verdict(trust, stray).reasons == (Reason.DSC_UNTRUSTED,)
    # The same DSC given directly as a file is trusted as is (EU style).
    direct = load_trust([write(tmp_path / "stray.pem", pem(cert))], now=NOW)
    assert _verdict(direct, stray).valid


def test_revoked_uvci(test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path) -> None:
    payload = dcc()
    uvci = payload["v"][0]["ci"]
    trust = _load(
        tmp_path,
        build(test_pki, tl_signer, revoked_uvcis=[uvci, "URN:UVCI:01:VN:OTHER#X"]),
        csca_pem,
    )
    v = _verdict(trust, test_pki.dsc_ec, payload=payload)
    assert v.reasons == (Reason.UVCI_REVOKED,) and v.checks["signature"] is False
    other = dcc()
    other["v"][0]["ci"] = "URN:UVCI:01:VN:STILLGOOD#Q"
    assert _verdict(trust, test_pki.dsc_ec, payload=other).valid


@pytest.mark.parametrize("form", ["pem", "der", "b64", "b64-wrapped"])
def test_dsc_file_forms(test_pki: Pki, tmp_path: Path, form: str) -> None:
    der = test_pki.dsc_ec.certificate.public_bytes(Encoding.DER)
    data = {
        "pem": pem(test_pki.dsc_ec.certificate),
        "der": der,
        "b64": base64.b64encode(der),
        "b64-wrapped": base64.encodebytes(der),
    }[form]
    trust = load_trust([write(tmp_path / "dsc", data)], now=NOW)
    assert _verdict(trust, test_pki.dsc_ec).valid


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "trust_file_invalid"),
        (b"just some text !!", "trust_file_invalid"),
        (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "trust_file_invalid"),
        # b"\x30..." that is no certificate: a verdict now (tests/verifier/test_trust_strict.py)
        (b"\xd2\x84\x40\xa0\x40\x40", "trust_list_invalid"),
    ],
)
def test_unusable_trust_files(tmp_path: Path, data: bytes, reason: str) -> None:
    with pytest.raises(TrustError) as err:
        load_trust([write(tmp_path / "t", data)], now=NOW)
    assert err.value.reason == reason


def test_missing_file_and_no_dsc(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    with pytest.raises(TrustError) as err:
        load_trust([str(tmp_path / "absent.pem")], now=NOW)
    assert err.value.reason == "trust_file_unreadable"
    with pytest.raises(TrustError) as err:  # an anchor and an empty list can verify nothing
        _load(tmp_path, build(test_pki, tl_signer, dscs=[]), csca_pem)
    assert err.value.reason == "no_dsc"
    # A CSCA file alone is a plain signing certificate (hcert Appendix A):
    # see tests/verifier/test_trust_strict.py.


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_trust_pin_show_and_verify(
    test_pki: Pki, tl_signer: SoftwareKey, csca_pem: str, tmp_path: Path
) -> None:
    tl = write(
        tmp_path / "tl.cbor",
        build(test_pki, tl_signer, seq=7, revoked_dscs=[(test_pki.dsc_rsa.certificate, NOW - DAY)]),
    )
    code, out, _ = _cli("trust", "pin", csca_pem)
    assert code == 0 and "pinned" in out
    code, out, _ = _cli("trust", "show", tl, "--at", NOW.isoformat())
    assert code == 0 and "seq 7" in out and "revoked" in out
    text = make_hc1(test_pki.dsc_ec, now=NOW)
    assert _cli("qr", "--trust", tl, "--at", NOW.isoformat(), text)[0] == 0
    code, out, _ = _cli(
        "qr", "--trust", tl, "--json", "--at", NOW.isoformat(), make_hc1(test_pki.dsc_rsa, now=NOW)
    )
    assert code == 1 and json.loads(out)["errors"][0]["reason"] == "dsc_revoked"


def test_cli_bad_trust_is_exit_2(tmp_path: Path, test_pki: Pki) -> None:
    bad = write(tmp_path / "bad.pem", b"garbage")
    code, out, err = _cli("qr", "--trust", bad, make_hc1(test_pki.dsc_ec, now=NOW))
    assert code == 2 and out == "" and err.startswith("error: ") and err.count("\n") == 1
