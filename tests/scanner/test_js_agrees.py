"""The browser verifier (scanner/src/verify, run by scripts/verify-js under Node) agrees with
the Python verifier stage by stage (issue 11): exit code, valid, stage_failed, the checks and
the reason codes, never message text; and the payload it shows.

Both command lines get the same arguments: ``--trust FILE... --json --at ISO --qr-file FILE``.
The Python side runs ``verifier.cli.main`` in this process (the code of ``python -m verifier
qr`` without its start-up cost); the JavaScript side is ``scripts/verify-js``. Each
implementation gets its own empty state directory (trust-list rollback counters).

Cases: the official EU vectors (tests/vectors/eu-dcc, TESTCTX.CERTIFICATE as the trusted DSC,
VALIDATIONCLOCK as the clock), the strict and trust-strict vectors (also held to their
expected.json), and our own signed certificates with a tamper set (factory.py: byte flips in
the COSE and in the base45 text, times, algorithms, kids, EKUs, schema) and trust lists
(revoked DSC and UVCI, a DSC of a foreign CSCA, expired DSC, rollback, stale list).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime as dt
import io
import json
import os
import random
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from keys.base import kid_of
from keys.certs import make_csca, make_dsc, make_trust_list_signer, new_private_key
from keys.software import SoftwareKey
from keys.trustlist import build_trust_list
from tests.fixtures.pki import NOW, TestPki
from tests.verifier import factory
from verifier import cli, codec

ROOT = Path(__file__).resolve().parents[2]
VERIFY_JS = ROOT / "scripts" / "verify-js"
VECTORS = ROOT / "tests" / "vectors"
EU = VECTORS / "eu-dcc"
AT = "2026-06-01T12:00:00Z"
EU_DEFAULT_CLOCK = "2021-06-01T00:00:00Z"



@dataclass(frozen=True)
class Case:
    name: str
    folder: Path
    trust: tuple[str, ...]  # file names in folder
    at: str
    qr_file: str = "qr.txt"
    expected: dict[str, Any] | None = None
    extra: tuple[str, ...] = ()  # more options (--rules ...)


@dataclass(frozen=True)
class Outcome:
    exit: int
    verdict: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        v = self.verdict
        if v is None:
            return {"exit": self.exit}
        return {
            "exit": self.exit,
            "valid": v["valid"],
            "stage_failed": v["stage_failed"],
            "checks": v["checks"],
            "reasons": [(e["stage"], e["reason"]) for e in v["errors"]],
            "rules": [(r["rule"], r["result"]) for r in v.get("rules") or []],
        }


def _args(case: Case) -> list[str]:
    args = ["qr"]
    for name in case.trust:
        args += ["--trust", str(case.folder / name)]
    return [
        *args,
        *case.extra,
        "--json",
        "--at",
        case.at,
        "--qr-file",
        str(case.folder / case.qr_file),
    ]


def _parse(stdout: str) -> dict[str, Any] | None:
    text = stdout.strip()
    return json.loads(text) if text else None


def run_python(case: Case, state: Path) -> Outcome:
    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("VNDCC_VERIFIER_STATE")
    os.environ["VNDCC_VERIFIER_STATE"] = str(state)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(_args(case))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    finally:
        if old is None:
            del os.environ["VNDCC_VERIFIER_STATE"]
        else:
            os.environ["VNDCC_VERIFIER_STATE"] = old
    return Outcome(code, _parse(out.getvalue()))


def run_js(case: Case, state: Path) -> Outcome:
    env = {**os.environ, "VNDCC_VERIFIER_STATE": str(state)}
    proc = subprocess.run(
        [str(VERIFY_JS), *_args(case)], capture_output=True, text=True, env=env, timeout=60
    )
    if proc.returncode == 2 and proc.stdout.strip() == "":
        assert proc.stderr.count("\n") == 1, proc.stderr  # one line, no stack trace
    return Outcome(proc.returncode, _parse(proc.stdout))


def _same_payload(py: Outcome, js: Outcome) -> bool:
    a = py.verdict and py.verdict["payload"]
    b = js.verdict and js.verdict["payload"]
    return json.loads(json.dumps(a)) == json.loads(json.dumps(b))


def compare(cases: list[Case], tmp_path: Path) -> list[str]:
    """Disagreements (one line each) over ``cases``; JS runs two at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        js = list(pool.map(lambda c: run_js(c[1], tmp_path / f"js-{c[0]}"), enumerate(cases)))
    problems = []
    for i, (case, js_out) in enumerate(zip(cases, js, strict=True)):
        py_out = run_python(case, tmp_path / f"py-{i}")
        if py_out.summary() != js_out.summary():
            problems.append(f"{case.name}: python {py_out.summary()} != js {js_out.summary()}")
        elif not _same_payload(py_out, js_out):
            problems.append(f"{case.name}: payloads differ")
        if case.expected is not None:
            want = case.expected
            got = js_out.summary()
            if got["exit"] != want["exit"] or (
                js_out.verdict is not None
                and (
                    got["valid"] != want["valid"]
                    or got["stage_failed"] != want["stage_failed"]
                    or [r for _, r in got["reasons"]] != want["reasons"]
                )
            ):
                problems.append(f"{case.name}: js {got} != expected.json {want}")
    return problems


