"""Regressions found in the security review of verifier/: untrusted input that
used to end in an internal error (exit 2) or a traceback instead of a verdict.

* a CWT ``exp``/``iat`` as a CBOR bignum: ``math.isfinite`` overflowed;
* an integer of more than 4300 digits in the payload: ``str()``/``json.dumps``
  refuse it (Python's int-to-text limit), so ``--json`` and the human verdict broke;
* ``--at`` with a zone that puts the time out of range in UTC: a traceback
  from argparse instead of a usage error.
"""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.factory import dcc, make_hc1
from verifier.hc1 import verify_qr_text
from verifier.human import render
from verifier.result import Reason
from verifier.trust import TrustStore

Pki = pki_fixture.TestPki
AT = "2026-06-01T12:00:00Z"


def _cli(*argv: str) -> tuple[int, str, str]:
    from verifier import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(argv))
        except SystemExit as exit_:  # argparse usage errors
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("claim", "value", "valid"),
    [
        ("exp", 10**400, True),  # far future: signed by the issuer, compared exactly
        ("iat", -(10**400), True),
        ("exp", -(10**400), False),  # expired long ago
        ("exp", 10**5000, True),  # beyond Python's int-to-text limit
    ],
    ids=["exp-far-future", "iat-far-past", "exp-far-past", "exp-5000-digits"],
)
def test_bignum_times_give_a_verdict(
    test_pki: Pki, dsc_trust: TrustStore, dsc_pem: str, claim: str, value: int, valid: bool
) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW, **{claim: value})
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert Reason.INTERNAL not in v.reasons
    assert v.valid is valid, v.errors
    if not valid:
        assert v.reasons == (Reason.EXPIRED,)
    assert json.loads(v.to_json())["payload"]["iss"] == "VN"
    assert render(v).splitlines()[0] == ("VALID" if valid else "INVALID")
    code, out, err = _cli("qr", "--trust", dsc_pem, "--json", "--at", AT, text)
    assert (code, err) == (0 if valid else 1, "")
    assert json.loads(out)["valid"] is valid


def test_huge_integer_in_payload_is_reported_not_crashed(
    test_pki: Pki, dsc_trust: TrustStore, dsc_pem: str
) -> None:
    payload = dcc()
    payload["v"][0]["dn"] = 10**5000
    payload["v"][0]["mp"] = 10**5000
    text = make_hc1(test_pki.dsc_ec, now=NOW, payload=payload)
    v = verify_qr_text(text, dsc_trust, now=NOW)
    assert v.stage_failed == "schema" and v.reasons == (Reason.SCHEMA_INVALID,)
    shown = json.loads(v.to_json())["payload"]["hcert"]["v"][0]["dn"]
    assert shown == hex(10**5000)
    assert "dose ? of 2" in render(v)
    for extra in ((), ("--json",)):
        code, _, err = _cli("qr", "--trust", dsc_pem, "--at", AT, *extra, text)
        assert (code, err) == (1, "")


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_at_out_of_range_is_a_usage_error(dsc_pem: str, at: str) -> None:
    code, out, err = _cli("qr", "--trust", dsc_pem, "--at", at, "HC1:x")
    assert code == 2 and out == ""
    assert "--at" in err and "Traceback" not in err
