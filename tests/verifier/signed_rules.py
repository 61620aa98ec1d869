"""Signed rule sets for the tests (Python, Node and the page): one CSCA with its trust-list
signer and a DSC, the shipped VN rules signed at several times and sequence numbers, and
the bad ones a checkpoint must refuse. Keys are made here, never stored."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import cbor2

from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key
from keys.rulesets import build_rule_set
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list, sign_envelope
from tests.verifier import factory
from verifier.rules import bundle, default_rules_path, load_rules
from verifier.rules_signed import RULE_SET_FORMAT, RULE_SET_VERSION
from verifier.trust import RULE_SET_CONTENT_TYPE


@dataclass(frozen=True)
class Material:
    folder: Path
    now: dt.datetime
    csca: Path
    trust_list: Path
    qr: str  # a valid vaccination certificate (dose 2 of 2): passes "primary", fails "booster"
    files: dict[str, Path]


def _pki(name: str, now: dt.datetime) -> tuple[SoftwareKey, SoftwareKey, object, object]:
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name=name, now=now - dt.timedelta(days=400))
    k = new_private_key("ec-p256")
    dsc_cert = make_dsc(csca, ca_key, k.public_key(), name=f"{name} DSC", now=now - dt.timedelta(days=300))
    dsc = SoftwareKey(private_key=k, certificate=dsc_cert, chain=(csca,))
    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(csca, ca_key, tl_key.public_key(), now=now - dt.timedelta(days=300))
    tl = SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(csca,))
    return dsc, tl, csca, dsc_cert


def tamper(data: bytes, needle: bytes = b"VR-VN-0003") -> bytes:
    """One character of the rule bundle changed; the signature kept."""
    i = data.index(needle)
    out = bytearray(data)
    out[i + len(needle) - 1] ^= 0x01
    return bytes(out)


def make(folder: Path, now: dt.datetime) -> Material:
    """Files in ``folder``: csca.pem, trustlist.cbor (seq 1, nextUpdate in a year),
    trustlist-2.cbor (seq 2) and rule sets:

    ``rules-1`` (seq 1, issued 1 hour ago), ``rules-2`` (seq 2, 1 hour ago), ``rules-5`` (seq 5,
    10 minutes ago), ``old``
    (seq 3, 20 days ago), ``too-old`` (seq 4, 90 days ago), ``tampered`` (rules-2 with one
    character of a rule changed), ``foreign`` (another CSCA's signer), ``dsc-signed``
    (signed by the DSC: no trust-list EKU), ``no-content-type`` (a valid payload without the
    rule-set content type), ``bad-bundle`` (a rule without its fields).
    """
    folder.mkdir(parents=True, exist_ok=True)
    dsc, tl, csca, dsc_cert = _pki("Rules CSCA", now)
    _, foreign_tl, _, _ = _pki("Foreign CSCA", now)
    (folder / "csca.pem").write_bytes(factory.pem(csca))  # type: ignore[arg-type]
    (folder / "trustlist.cbor").write_bytes(
        build_trust_list(
            signer=tl, cscas=[csca], dscs=[dsc_cert], revoked_dscs=[], revoked_uvcis=[],  # type: ignore[list-item]
            crls=[], seq=1, now=now - dt.timedelta(hours=2), country="VN",
            next_update=now + dt.timedelta(days=365),
        )
    )  # fmt: skip
    (folder / "trustlist-2.cbor").write_bytes(
        build_trust_list(
            signer=tl, cscas=[csca], dscs=[dsc_cert], revoked_dscs=[], revoked_uvcis=[],  # type: ignore[list-item]
            crls=[], seq=2, now=now - dt.timedelta(minutes=30), country="VN",
            next_update=now + dt.timedelta(days=365),
        )
    )  # fmt: skip
    rules = bundle(load_rules(default_rules_path()))
    hour = dt.timedelta(hours=1)

    def signed(signer: SoftwareKey, seq: int, at: dt.datetime) -> bytes:
        return build_rule_set(signer=signer, bundle=rules, seq=seq, now=at, country="VN")

    blobs = {
        "rules-1": signed(tl, 1, now - hour),
        "rules-2": signed(tl, 2, now - hour),
        "old": signed(tl, 3, now - dt.timedelta(days=20)),
        "too-old": signed(tl, 4, now - dt.timedelta(days=90)),
        "rules-5": signed(tl, 5, now - dt.timedelta(minutes=10)),
        "foreign": signed(foreign_tl, 1, now - hour),
        "dsc-signed": signed(dsc, 1, now - hour),
    }
    blobs["tampered"] = tamper(blobs["rules-2"])
    payload = {
        "format": RULE_SET_FORMAT, "version": RULE_SET_VERSION, "seq": 1,
        "iat": int((now - hour).timestamp()), "country": "VN", "bundle": "",
    }  # fmt: skip
    blobs["no-content-type"] = sign_envelope(
        tl, cbor2.dumps({**payload, "bundle": json.dumps(rules)}, canonical=True)
    )
    blobs["bad-bundle"] = sign_envelope(
        tl,
        cbor2.dumps({**payload, "bundle": json.dumps({"rules": [{"Identifier": "X"}]})}),
        content_type=RULE_SET_CONTENT_TYPE,
    )
    files = {}
    for name, data in blobs.items():
        files[name] = folder / f"{name}.cbor"
        files[name].write_bytes(data)
    return Material(
        folder=folder,
        now=now,
        csca=folder / "csca.pem",
        trust_list=folder / "trustlist.cbor",
        qr=factory.make_hc1(dsc, now=now - dt.timedelta(days=1)),
        files=files,
    )