# --------------------------------------------------------------------------
# the official EU vectors


def _eu_cases(tmp_path: Path) -> list[Case]:
    cases = []
    for i, path in enumerate(sorted(EU.glob("**/raw/*.json"))):
        raw = json.loads(path.read_text("utf-8-sig"))
        ctx = raw.get("TESTCTX", {})
        if not raw.get("PREFIX") or not ctx.get("CERTIFICATE"):
            continue
        folder = tmp_path / f"eu-{i}"
        folder.mkdir()
        (folder / "qr.txt").write_text(raw["PREFIX"], "utf-8")
        (folder / "dsc.b64").write_text(ctx["CERTIFICATE"], "ascii")
        clock = ctx.get("VALIDATIONCLOCK") or EU_DEFAULT_CLOCK
        cases.append(Case(path.relative_to(EU).as_posix(), folder, ("dsc.b64",), clock))
    return cases


def test_eu_vectors_agree(tmp_path: Path) -> None:
    cases = _eu_cases(tmp_path)
    assert len(cases) >= 100
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)


# --------------------------------------------------------------------------
# strict and trust-strict vectors (each also held to its expected.json)


def _folder_cases(root: Path) -> list[Case]:
    cases = []
    for exp in sorted(root.glob("*/expected.json")):
        want = json.loads(exp.read_text("utf-8"))
        expected = {
            "exit": want["exit"],
            "valid": want.get("valid"),
            "stage_failed": want.get("stage_failed"),
            "reasons": want.get("reasons", []),
        }
        cases.append(
            Case(
                f"{root.name}/{exp.parent.name}",
                exp.parent,
                tuple(want["trust"]),
                want.get("at", AT),
                expected=expected,
            )
        )
    return cases


@pytest.mark.parametrize("folder", ["strict", "trust-strict"])
def test_strict_vectors_agree(folder: str, tmp_path: Path) -> None:
    cases = _folder_cases(VECTORS / folder)
    assert len(cases) >= 20
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)


# --------------------------------------------------------------------------
# our own signed certificates and a tamper set


def _pem(*certs: Any) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certs)


def _flip_cose(cose: bytes, pos: int) -> str:
    data = bytearray(cose)
    data[pos] ^= 0x01 if pos % 2 else 0x80
    return "HC1:" + codec.b45encode(zlib.compress(bytes(data)))


