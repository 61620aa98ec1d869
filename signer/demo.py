"""``python -m signer demo``: the whole job on the embedded defaults, end to end.

    $ python -m signer demo --out demo-out

1. a fresh demo PKI (national CSCA, one health centre's DSC, CRL, signed trust list);
2. the example records checked against the example registry extract (SQLite
   index), with the reconciliation list for the commune police;
3. a synthetic export with injected errors checked the same way, to show
   the per-commune lists and the summary at scale;
4. the verified records signed into HC1 QR codes (text + PNG) and signed PDF
   passports;
5. every QR image and PDF verified offline by the standalone verifier, and a
   tampered QR and PDF shown to be rejected.

Each step runs the same command-line entry points a user would, and prints
the equivalent command. The PKI passphrases come from VNDCC_CSCA_PASSPHRASE
and VNDCC_KEY_PASSPHRASE when set; otherwise random ones are made for this
run only and never shown (the demo PKI is then single-use).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import secrets
import shlex
import shutil
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from verifier import codec
from verifier.errors import ConfigError

MARKER = ".vn-dcc-demo"
CENTRE = "Trung tâm Y tế Quận 1"
SYNTHETIC_RECORDS = 3000


def _examples() -> Path:
    """examples/ of the source tree (the demo's sample records and registry)."""
    root = Path(str(resources.files("signer"))).parent
    examples = root / "examples"
    if not (examples / "records.jsonl").is_file():
        raise ConfigError(f"example records not found in {examples} (run from a source checkout)")
    return examples


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the whole job on the embedded defaults (demo PKI, sample records, SQLite)",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), metavar="DIR",
                   help="output directory, replaced on each run (default: demo-out)")
    p.add_argument("--synthetic", type=int, default=SYNTHETIC_RECORDS, metavar="N",
                   help=f"synthetic records to check (default {SYNTHETIC_RECORDS}; 0 skips)")
    p.set_defaults(func=run_demo)


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block, restored after (secrets
    for child commands: the environment, never argv)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Steps:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.n = 0

    def title(self, text: str) -> None:
        self.n += 1
        print(f"\n== {self.n}. {text}", file=self.out)

    def run(self, prog: str, main: Callable[[Sequence[str]], int], argv: Sequence[str],
            *, expect: int = 0, quiet: bool = False) -> str:
        print(f"$ {prog} {shlex.join(argv)}", file=self.out)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main(list(argv))
        text = buf.getvalue()
        if not quiet and text.strip():
            print(text.rstrip(), file=self.out)
        if code != expect:
            raise ConfigError(f"demo step failed: {prog} {argv[0]} exited {code}, expected {expect}")
        return text


def run_demo(ns: argparse.Namespace, *, out: TextIO | None = None) -> int:
    from keys.cli import main as keys_main
    from keys.pki import load_index
    from signer.cli import main as signer_main
    from verifier.cli import main as verifier_main

    out = out or __import__("sys").stdout
    target: Path = ns.out
    if target.exists():
        if not (target / MARKER).exists():
            raise ConfigError(f"{target} exists and is not a demo output directory; choose another --out")
        shutil.rmtree(target)
    target.mkdir(parents=True)
    (target / MARKER).write_text("output of python -m signer demo; replaced on each run\n")
    examples = _examples()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    at = now.isoformat()
    pki, checks, signed = target / "pki", target / "checks", target / "passports"
    env = {
        name: os.environ.get(name) or secrets.token_urlsafe(24)
        for name in ("VNDCC_CSCA_PASSPHRASE", "VNDCC_KEY_PASSPHRASE")
    }
    env["VNDCC_VERIFIER_STATE"] = str(target / "verifier-state")
    s = _Steps(out)
    keys = "python -m keys"
    sign = "python -m signer"
    verify = "python -m verifier"
    with environment(env):
        s.title("Demo PKI: national CSCA, a health centre's DSC, TSA, CRL, signed trust list")
        s.run(keys, keys_main, ["init-csca", "--pki", str(pki), "--now", at, "--name", "Vietnam DCC CSCA (demo)"])
        s.run(keys, keys_main, ["issue-dsc", "--pki", str(pki), "--now", at, "--name", CENTRE])
        s.run(keys, keys_main, ["init-tl-signer", "--pki", str(pki), "--now", at])
        s.run(keys, keys_main, ["init-tsa", "--pki", str(pki), "--now", at])
        s.run(keys, keys_main, ["issue-crl", "--pki", str(pki), "--now", at])
        s.run(keys, keys_main, ["export-trust-list", "--pki", str(pki), "--now", at,
                                "--out", str(pki / "trustlist.cbor")])
        index = load_index(pki)
        dsc = index.dscs[-1]
        crl = pki / index.crls[-1].der
        trust = ["--trust", str(pki / "csca.pem"), "--trust", str(pki / "trustlist.cbor")]

        s.title("Check the example records against the registry extract (SQLite index)")
        s.run(sign, signer_main, ["check", str(examples / "records.jsonl"), "--registry",
                                  str(examples / "registry.csv"), "--out", str(checks), "--at", at])
        for f in sorted((checks / "reconciliation").rglob("*.csv")):
            print(f"reconciliation list for the commune police: {f}", file=out)

        if ns.synthetic > 0:
            synth = target / "synthetic"
            s.title(f"A synthetic export of {ns.synthetic} records with injected errors")
            s.run(sign, signer_main, ["synth", "--out", str(synth), "--records", str(ns.synthetic),
                                      "--seed", "5772"])
            s.run(sign, signer_main, ["check", str(synth / "records.jsonl"), "--registry",
                                      str(synth / "registry.csv"), "--out", str(synth / "checks"),
                                      "--at", at, "--formats", "csv,xlsx"], quiet=True)
            summary = json.loads((synth / "checks" / "summary.json").read_text("utf-8"))
            lists = sorted((synth / "checks" / "reconciliation").rglob("*.xlsx"))
            print(f"summary: {synth / 'checks' / 'summary.json'}; "
                  f"{len(lists)} per-commune reconciliation workbooks", file=out)
            print(_summary_line(summary), file=out)

        s.title("The signer refuses records that did not pass the checks")
        refused = target / "refused"
        s.run(sign, signer_main, [
            "sign", str(examples / "records.jsonl"), "--out", str(refused), "--at", at,
            "--key", str(pki / str(dsc.key_file)), "--cert", str(pki / dsc.cert),
        ], expect=1)
        print("  (every record of the raw export refused: not verified; nothing signed)", file=out)

        s.title("Sign the verified records: HC1 text + QR PNG + signed PDF passport (PAdES B-LT)")
        with _tsa_server(pki, now) as tsa_url:
            print(f"(the national TSA answers RFC 3161 requests at {tsa_url}: "
                  f"{keys} tsa-serve --pki {pki} --port ...)", file=out)
            s.run(sign, signer_main, [
                "sign", str(checks / "verified.jsonl"), "--out", str(signed), "--at", at,
                "--key", str(pki / str(dsc.key_file)), "--cert", str(pki / dsc.cert),
                "--chain", str(pki / "csca.pem"),
                "--pdf", "--centre", CENTRE, "--crl", str(crl), "--tsa-url", tsa_url,
            ])

        s.title("Verify offline, as a checkpoint would (QR images and PDFs)")
        results = _verify_all(s, verify, verifier_main, trust, signed, at)
        s.title("Tampered inputs are rejected")
        _tamper(s, verify, verifier_main, trust, signed, target, at)
    print(f"\nDemo done: {results} passports verified. Outputs in {target}/", file=out)
    if os.environ.get("VNDCC_CSCA_PASSPHRASE") is None:
        print("(The demo PKI's passphrases were random and are gone: set VNDCC_CSCA_PASSPHRASE and "
              "VNDCC_KEY_PASSPHRASE before the demo to keep using its keys.)", file=out)
    return 0


