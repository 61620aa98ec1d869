"""The signer refuses, before signing anything, a certificate that cannot issue vaccination DCCs.

A DSC whose extended key usage allows only test (1.1) or recovery (1.3)
certificates used to sign a whole batch that every verifier rejects
("signer may not issue this type of certificate"), exit 0; the CSCA itself
and the trust-list signer were accepted as signing keys too.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from keys.certs import make_dsc, make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.tsa import make_tsa_certificate
from signer.issue import Hc1Issuer, check_document_signer
from tests.fixtures.pki import NOW
from tests.fixtures.pki import TestPki as Pki
from verifier.errors import ConfigError


def _key(test_pki: Pki, make: object) -> SoftwareKey:
    k = new_private_key("ec-p256")
    cert = make(test_pki.csca, test_pki.csca_key, k.public_key(), now=NOW - dt.timedelta(days=1))  # type: ignore[operator]
    return SoftwareKey(private_key=k, certificate=cert, chain=(test_pki.csca,))  # type: ignore[arg-type]


def test_test_only_dsc_is_refused(test_pki: Pki) -> None:
    with pytest.raises(ConfigError, match="may sign only t certificates"):
        Hc1Issuer(test_pki.dsc_test_only, issuer_name="MoH")


@pytest.mark.parametrize("types", [("t", "r"), ("r",)])
def test_dsc_without_vaccination_eku_is_refused(test_pki: Pki, types: tuple[str, ...]) -> None:
    def make(csca, csca_key, public, *, now):  # type: ignore[no-untyped-def]
        return make_dsc(csca, csca_key, public, name="Lab", now=now, types=types)

    with pytest.raises(ConfigError, match="not vaccination"):
        Hc1Issuer(_key(test_pki, make), issuer_name="MoH")


@pytest.mark.parametrize("which", ["csca", "trust-list signer", "tsa"])
def test_other_certificates_of_the_pki_are_refused(test_pki: Pki, which: str) -> None:
    if which == "csca":
        der = test_pki.csca.public_bytes(Encoding.DER)
    else:
        make = make_trust_list_signer if which == "trust-list signer" else make_tsa_certificate
        der = _key(test_pki, make).certificate.public_bytes(Encoding.DER)
    with pytest.raises(ConfigError, match="not a document signer certificate"):
        check_document_signer(der)


def test_vaccination_dscs_are_accepted(test_pki: Pki) -> None:
    for key in (test_pki.dsc_ec, test_pki.dsc_rsa):
        assert Hc1Issuer(key, issuer_name="MoH").kid

    def make(csca, csca_key, public, *, now):  # type: ignore[no-untyped-def]
        return make_dsc(csca, csca_key, public, name="All", now=now, types=("v", "t", "r"), pdf_signing=False)

    assert Hc1Issuer(_key(test_pki, make), issuer_name="MoH").kid
