"""Sign a rule set for the checkpoints (producer side of docs/rules.md "Signed rule sets").

    $ python -m keys sign-rules --pki pki verifier/data/rules --out rules-vn.cbor
    rule set seq 1 (VN, 10 rules, 3 profiles) written to pki/rules/rules-1.cbor and rules-vn.cbor

    >>> # data = build_rule_set(signer=tl_key, bundle=bundle(load_rules(path)), seq=1,
    >>> #                       now=now, country="VN")

The same envelope and signer as the trust list (:func:`keys.trustlist.sign_envelope`, the
trust-list signer issued by the CSCA), with the rule-set content type in the protected
header. The verifier side is :mod:`verifier.rules_signed` (and the page's
``scanner/src/verify/signed-rules.js``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2

from keys import pki
from keys.base import SigningKey
from keys.trustlist import sign_envelope
from verifier.errors import ConfigError
from verifier.rules import bundle, load_rules
from verifier.rules_signed import RULE_SET_FORMAT, RULE_SET_VERSION
from verifier.trust import RULE_SET_CONTENT_TYPE

_COUNTRY = re.compile(r"[A-Z]{2}")
_SIGNED = re.compile(r"rules-([0-9]{1,18})\.cbor")


def build_rule_set(
    *, signer: SigningKey, bundle: Mapping[str, Any], seq: int, now: dt.datetime, country: str
) -> bytes:
    """A tagged COSE_Sign1 rule set (format ``vn-dcc-rules`` version 1) signed by ``signer``.

    ``bundle`` is :func:`verifier.rules.bundle`'s object; it travels as its JSON text, so the
    rules reach the checkpoint exactly as written. ``seq`` must grow with every set issued
    (verifiers refuse rollback); ``now`` is the issue time the checkpoints show as the age.
    """
    if seq < 0:
        raise ConfigError("rule-set sequence number must be >= 0")
    if not _COUNTRY.fullmatch(country):
        raise ConfigError(f"country must be ISO 3166-1 alpha-2 (e.g. VN), not {country!r}")
    if now.tzinfo is None:
        raise ConfigError("the rule set's issue time must be timezone-aware")
    payload = {
        "format": RULE_SET_FORMAT,
        "version": RULE_SET_VERSION,
        "seq": seq,
        "iat": int(now.timestamp()),
        "country": country,
        "bundle": json.dumps(bundle, ensure_ascii=False, separators=(",", ":")),
    }
    body = cbor2.dumps(payload, canonical=True)
    return sign_envelope(signer, body, content_type=RULE_SET_CONTENT_TYPE)


@dataclass(frozen=True, kw_only=True)
class SignedRules:
    path: Path
    seq: int
    country: str
    rules: int
    profiles: int


def sign_rules(
    pki_dir: Path,
    rules_path: Path,
    out: Path | None,
    *,
    csca_passphrase: bytes,
    now: dt.datetime,
    country: str | None = None,
) -> SignedRules:
    """Sign the rule set at ``rules_path`` (a folder or a JSON bundle) with the PKI's
    trust-list signer and the next sequence number; written to ``<pki>/rules/rules-<seq>.cbor``
    and, if given, to ``out``.

    A folder with rule tests (``<rule id>/tests/*.json``) is signed only when every test
    agrees (``python -m verifier rules test``): a rule set that contradicts its own tests
    never reaches a checkpoint.
    """
    from verifier.rules_cli import run_rule_tests

    rule_set = load_rules(rules_path)
    if rules_path.is_dir() and any(rules_path.glob("*/*/rule.json")):
        passed, failures = run_rule_tests(rules_path)
        if failures:
            raise ConfigError(
                f"{rules_path}: {len(failures)} rule tests disagree ({passed} pass): not signed; "
                f"first: {failures[0][:300]}"
            )
    with pki._locked(pki_dir):
        index = pki.load_index(pki_dir)
        signer = pki.trust_list_signer(pki_dir, csca_passphrase=csca_passphrase)
        cert = signer.certificate
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ConfigError(
                "the trust-list signer certificate is not valid now; run init-tl-signer"
            )
        folder = pki_dir / "rules"
        taken = [int(m[1]) for p in folder.glob("rules-*.cbor") if (m := _SIGNED.fullmatch(p.name))]
        seq = max(taken, default=0) + 1
        issuer_country = country or index.country
        blob = build_rule_set(
            signer=signer, bundle=bundle(rule_set), seq=seq, now=now, country=issuer_country
        )
        folder.mkdir(exist_ok=True)
        target = folder / f"rules-{seq}.cbor"
        pki.atomic_write(target, blob)
    if out is not None:
        try:
            pki.atomic_write(out, blob)
        except OSError as err:
            raise ConfigError(f"cannot write {out}: {err.strerror}") from None
    return SignedRules(
        path=target,
        seq=seq,
        country=issuer_country,
        rules=len(rule_set.rules),
        profiles=len(rule_set.profiles),
    )