@contextlib.contextmanager
def _tsa_server(pki: Path, now: dt.datetime) -> Iterator[str]:
    """The PKI's RFC 3161 TSA on a free loopback port, for the signing step only."""
    import threading

    from keys import tsa

    authority = tsa.load_tsa(pki, csca_passphrase=os.environ["VNDCC_CSCA_PASSPHRASE"].encode())
    server = tsa.make_server(authority, host="127.0.0.1", port=0, clock=lambda: now)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()


def _summary_line(summary: dict[str, Any]) -> str:
    return "totals: " + json.dumps(summary.get("totals", {}), ensure_ascii=False)


def _verify_all(s: _Steps, prog: str, main: Callable[[Sequence[str]], int], trust: list[str],
                signed: Path, at: str) -> int:
    manifest = [json.loads(line) for line in (signed / "manifest.jsonl").read_text("utf-8").splitlines()]
    for entry in manifest:
        rid = entry["record_id"]
        text = s.run(prog, main, ["qr", *trust, "--at", at, "--json", "--image", str(signed / f"{rid}.png")],
                     quiet=True)
        verdict = json.loads(text)
        print(f"  {rid}.png: {'valid' if verdict['valid'] else 'INVALID'} ({verdict['payload']['hcert']['v'][0]['ci']})",
              file=s.out)
        text = s.run(prog, main, ["pdf", *trust, "--at", at, "--json", str(signed / f"{rid}.pdf")], quiet=True)
        pdf = json.loads(text)
        level = (pdf.get("signer") or {}).get("pades_level")
        print(f"  {rid}.pdf: {'valid' if pdf['valid'] else 'INVALID'} (PAdES {level})", file=s.out)
    return len(manifest)


def _tamper(s: _Steps, prog: str, main: Callable[[Sequence[str]], int], trust: list[str],
            signed: Path, target: Path, at: str) -> None:
    first = sorted(signed.glob("*.hc1.txt"))[0]
    sign1 = codec.decode_sign1(codec.from_qr_text(first.read_text("ascii").strip()))
    claims = codec.decode_cwt(sign1.payload)
    forged = dict(claims.dcc, dob="1950-01-01")  # a forger edits the date of birth
    payload = codec.encode_cwt(iss=str(claims.iss), issued_at=int(claims.iat or 0),
                               expires_at=int(claims.exp or 0), dcc=forged)
    bad_qr = target / "tampered.hc1.txt"
    bad_qr.write_text(codec.to_qr_text(
        codec.encode_sign1(sign1.protected_bytes, payload, sign1.signature)), "ascii")
    out = s.run(prog, main, ["qr", *trust, "--at", at, "--json", "--qr-file", str(bad_qr)], expect=1, quiet=True)
    print(f"  QR with an edited date of birth: invalid, failed at {json.loads(out)['stage_failed']}",
          file=s.out)
    pdf = sorted(signed.glob("*.pdf"))[0]
    data = bytearray(pdf.read_bytes())
    pos = data.find(b"/Title")
    data[pos + 8] ^= 0x01  # one byte inside the signed range
    bad_pdf = target / "tampered.pdf"
    bad_pdf.write_bytes(bytes(data))
    out = s.run(prog, main, ["pdf", *trust, "--at", at, "--json", str(bad_pdf)], expect=1, quiet=True)
    print(f"  tampered PDF: invalid, failed checks: "
          f"{sorted(k for k, v in json.loads(out)['checks'].items() if v is False)}", file=s.out)