def _own_qrs(pki: TestPki) -> dict[str, str]:
    now = NOW
    ec, rsa, test_only = pki.dsc_ec, pki.dsc_rsa, pki.dsc_test_only
    qrs: dict[str, str] = {
        "valid-es256": factory.make_hc1(ec, now=now),
        "valid-ps256": factory.make_hc1(rsa, now=now),
        "valid-test-dcc": factory.make_hc1(test_only, now=now, payload=factory.TEST_DCC),
        "wrong-type": factory.make_hc1(test_only, now=now),
        "expired": factory.make_hc1(ec, now=now, exp=now.timestamp() - 1),
        "expired-bound": factory.make_hc1(ec, now=now, exp=now.timestamp()),
        "not-yet-valid": factory.make_hc1(ec, now=now, iat=now.timestamp() + 1),
        "iat-bound": factory.make_hc1(ec, now=now, iat=now.timestamp()),
        "float-times": factory.make_hc1(
            ec, now=now, iat=now.timestamp() - 0.5, exp=now.timestamp() + 0.5
        ),
        "kid-unprotected": factory.make_hc1(
            ec, now=now, kid_protected=None, kid_unprotected=kid_of(ec)
        ),
        "kid-missing": factory.make_hc1(ec, now=now, kid_protected=None),
        "kid-unknown": factory.make_hc1(ec, now=now, kid_protected=b"\x01" * 8),
        "alg-es384": factory.make_hc1(ec, now=now, alg=-35),
        "alg-ps256-on-ec": factory.make_hc1(ec, now=now, alg=-37),
        "alg-es256-on-rsa": factory.make_hc1(rsa, now=now, alg=-7),
        "untagged": factory.make_hc1(ec, now=now, tag=None),
        "tag-61": factory.make_hc1(ec, now=now, tag=61),
        "schema-dob": factory.make_hc1(ec, now=now, payload=factory.dcc(dob="01.02.1990")),
        "schema-no-group": factory.make_hc1(
            ec, now=now, payload={k: v for k, v in factory.DCC.items() if k != "v"}
        ),
        "no-hcert": factory.hc1(factory.make_cose(ec, now=now, claims={1: "VN", 4: 2, 6: 1})),
        "no-exp": factory.hc1(
            factory.make_cose(ec, now=now, claims={1: "VN", 6: 1, -260: {1: factory.DCC}})
        ),
        "iss-int": factory.hc1(
            factory.make_cose(ec, now=now, claims={1: 5, 4: 2**40, 6: 1, -260: {1: factory.DCC}})
        ),
        "not-cose": factory.raw_hc1(b"\xa0"),
        "not-zlib": "HC1:" + codec.b45encode(b"not zlib at all"),
        "zlib-bomb": "HC1:" + codec.b45encode(zlib.compress(b"\0" * 200_000)),
        "bad-base45": "HC1:AB",
        "lowercase": factory.make_hc1(ec, now=now).lower().replace("hc1:", "HC1:"),
        "no-prefix": factory.make_hc1(ec, now=now)[4:],
        "too-long": "HC1:" + "0" * 9000,
    }
    cose = factory.make_cose(ec, now=now)
    for pos in range(0, len(cose), max(1, len(cose) // 40)):
        qrs[f"flip-cose-{pos}"] = _flip_cose(cose, pos)
    rsa_cose = factory.make_cose(rsa, now=now)
    for pos in range(len(rsa_cose) - 256, len(rsa_cose), 37):
        qrs[f"flip-rsa-sig-{pos}"] = _flip_cose(rsa_cose, pos)
    text = factory.make_hc1(ec, now=now)
    for pos in range(4, len(text), max(1, len(text) // 15)):
        char = "0" if text[pos] != "0" else "1"
        qrs[f"flip-text-{pos}"] = text[:pos] + char + text[pos + 1 :]
    return qrs


def test_own_certificates_agree(test_pki: TestPki, tmp_path: Path) -> None:
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "dscs.pem").write_bytes(
        _pem(
            test_pki.dsc_ec.certificate,
            test_pki.dsc_rsa.certificate,
            test_pki.dsc_test_only.certificate,
        )
    )
    cases = []
    for name, qr in _own_qrs(test_pki).items():
        (folder / f"{name}.txt").write_text(qr, "utf-8")
        cases.append(Case(name, folder, ("dscs.pem",), AT, qr_file=f"{name}.txt"))
    assert len(cases) >= 60
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)


# --------------------------------------------------------------------------
# signed trust lists


def _trust_list_cases(tmp_path: Path) -> list[Case]:
    now = NOW
    ca_key = new_private_key("ec-p256")
    csca = make_csca(ca_key, country="VN", name="JS CSCA", now=now - dt.timedelta(days=400))
    other_key = new_private_key("ec-p256")
    other = make_csca(
        other_key, country="XX", name="Foreign CSCA", now=now - dt.timedelta(days=400)
    )

    def dsc(
        name: str,
        *,
        issuer: Any = csca,
        key_of_issuer: Any = ca_key,
        days_ago: int = 30,
        days: int = 730,
        key_type: str = "ec-p256",
    ) -> SoftwareKey:
        k = new_private_key(key_type)
        cert = make_dsc(
            issuer,
            key_of_issuer,
            k.public_key(),
            name=name,
            now=now - dt.timedelta(days=days_ago),
            days=days,
        )
        return SoftwareKey(private_key=k, certificate=cert, chain=(issuer,))

    good, rsa, revoked, foreign, old = (
        dsc("good"),
        dsc("rsa", key_type="rsa-2048"),
        dsc("revoked"),
        dsc("foreign", issuer=other, key_of_issuer=other_key),
        dsc("old", days_ago=800, days=365),
    )
    tl_key = new_private_key("ec-p256")
    tl_cert = make_trust_list_signer(
        csca, ca_key, tl_key.public_key(), now=now - dt.timedelta(days=10)
    )
    signer = SoftwareKey(private_key=tl_key, certificate=tl_cert, chain=(csca,))
    revoked_ci = "URN:UVCI:01:VN:REVOKED0001#X"

    def tl(seq: int, **kw: Any) -> bytes:
        args: dict[str, Any] = {
            "signer": signer,
            "cscas": [csca],
            "dscs": [c.certificate for c in (good, rsa, revoked, foreign, old)],
            "revoked_dscs": [(revoked.certificate, now - dt.timedelta(days=1))],
            "revoked_uvcis": [revoked_ci],
            "crls": [],
            "seq": seq,
            "now": now - dt.timedelta(hours=1),
            "country": "VN",
            "next_update": now + dt.timedelta(days=7),
        }
        args.update(kw)
        return build_trust_list(**args)

    folder = tmp_path / "lists"
    folder.mkdir()
    (folder / "csca.pem").write_bytes(_pem(csca))
    (folder / "other-csca.pem").write_bytes(_pem(other))
    (folder / "good.pem").write_bytes(_pem(good.certificate))
    (folder / "revoked.pem").write_bytes(_pem(revoked.certificate))
    (folder / "tl5.cbor").write_bytes(tl(5))
    (folder / "tl4.cbor").write_bytes(tl(4))
    (folder / "stale.cbor").write_bytes(tl(6, next_update=now - dt.timedelta(seconds=1)))
    tampered = bytearray(tl(7))
    tampered[-70] ^= 1  # inside the signature
    (folder / "tampered.cbor").write_bytes(bytes(tampered))
    qrs = {
        "good": factory.make_hc1(good, now=now),
        "rsa": factory.make_hc1(rsa, now=now),
        "revoked-dsc": factory.make_hc1(revoked, now=now),
        "foreign": factory.make_hc1(foreign, now=now),
        "old-dsc": factory.make_hc1(old, now=now),
        "revoked-uvci": factory.make_hc1(
            good,
            now=now,
            payload=factory.dcc(v=[{**factory.DCC["v"][0], "ci": revoked_ci}]),
        ),
    }
    qrs["signed-by-tl-signer"] = factory.make_hc1(signer, now=now)
    (folder / "tl-signer.pem").write_bytes(_pem(tl_cert))
    for name, qr in qrs.items():
        (folder / f"{name}.txt").write_text(qr, "utf-8")
    list_trust = ("tl5.cbor", "csca.pem")
    cases = [Case(f"list/{n}", folder, list_trust, AT, qr_file=f"{n}.txt") for n in qrs]
    cases += [
        Case(
            "list/both-orders", folder, ("tl4.cbor", "tl5.cbor", "csca.pem"), AT, qr_file="good.txt"
        ),
        Case("list/no-anchor", folder, ("tl5.cbor",), AT, qr_file="good.txt"),
        Case("list/wrong-anchor", folder, ("tl5.cbor", "other-csca.pem"), AT, qr_file="good.txt"),
        Case("list/stale", folder, ("stale.cbor", "csca.pem"), AT, qr_file="good.txt"),
        Case("list/bad-signature", folder, ("tampered.cbor", "csca.pem"), AT, qr_file="good.txt"),
        Case(
            "list/revoked-dsc-as-file",
            folder,
            ("tl5.cbor", "csca.pem", "revoked.pem"),
            AT,
            qr_file="revoked-dsc.txt",
        ),
        Case(
            "list/anchor-expired-clock",
            folder,
            list_trust,
            "2045-01-01T00:00:00Z",
            qr_file="good.txt",
        ),
        Case("file/good", folder, ("good.pem",), AT, qr_file="good.txt"),
        Case("file/csca-only", folder, ("csca.pem",), AT, qr_file="good.txt"),
        Case("file/tl-signer", folder, ("tl-signer.pem",), AT, qr_file="signed-by-tl-signer.txt"),
    ]
    return cases


def test_trust_lists_agree(tmp_path: Path) -> None:
    cases = _trust_list_cases(tmp_path)
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)


def test_rollback_agrees(tmp_path: Path) -> None:
    """A list older than one accepted before is refused by both (state kept between runs)."""
    cases = _trust_list_cases(tmp_path)
    newer = next(c for c in cases if c.name == "list/good")
    older = Case("list/older", newer.folder, ("tl4.cbor", "csca.pem"), AT, qr_file="good.txt")
    for run, who in ((run_python, "py"), (run_js, "js")):
        state = tmp_path / f"state-{who}"
        assert run(newer, state).exit == 0
        assert run(older, state).exit == 2
    # the two share the state format: a list Python accepted makes JS refuse the older one
    shared = tmp_path / "state-shared"
    assert run_python(newer, shared).exit == 0
    assert run_js(older, shared).exit == 2


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    qr = tmp_path / "qr.txt"
    qr.write_text("HC1:", "utf-8")
    for args in (
        ["qr", "--json", "--qr-file", str(qr)],  # no --trust
        ["qr", "--trust", str(qr), "--json"],  # no QR
        ["qr", "--trust", str(qr), "--at", "yesterday", "--qr-file", str(qr)],
        ["qr", "--trust", str(tmp_path / "missing.pem"), "--qr-file", str(qr)],
        ["nonsense"],
    ):
        proc = subprocess.run([str(VERIFY_JS), *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert proc.stdout == "" and proc.stderr.count("\n") == 1, (args, proc.stderr)


def test_base64_der_trust_file(tmp_path: Path, test_pki: TestPki) -> None:
    """TESTCTX-style trust files (bare base64 DER) load in both."""
    der = test_pki.dsc_ec.certificate.public_bytes(Encoding.DER)
    (tmp_path / "dsc.b64").write_text(base64.b64encode(der).decode(), "ascii")
    (tmp_path / "qr.txt").write_text(factory.make_hc1(test_pki.dsc_ec, now=NOW), "utf-8")
    case = Case("b64", tmp_path, ("dsc.b64",), AT)
    assert run_js(case, tmp_path / "s1").summary() == run_python(case, tmp_path / "s2").summary()
    assert run_js(case, tmp_path / "s3").exit == 0


# --------------------------------------------------------------------------
# business rules: --rules / --country / --profile (verify-js with certlogic-js)

RULES = str(ROOT / "verifier" / "data" / "rules")


def test_rules_option_agrees(test_pki: TestPki, tmp_path: Path) -> None:
    """The VN profiles on vaccinations of several ages and doses, a test, other countries."""
    ec, test_only = test_pki.dsc_ec, test_pki.dsc_test_only
    v0 = factory.DCC["v"][0]
    qrs = {
        "dose-2-old": factory.make_hc1(ec, now=NOW),
        "dose-2-7-days": factory.make_hc1(
            ec, now=NOW, payload=factory.dcc(v=[{**v0, "dt": "2026-05-25"}])
        ),
        "dose-2-14-days": factory.make_hc1(
            ec, now=NOW, payload=factory.dcc(v=[{**v0, "dt": "2026-05-18"}])
        ),
        "dose-1-of-2": factory.make_hc1(ec, now=NOW, payload=factory.dcc(v=[{**v0, "dn": 1}])),
        "booster-3": factory.make_hc1(
            ec, now=NOW, payload=factory.dcc(v=[{**v0, "dn": 3, "sd": 3}])
        ),
        "unknown-product": factory.make_hc1(
            ec, now=NOW, payload=factory.dcc(v=[{**v0, "mp": "XX/1"}])
        ),
        "test": factory.make_hc1(test_only, now=NOW, payload=factory.TEST_DCC),
        "expired": factory.make_hc1(ec, now=NOW, exp=NOW.timestamp() - 10),
        "broken": "HC1:NOTBASE45!",
    }
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "dscs.pem").write_bytes(_pem(ec.certificate, test_only.certificate))
    bundle = folder / "bundle.json"
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "verifier",
            "rules",
            "bundle",
            RULES,
            "-o",
            str(bundle),
        ],
        check=True,
        capture_output=True,
    )
    cases = []
    for name, qr in qrs.items():
        (folder / f"{name}.txt").write_text(qr, "utf-8")
        for options in (
            ("--rules", RULES),
            ("--rules", RULES, "--profile", "booster"),
            ("--rules", RULES, "--profile", "all"),
            ("--rules", str(bundle), "--country", "vn"),
            ("--rules", RULES, "--country", "DE"),
        ):
            label = " ".join(o.replace(RULES, "RULES") for o in options)
            cases.append(
                Case(
                    f"{name} {label}",
                    folder,
                    ("dscs.pem",),
                    AT,
                    qr_file=f"{name}.txt",
                    extra=options,
                )
            )
    cases.append(
        Case(
            "unknown profile",
            folder,
            ("dscs.pem",),
            AT,
            qr_file="test.txt",
            extra=("--rules", RULES, "--profile", "nope"),
        )
    )
    cases.append(
        Case(
            "no rules there",
            folder,
            ("dscs.pem",),
            AT,
            qr_file="test.txt",
            extra=("--rules", str(folder / "missing")),
        )
    )
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)
    outcomes = {
        run_js(c, tmp_path / "o").summary().get("checks", {}).get("rules") for c in cases[:10]
    }
    assert outcomes == {True, False}  # the set is not trivially all-pass or all-fail


