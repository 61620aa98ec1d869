"""``python -m keys`` / ``vn-dcc-keys``: the national PKI from the command line.

    $ export VNDCC_CSCA_PASSPHRASE=... VNDCC_KEY_PASSPHRASE=...
    $ python -m keys init-csca --pki pki --country VN --name "CSCA Viet Nam"
    $ python -m keys issue-dsc --pki pki --name "Tram Y te Phuong 1"
    $ python -m keys init-tl-signer --pki pki
    $ python -m keys export-trust-list --pki pki --out trustlist.cbor
    $ python -m keys init-tsa --pki pki          # RFC 3161 TSA key + certificate
    $ python -m keys tsa-serve --pki pki --port 3180

A thin shell over :mod:`keys.pki`: secrets come from the environment
(VNDCC_CSCA_PASSPHRASE, VNDCC_KEY_PASSPHRASE, VNDCC_PKCS11_PIN) or a prompt,
never from argv; the time comes from ``--now`` (default: the current time).
Any error prints one line on stderr and exits 2; there are no tracebacks.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path

from keys import pki
from keys.certs import DEFAULT_CRL_URL, KEY_TYPES
from keys.pkcs11_module import default_module
from keys.secrets import (
    CSCA_PASSPHRASE_ENV,
    KEY_PASSPHRASE_ENV,
    PKCS11_PIN_ENV,
    get_secret,
    new_secret_twice,
)
from verifier.errors import ConfigError, PassportError
from verifier.util import CommandLineParser, parse_iso_time

PROG = "vn-dcc-keys"
#: Key types a DSC may have (hcert 1.x section 3.3.2).
DSC_KEY_TYPES = tuple(t for t in KEY_TYPES if t != "ec-p384")


def parse_time(text: str | None) -> dt.datetime:
    """ISO-8601 with or without fractional seconds and zone (no zone = UTC); None = now."""
    if text is None:
        return dt.datetime.now(dt.UTC)
    return parse_iso_time(text, what="--now")


#: Validity periods and CRL/trust-list update intervals: up to 100 years
#: (``now`` is before 3000, so ``now + days`` stays far from datetime's limit).
MAX_DAYS = 36_500
#: X.520 upper bounds (RFC 5280 appendix A): ub-common-name, ub-organization-name;
#: ``cryptography`` counts them in UTF-8 bytes (about 40 Vietnamese characters).
MAX_NAME = 64
#: Revocation selectors and UVCIs: far above a UVCI's 72 characters.
MAX_SELECTOR = 200


def days_arg(*, minimum: int = 1) -> Callable[[str], int]:
    """argparse type: a whole number of days from ``minimum`` to :data:`MAX_DAYS`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text[:20]!r}") from None
        if not minimum <= value <= MAX_DAYS:
            raise argparse.ArgumentTypeError(
                f"must be {minimum} to {MAX_DAYS} days (100 years), got {text[:20]}"
            )
        return value

    return parse


def text_arg(max_bytes: int) -> Callable[[str], str]:
    """argparse type: 1 to ``max_bytes`` bytes of UTF-8, no control characters, not only spaces."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        size = len(text.encode("utf-8", errors="surrogatepass"))
        if size > max_bytes:
            raise argparse.ArgumentTypeError(
                f"at most {max_bytes} bytes in UTF-8, got {size}"
            )
        if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in text):
            raise argparse.ArgumentTypeError("must not contain control characters")
        return text

    return parse


def port_arg(text: str) -> int:
    """argparse type: a TCP port, 0 (any free port) to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text[:20]!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0 to 65535, got {text[:20]}")
    return value


def _csca_passphrase(*, new: bool = False) -> bytes:
    get = new_secret_twice if new else get_secret
    return get(CSCA_PASSPHRASE_ENV, what="CSCA key passphrase").encode()


