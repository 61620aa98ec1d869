"""Regressions found in the security review of verifier/: untrusted input that
used to end in an internal error (exit 2) or a traceback instead of a verdict.

* a CWT ``exp``/``iat`` as a CBOR bignum: ``math.isfinite`` overflowed;
* an integer of more than 4300 digits in the payload: ``str()``/``json.dumps``
  refuse it (Python's int-to-text limit), so ``--json`` and the human verdict broke;
* ``--at`` with a zone that puts the time out of range in UTC: a traceback
  from argparse instead of a usage error;
* trust lists: an older list given with a newer one (older first) was
  accepted and its unrevoked entry let a revoked DSC verify; a DSC that a
  list revokes but no longer holds, given as a plain file, escaped the
  revocation.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from keys.certs import make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list
from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.cli_run import run_cli
from tests.verifier.factory import dcc, make_hc1, pem, write
from verifier.errors import TrustError
from verifier.hc1 import verify_qr_text
from verifier.human import render
from verifier.result import Reason
from verifier.trust import TrustStore, load_trust

Pki = pki_fixture.TestPki
DAY = dt.timedelta(days=1)
AT = "2026-06-01T12:00:00Z"


_cli = run_cli


@pytest.mark.parametrize(
    ("claim", "value"),
    [
        ("exp", 10**400),
        ("iat", -(10**400)),
        ("exp", -(10**400)),
        ("exp", 10**5000),  # beyond Python's int-to-text limit
    ],
    ids=["exp-far-future", "iat-far-past", "exp-far-past", "exp-5000-digits"],
)
def test_bignum_times_give_a_verdict(
    test_pki: Pki, dsc_trust: TrustStore, dsc_pem: str, claim: str, value: int
) -> None:
    """Integers beyond CBOR's 64-bit range are malformed (issue 8, point 5;
    tests/vectors/strict): a clean cwt verdict, never an internal error."""
    text = make_hc1(test_pki.dsc_ec, now=NOW, **{claim: value})
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert (v.valid, v.stage_failed, v.reasons) == (False, "cwt", (Reason.INTEGER_OUT_OF_RANGE,))
    assert json.loads(v.to_json())["valid"] is False
    assert render(v).splitlines()[0] == "INVALID"
    code, out, err = _cli("qr", "--trust", dsc_pem, "--json", "--at", AT, text)
    assert (code, err) == (1, "")
    assert json.loads(out)["errors"][0]["reason"] == "integer_out_of_range"


def test_huge_integer_in_payload_is_reported_not_crashed(
    test_pki: Pki, dsc_trust: TrustStore, dsc_pem: str
) -> None:
    payload = dcc()
    payload["v"][0]["dn"] = 10**5000
    payload["v"][0]["mp"] = 10**5000
    text = make_hc1(test_pki.dsc_ec, now=NOW, payload=payload)
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert v.stage_failed == "cwt" and v.reasons == (Reason.INTEGER_OUT_OF_RANGE,)
    assert json.loads(v.to_json())["payload"] is None
    assert render(v).splitlines()[0] == "INVALID"
    for extra in ((), ("--json",)):
        code, _, err = _cli("qr", "--trust", dsc_pem, "--at", AT, *extra, text)
        assert (code, err) == (1, "")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_at_out_of_range_is_a_usage_error(dsc_pem: str, at: str) -> None:
    code, out, err = _cli("qr", "--trust", dsc_pem, "--at", at, "HC1:x")
    assert code == 2 and out == ""
    assert "--at" in err and "Traceback" not in err


# --------------------------------------------------------------------------
# Trust lists: an older list given in the same run as a newer one, and a DSC
# that a list revokes given as a plain file. Both used to verify a QR signed
# by a revoked DSC as VALID.


@pytest.fixture(scope="module")
def tl_signer(test_pki: Pki) -> SoftwareKey:
    key = new_private_key("ec-p256")
    cert = make_trust_list_signer(
        test_pki.csca, test_pki.csca_key, key.public_key(), now=NOW - 10 * DAY
    )  # type: ignore[arg-type]
    return SoftwareKey(private_key=key, certificate=cert, chain=(test_pki.csca,))


def _list(test_pki: Pki, signer: SoftwareKey, path: Path, **kw: Any) -> str:
    args: dict[str, Any] = {
        "signer": signer,
        "cscas": [test_pki.csca],
        "dscs": [test_pki.dsc_ec.certificate],
        "revoked_dscs": [],
        "revoked_uvcis": [],
        "crls": [],
        "seq": 1,
        "now": NOW - DAY,
        "country": "VN",
    }
    args.update(kw)
    return write(path, build_trust_list(**args))


@pytest.mark.parametrize("order", ["old-first", "new-first"])
def test_older_list_in_the_same_run_is_a_rollback(
    test_pki: Pki, tl_signer: SoftwareKey, tmp_path: Path, order: str
) -> None:
    csca = write(tmp_path / "csca.pem", pem(test_pki.csca))
    old = _list(test_pki, tl_signer, tmp_path / "trustlist-1.cbor", seq=1)
    revoked = [(test_pki.dsc_ec.certificate, NOW - 2 * DAY)]
    new = _list(test_pki, tl_signer, tmp_path / "trustlist-2.cbor", seq=2, revoked_dscs=revoked)
    files = [old, new] if order == "old-first" else [new, old]
    with pytest.raises(TrustError) as err:
        load_trust([*files, csca], now=NOW)
    assert err.value.reason == "trust_list_rollback"
    assert "trustlist-1.cbor" in err.value.message
    # the newer list alone still loads, and its revocation applies
    trust = load_trust([new, csca], now=NOW)
    v = verify_qr_text(make_hc1(test_pki.dsc_ec, now=NOW), trust, now=NOW)
    assert v.reasons == (Reason.DSC_REVOKED,)


def test_list_revocation_applies_to_a_dsc_given_as_a_file(
    test_pki: Pki, tl_signer: SoftwareKey, tmp_path: Path
) -> None:
    csca = write(tmp_path / "csca.pem", pem(test_pki.csca))
    dsc_file = write(tmp_path / "dsc.pem", pem(test_pki.dsc_ec.certificate))
    # the list no longer holds the DSC, it only revokes it
    tl = _list(
        test_pki,
        tl_signer,
        tmp_path / "tl.cbor",
        dscs=[test_pki.dsc_rsa.certificate],
        revoked_dscs=[(test_pki.dsc_ec.certificate, NOW - 2 * DAY)],
    )
    trust = load_trust([tl, csca, dsc_file], now=NOW)
    text = make_hc1(test_pki.dsc_ec, now=NOW - 4 * DAY)
    v = verify_qr_text(text, trust, now=NOW)
    assert v.valid is False and v.reasons == (Reason.DSC_REVOKED,)
    # before the revocation time it still verifies (as for listed DSCs)
    assert verify_qr_text(text, trust, now=NOW - 3 * DAY).valid is True
    # without the list, the plain DSC file is trusted as it is (EU style)
    assert verify_qr_text(text, load_trust([dsc_file], now=NOW), now=NOW).valid is True


# --------------------------------------------------------------------------
# CBOR shared values (tags 28/29): a 35-byte COSE whose array refers to itself
# ten times decodes instantly, but walking it (the depth check) grew 10**k
# items per level: memory exhaustion before any verdict. The walk is now
# bounded by the input size (each item takes at least one byte).


def _self_referencing_array(n: int) -> bytes:
    return b"\xd8\x1c\x99" + n.to_bytes(2, "big") + b"\xd8\x1d\x00" * n


_SHARED_BOMB_SCRIPT = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from tests.verifier.factory import raw_hc1
from verifier import codec
from verifier.hc1 import verify_qr_text
from verifier.trust import TrustStore
from tests.fixtures.pki import NOW
payload = bytes.fromhex(sys.argv[1])
v = verify_qr_text(raw_hc1(payload), TrustStore(by_kid={}), now=NOW)
print(v.stage_failed, ",".join(v.reasons))
"""


@pytest.mark.parametrize("n", [10, 2000])
def test_shared_value_bomb_is_a_clean_cose_failure(n: int) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _SHARED_BOMB_SCRIPT, _self_referencing_array(n).hex()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.split() == ["cose", "cose_wrong_tag"]  # a top-level tag 28 (issue 8)


def test_shared_values_within_the_size_bound_still_decode() -> None:
    from verifier import codec

    # a shared text referred to twice: fewer items than bytes, accepted
    data = b"\x82\xd8\x1c\x63abc\xd8\x1d\x00"
    assert codec.cbor_loads(data, reason="cwt_malformed") == ["abc", "abc"]


def test_image_input_is_read_with_a_cap(dsc_pem: str) -> None:
    """`--image /dev/zero` used to read forever (Path.read_bytes without a cap)."""
    import subprocess
    import sys

    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from verifier.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "qr", "--trust", dsc_pem, "--json", "--image", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (1, ""), done.stderr[-300:]
    result = json.loads(done.stdout)
    assert result["stage_failed"] == "qr"
    assert result["errors"][0]["reason"] == "image_unreadable"