# --------------------------------------------------------------------------
# random mutations (seeded): byte changes, insertions and deletions in signed COSE_Sign1s


def test_random_mutations_agree(test_pki: TestPki, tmp_path: Path) -> None:
    """SCANNER_FUZZ_CASES (default 60) mutated COSEs; SCANNER_FUZZ_SEED picks the run. Runs of
    1,800 (seeds 1-6, 300 each) found two disagreements, both in the JavaScript side and fixed:
    a two-byte simple value below 32 (cbor2 refuses it), and the payload view of a simple value
    and of tag contents (Python prints them with str())."""
    rng = random.Random(int(os.environ.get("SCANNER_FUZZ_SEED", "11")))
    count = int(os.environ.get("SCANNER_FUZZ_CASES", "60"))
    bases = [
        factory.make_cose(test_pki.dsc_ec, now=NOW),
        factory.make_cose(test_pki.dsc_rsa, now=NOW),
        factory.make_cose(test_pki.dsc_ec, now=NOW, tag=None),
    ]
    folder = tmp_path / "fuzz"
    folder.mkdir()
    (folder / "dscs.pem").write_bytes(
        _pem(test_pki.dsc_ec.certificate, test_pki.dsc_rsa.certificate)
    )
    cases = []
    for i in range(count):
        data = bytearray(rng.choice(bases))
        for _ in range(rng.choice((1, 1, 2, 3))):
            op, pos = rng.random(), rng.randrange(len(data))
            if op < 0.5:
                data[pos] = rng.randrange(256)
            elif op < 0.75:
                data.insert(pos, rng.randrange(256))
            else:
                del data[pos]
        (folder / f"{i}.txt").write_text(
            "HC1:" + codec.b45encode(zlib.compress(bytes(data))), "utf-8"
        )
        cases.append(Case(f"fuzz-{i}", folder, ("dscs.pem",), AT, qr_file=f"{i}.txt"))
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kinds: list[Any] = [
        lambda: rng.randrange(-5, 5),
        lambda: rng.choice([0.5, 2.0, -1.0, 1e300, float("nan")]),
        lambda: rng.choice(
            ["", "x", "2021-13-01", "1990", "1990-01-02", "EU/1/20/1528", "é", "VN"]
        ),
        lambda: rng.choice([True, False, None]),
        lambda: b"\x01\x02",
        lambda: [] if depth > 1 else [_random_value(rng, depth + 1)],
        lambda: {} if depth > 1 else {rng.choice(["k", 5]): _random_value(rng, depth + 1)},
        lambda: 2**63,
    ]
    return rng.choice(kinds)()


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _mutated_dcc(rng: random.Random, dcc: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dcc)
    for _ in range(rng.choice((1, 1, 2))):
        path = rng.choice([p for p in _paths(out) if p])
        parent: Any = out
        for k in path[:-1]:
            parent = parent[k]
        op = rng.random()
        if op < 0.6:
            parent[path[-1]] = _random_value(rng)
        elif op < 0.8 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "ver", "dob", "v", "t", "r"])] = _random_value(rng)
    return out