def build_parser() -> argparse.ArgumentParser:
    parser = CommandLineParser(
        prog=PROG,
        description="National DCC PKI: CSCA, health-centre DSCs, CRLs, trust lists. "
        f"Secrets come from {CSCA_PASSPHRASE_ENV}, {KEY_PASSPHRASE_ENV}, {PKCS11_PIN_ENV} "
        "or a prompt, never from the command line.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "--pki",
            type=Path,
            default=Path(os.environ.get("VNDCC_PKI_DIR", "pki")),
            metavar="DIR",
            help="PKI directory (default $VNDCC_PKI_DIR or ./pki)",
        )
        p.add_argument(
            "--now", metavar="ISO-8601", help="the current time (default: now; no zone = UTC)"
        )
        return p

    p = command("init-csca", "create the PKI directory and the self-signed national CSCA")
    p.add_argument("--country", default="VN", help="ISO 3166-1 alpha-2 (default VN)")
    p.add_argument(
        "--name", type=text_arg(MAX_NAME), default="CSCA Viet Nam", help="CSCA common name"
    )
    p.add_argument("--organization", type=text_arg(MAX_NAME), default="Ministry of Health")
    p.add_argument("--key-type", choices=("ec-p256", "ec-p384"), default="ec-p256")
    p.add_argument(
        "--days", type=days_arg(), default=365 * 15, help="validity in days (default 15 years)"
    )

    p = command(
        "issue-dsc", "create a health centre's key and issue its document signer certificate"
    )
    p.add_argument(
        "--name",
        type=text_arg(MAX_NAME),
        required=True,
        help=f"health centre name (certificate common name, at most {MAX_NAME} bytes in UTF-8)",
    )
    p.add_argument("--organization", type=text_arg(MAX_NAME), default=None)
    p.add_argument(
        "--key-type",
        # hcert 3.3.2: a DSC signs with ES256 (P-256) or PS256 (RSA >= 2048) only;
        # verifiers, ours included, refuse a P-384 DSC (dsc_key_unsupported).
        choices=DSC_KEY_TYPES,
        default="ec-p256",
        help="ec-p256 (ES256, default), rsa-2048 or rsa-3072 (PS256)",
    )
    p.add_argument(
        "--types",
        default="v",
        help="certificate types the DSC may sign: v vaccination, t test, r recovery (e.g. v,t,r)",
    )
    p.add_argument(
        "--crl-url",
        type=_crl_url,
        default=DEFAULT_CRL_URL,
        metavar="URL",
        help=f"CRL distribution point written into the DSC (http(s) or file URI; default {DEFAULT_CRL_URL})",
    )
    p.add_argument(
        "--days", type=days_arg(), default=365 * 2, help="validity in days (default 2 years)"
    )
    p.add_argument(
        "--in-token", action="store_true", help="generate the key inside a PKCS#11 token"
    )
    p.add_argument(
        "--pkcs11-module", metavar="LIB", default=None, help=f"default {default_module()}"
    )
    p.add_argument("--token-label", metavar="LABEL")
    p.add_argument("--key-label", metavar="LABEL", help="label of the new key in the token")

    p = command("revoke-dsc", "revoke a DSC (by serial, kid or name)")
    p.add_argument("selector", type=text_arg(MAX_SELECTOR), metavar="SERIAL|KID|NAME")
    p.add_argument("--reason", choices=tuple(pki.REVOCATION_REASONS), default="unspecified")

    p = command("revoke-uvci", "revoke one issued certificate by its UVCI")
    p.add_argument("uvci", type=text_arg(MAX_SELECTOR), metavar="UVCI")

    p = command("issue-crl", "issue the next CRL of the CSCA")
    p.add_argument(
        "--days", type=days_arg(), default=30, help="nextUpdate = now + DAYS (default 30)"
    )

    p = command("init-tl-signer", "create or renew the trust-list signing key and certificate")
    p.add_argument("--key-type", choices=("ec-p256", "ec-p384", "rsa-2048"), default="ec-p256")
    p.add_argument("--days", type=days_arg(), default=365 * 3)

    p = command("init-tsa", "create or renew the time-stamping authority's key and certificate")
    p.add_argument("--key-type", choices=("ec-p256", "rsa-2048"), default="ec-p256")
    p.add_argument(
        "--days", type=days_arg(), default=365 * 5, help="validity in days (default 5 years)"
    )

    p = command("revoke-tsa", "revoke the TSA certificate (listed by the next issue-crl)")
    p.add_argument("--reason", choices=tuple(pki.REVOCATION_REASONS), default="unspecified")

    p = command("tsa-serve", "serve the RFC 3161 time-stamping authority over HTTP")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=port_arg, default=3180, help="TCP port (default 3180; 0: any free)"
    )

    p = command("export-trust-list", "sign and write the trust list with the next sequence number")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write it here")
    p.add_argument(
        "--next-update-days",
        type=days_arg(minimum=0),
        default=7,
        help="nextUpdate = now + DAYS (default 7; 0: none)",
    )
    p.add_argument(
        "--revoked-uvcis",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also revoke the UVCIs listed in FILE, one per line (the issuance ledger's: "
        "python -m signer ledger export-revoked); repeatable",
    )

    p = command(
        "sign-rules",
        "sign a rule set (folder or JSON bundle) for the checkpoints with the trust-list "
        "signer and the next sequence number",
    )
    p.add_argument("rules", type=Path, metavar="DIR_OR_FILE", help="the rule set to sign")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write it here")
    p.add_argument(
        "--country", metavar="CC", help="issuing country (default: the PKI's country)"
    )

    p = command("list", "show the PKI: CSCA, DSCs, revocations, CRLs, trust lists")
    p.add_argument("--json", action="store_true", help="print index.json")
    return parser


def _init_csca(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    cert = pki.init_csca(
        d,
        country=ns.country,
        name=ns.name,
        organization=ns.organization,
        key_type=ns.key_type,
        days=ns.days,
        passphrase=_csca_passphrase(new=True),
        now=now,
    )
    print(f"CSCA {cert.subject.rfc4514_string()} created in {d}, valid until "
          f"{cert.not_valid_after_utc:%Y-%m-%d}")  # fmt: skip


def _crl_url(text: str) -> str:
    """``--crl-url``: where validators find the national CRL (an http(s) or file URI)."""
    parts = urllib.parse.urlsplit(text)
    if len(text) > 500 or parts.scheme not in ("http", "https", "file") or not (parts.netloc or parts.path):
        raise argparse.ArgumentTypeError(f"not an http(s) or file URI: {text[:60]!r}")
    return text


def _issue_dsc(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    types = tuple(t.strip() for t in ns.types.split(",") if t.strip())
    token: pki.TokenTarget | None = None
    key_pass: bytes | None = None
    module: str | None = None
    if ns.in_token:
        module = ns.pkcs11_module or default_module()
        if module is None:
            raise ConfigError("--pkcs11-module is needed (SoftHSM2 is not installed)")
        if not ns.token_label:
            raise ConfigError("--in-token needs --token-label")
    elif ns.token_label or ns.key_label or ns.pkcs11_module:
        raise ConfigError("--token-label/--key-label/--pkcs11-module need --in-token")
    csca_pass = _csca_passphrase()
    if module is not None:
        pin = get_secret(PKCS11_PIN_ENV, what="token PIN")
        token = pki.TokenTarget(
            module=module, token_label=ns.token_label, pin=pin, key_label=ns.key_label
        )
    else:
        key_pass = new_secret_twice(KEY_PASSPHRASE_ENV, what="DSC key passphrase").encode()
    rec = pki.issue_dsc(
        d, name=ns.name, csca_passphrase=csca_pass, now=now, key_type=ns.key_type, types=types,
        days=ns.days, key_passphrase=key_pass, token=token, organization=ns.organization,
        crl_url=ns.crl_url,
    )  # fmt: skip
    where = (
        f"token {rec.token.token_label!r} key {rec.token.key_label!r}"
        if rec.token
        else str(d / (rec.key_file or ""))
    )
    print(f"DSC {rec.name!r} serial {rec.serial} kid {rec.kid} {rec.alg} types "
          f"{','.join(rec.types)} until {rec.not_after}: cert {d / rec.cert}, key {where}")  # fmt: skip


def _revoke_dsc(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    rec = pki.revoke_dsc(d, ns.selector, now=now, reason=ns.reason)
    print(f"DSC {rec.serial} ({rec.name}) revoked at {rec.revoked_at}; "
          "run issue-crl and export-trust-list to publish it")  # fmt: skip


def _revoke_uvci(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    uvci = pki.revoke_uvci(d, ns.uvci, now=now)
    print(f"{uvci} revoked; run export-trust-list to publish it")


def _issue_crl(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    _, crl = pki.issue_crl(d, csca_passphrase=_csca_passphrase(), now=now, days=ns.days)
    print(f"CRL number {crl.number} written to {d / crl.der} (next update {crl.next_update})")


def _init_tl_signer(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    cert = pki.init_trust_list_signer(
        d, csca_passphrase=_csca_passphrase(), now=now, key_type=ns.key_type, days=ns.days
    )
    print(f"trust-list signer serial {cert.serial_number:x} valid until "
          f"{cert.not_valid_after_utc:%Y-%m-%d}")  # fmt: skip


def _init_tsa(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    from keys import tsa

    cert = tsa.init_tsa(
        d, csca_passphrase=_csca_passphrase(), now=now, key_type=ns.key_type, days=ns.days
    )
    print(f"TSA {cert.subject.rfc4514_string()} serial {cert.serial_number:x} valid until "
          f"{cert.not_valid_after_utc:%Y-%m-%d}")  # fmt: skip


def _revoke_tsa(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    from keys import tsa

    cert = tsa.revoke_tsa(d, now=now, reason=ns.reason)
    print(f"TSA certificate {cert.serial_number:x} revoked at {now.isoformat()}; "
          "run issue-crl to publish it, then init-tsa for a new TSA")  # fmt: skip


def _tsa_serve(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    from keys import tsa

    authority = tsa.load_tsa(d, csca_passphrase=_csca_passphrase())
    if ns.now is not None:  # a fixed clock (tests, demos)

        def clock() -> dt.datetime:
            return now
    else:

        def clock() -> dt.datetime:
            return dt.datetime.now(dt.UTC)

    server = tsa.make_server(authority, host=ns.host, port=ns.port, clock=clock)
    host, port = server.server_address[:2]
    print(f"TSA listening on http://{host!s}:{port}/ (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _read_uvci_lists(paths: list[Path]) -> list[str]:
    """UVCIs of ``--revoked-uvcis`` files: one per line; blank lines and ``#`` comments skipped."""
    uvcis: list[str] = []
    for path in paths:
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(
                f"cannot read {path}: {getattr(err, 'strerror', None) or 'not ASCII text'}"
            ) from None
        uvcis += [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return uvcis


def _export_trust_list(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    res = pki.export_trust_list(
        d,
        ns.out,
        csca_passphrase=_csca_passphrase(),
        now=now,
        next_update_days=ns.next_update_days or None,
        extra_revoked_uvcis=_read_uvci_lists(ns.revoked_uvcis),
    )
    for w in res.warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    print(f"trust list seq {res.seq} written to {res.path}: {res.dscs} DSCs, "
          f"{res.revoked_dscs} revoked DSCs, {res.revoked_uvcis} revoked UVCIs, "
          f"{res.crls} CRLs")  # fmt: skip


def _sign_rules(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    from keys.rulesets import sign_rules

    res = sign_rules(
        d, ns.rules, ns.out, csca_passphrase=_csca_passphrase(), now=now, country=ns.country
    )
    where = f"{res.path}" + (f" and {ns.out}" if ns.out is not None else "")
    print(f"rule set seq {res.seq} ({res.country}, {res.rules} rules, {res.profiles} profiles) "
          f"written to {where}")  # fmt: skip


def _list_command(ns: argparse.Namespace, d: Path, now: dt.datetime) -> None:
    _list(d, as_json=ns.json)


COMMANDS: dict[str, Callable[[argparse.Namespace, Path, dt.datetime], None]] = {
    "init-csca": _init_csca,
    "issue-dsc": _issue_dsc,
    "revoke-dsc": _revoke_dsc,
    "revoke-uvci": _revoke_uvci,
    "issue-crl": _issue_crl,
    "init-tl-signer": _init_tl_signer,
    "init-tsa": _init_tsa,
    "revoke-tsa": _revoke_tsa,
    "tsa-serve": _tsa_serve,
    "export-trust-list": _export_trust_list,
    "sign-rules": _sign_rules,
    "list": _list_command,
}


def run(ns: argparse.Namespace) -> int:
    now = parse_time(ns.now)
    if ns.command != "init-csca":
        pki.load_index(ns.pki)  # a missing PKI is reported before any secret is asked for
    COMMANDS[ns.command](ns, ns.pki, now)
    return 0


def _list(d: Path, *, as_json: bool) -> None:
    index = pki.load_index(d)
    if as_json:
        print(json.dumps(index.to_json(), indent=2, ensure_ascii=False))
        return
    csca = pki.csca_certificate(d)
    print(f"CSCA  {csca.subject.rfc4514_string()}  until {csca.not_valid_after_utc:%Y-%m-%d}")
    for rec in index.dscs:
        state = f"REVOKED {rec.revoked_at}" if rec.revoked_at else "active"
        where = f"token:{rec.token.token_label}/{rec.token.key_label}" if rec.token else "file"
        print(f"DSC   {rec.serial[:16]}  kid {rec.kid}  {rec.alg}  {','.join(rec.types)}  "
              f"until {rec.not_after[:10]}  {where}  {state}  {rec.name}")  # fmt: skip
    for uvci, at in index.revoked_uvcis:
        print(f"UVCI  {uvci}  revoked {at}")
    if index.crls:
        crl = index.crls[-1]
        print(f"CRL   number {crl.number}  next update {crl.next_update}")
    print(f"trust list seq {index.trust_list_seq}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    ns = parser.parse_args(argv)
    try:
        return run(ns)
    except PassportError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(
            f"{PROG}: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "),
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # last line of defence: no traceback for the operator
        if os.environ.get("VNDCC_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(err).__name__} (set VNDCC_DEBUG=1 for details)",
              file=sys.stderr)  # fmt: skip
        return 2