def test_signed_payload_mutations_agree(test_pki: TestPki, tmp_path: Path) -> None:
    """Correctly signed certificates with mutated contents: random bytes in the CWT claims
    (strict CBOR), and random values, types, deletions and extra fields in the DCC (schema,
    key usage). SCANNER_FUZZ_CASES per kind (default 60). Runs of 1,200 DCC mutations found
    one disagreement, in the JavaScript side and fixed: jsonschema-rs converts a value only
    where a keyword reaches it, so a byte string or tag as an extra property passes the
    schema in Python (verifier/schema.py says non-JSON values are refused: only where looked
    at); NaN is null to it."""
    rng = random.Random(int(os.environ.get("SCANNER_FUZZ_SEED", "11")))
    count = int(os.environ.get("SCANNER_FUZZ_CASES", "60"))
    ec, test_only = test_pki.dsc_ec, test_pki.dsc_test_only
    folder = tmp_path / "signed-fuzz"
    folder.mkdir()
    (folder / "dscs.pem").write_bytes(_pem(ec.certificate, test_only.certificate))
    claims = cbor2.dumps(
        {
            1: "VN",
            6: int(NOW.timestamp()) - 3600,
            4: int(NOW.timestamp()) + 86400,
            -260: {1: factory.DCC},
        }
    )
    protected = cbor2.dumps({1: -7, 4: kid_of(ec)})
    cases = []
    for i in range(count):
        data = bytearray(claims)
        for _ in range(rng.choice((1, 1, 2, 3))):
            op, pos = rng.random(), rng.randrange(len(data))
            if op < 0.5:
                data[pos] = rng.randrange(256)
            elif op < 0.75:
                data.insert(pos, rng.randrange(256))
            else:
                del data[pos]
        body = bytes(data)
        signature = ec.sign(codec.sig_structure(protected, body))
        cose = cbor2.dumps(cbor2.CBORTag(18, [protected, {}, body, signature]))
        (folder / f"c{i}.txt").write_text(codec.to_qr_text(cose), "utf-8")
        cases.append(Case(f"claims-fuzz-{i}", folder, ("dscs.pem",), AT, qr_file=f"c{i}.txt"))
        base, key = rng.choice(((factory.DCC, ec), (factory.TEST_DCC, test_only)))
        qr = factory.make_hc1(key, now=NOW, payload=_mutated_dcc(rng, base))
        (folder / f"d{i}.txt").write_text(qr, "utf-8")
        cases.append(Case(f"dcc-fuzz-{i}", folder, ("dscs.pem",), AT, qr_file=f"d{i}.txt"))
    problems = compare(cases, tmp_path)
    assert not problems, f"{len(problems)}/{len(cases)} disagree:\n" + "\n".join(problems)
