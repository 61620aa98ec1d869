"""Official EU DCC test vectors (tests/vectors/eu-dcc, see NOTE.md there).

One parametrised test walks every raw JSON file and agrees with each
EXPECTED* flag present (format: tests/vectors/eu-dcc/README.md), except the
few listed with a reason in tests/vectors/eu-dcc-exceptions.json, where it
asserts that we still disagree (a stale exception fails).

TESTCTX.CERTIFICATE is the DSC, trusted directly; TESTCTX.VALIDATIONCLOCK
is the clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import cbor2
import pytest

from verifier import codec
from verifier.errors import CodecError
from verifier.hc1 import verify_cose, verify_qr_text
from verifier.image import read_qr_text
from verifier.result import Verdict
from verifier.schema import schema_problems
from verifier.trust import DscEntry, TrustStore, parse_certificate

VECTORS = Path(os.environ.get("VNDCC_EU_VECTORS") or Path(__file__).resolve().parents[1] / "vectors" / "eu-dcc")
EXCEPTIONS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "eu-dcc-exceptions.json"
FILES = sorted(p.relative_to(VECTORS).as_posix() for p in VECTORS.glob("**/raw/*.json"))
#: Clock for vectors without VALIDATIONCLOCK (only the expiry check reads it).
DEFAULT_CLOCK = dt.datetime(2021, 6, 1, tzinfo=dt.UTC)


def _exceptions() -> dict[tuple[str, str], dict[str, Any]]:
    data = json.loads(EXCEPTIONS_FILE.read_text("utf-8"))
    return {(e["file"], e["flag"]): e for e in data["exceptions"]}


EXCEPTIONS = _exceptions()

#: Flags whose input is not in the data set: B1 expects its picture to decode
#: but has no 2DCODE field and no PNG; nothing to decode, so not evaluated.
NOT_EVALUABLE = {("common/2DCode/raw/B1.json", "EXPECTEDPICTUREDECODE")}
#: Flags whose input a whole folder leaves out: PT's vectors expect EXPECTEDENCODE but give no CBOR.
NOT_EVALUABLE_FOLDERS = {("PT", "EXPECTEDENCODE")}


def _clock(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _trust(ctx: dict[str, Any]) -> TrustStore:
    if not ctx.get("CERTIFICATE"):
        return TrustStore(by_kid={})
    info = parse_certificate(base64.b64decode(ctx["CERTIFICATE"]))
    return TrustStore(by_kid={info.kid: (DscEntry(info=info),)})


def _same_json(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a, sort_keys=True)) == json.loads(json.dumps(b, sort_keys=True))


class Vector:
    """Lazily computed outcomes of one vector, one per input field."""

    def __init__(self, name: str, raw: dict[str, Any]) -> None:
        self.name = name
        self.raw = raw
        self.ctx: dict[str, Any] = raw.get("TESTCTX", {})
        self.trust = _trust(self.ctx)
        clock = self.ctx.get("VALIDATIONCLOCK")
        self.now = _clock(clock) if clock else DEFAULT_CLOCK

    def from_prefix(self) -> Verdict:
        return verify_qr_text(self.raw["PREFIX"], self.trust, now=self.now)

    def from_cose(self) -> Verdict:
        if self.raw.get("COSE"):
            return verify_cose(bytes.fromhex(self.raw["COSE"]), self.trust, now=self.now)
        return self.from_prefix()

    # One function per EXPECTED* flag (README "Code Validation"/"Code Generation").
    def picture_decode(self) -> bool | None:
        """None when the vector ships no picture (no 2DCODE, no same-named PNG)."""
        if "2DCODE" in self.raw:
            image: bytes | Path = base64.b64decode(self.raw["2DCODE"])
        else:
            # Some countries keep the pictures in <country>/png under a similar name;
            # IE gives each vector as a QR and as an Aztec code (n_qr.png, n_aztec.png): all must decode.
            stem = Path(self.name).stem
            folder = VECTORS / self.name.split("/")[0] / "png"
            names = {stem, stem.removesuffix("_Raw"), stem.replace("_", "-", 1), f"{stem}_qr", f"{stem}_aztec"}
            found = [folder / f"{n}.png" for n in sorted(names) if (folder / f"{n}.png").is_file()]
            if not found:
                return None
            return all(read_qr_text(path).text == self.raw["PREFIX"] for path in found)
        return read_qr_text(image).text == self.raw["PREFIX"]

    def unprefix(self) -> bool:
        verdict = self.from_prefix()
        if verdict.checks["prefix"] is not True:
            return False
        return "BASE45" not in self.raw or self.raw["PREFIX"][4:] == self.raw["BASE45"]

    def b45decode(self) -> bool:
        if "BASE45" not in self.raw:
            return self.from_prefix().checks["base45"] is True
        try:
            data = codec.b45decode(self.raw["BASE45"])
        except CodecError:
            return False
        return "COMPRESSED" not in self.raw or data == bytes.fromhex(self.raw["COMPRESSED"])

    def compression(self) -> bool:
        if "COMPRESSED" not in self.raw:
            return self.from_prefix().checks["zlib"] is True
        try:
            data = codec.decompress(bytes.fromhex(self.raw["COMPRESSED"]))
        except CodecError:
            return False
        return "COSE" not in self.raw or data == bytes.fromhex(self.raw["COSE"])

    def decode(self) -> bool:
        verdict = self.from_cose()
        if verdict.checks["cwt"] is not True or verdict.payload is None:
            return False
        if "CBOR" not in self.raw:
            return True
        return _same_json(verdict.payload["hcert"], _cbor_json(self.raw["CBOR"]))

    def valid_json(self) -> bool:
        verdict = self.from_prefix()
        if verdict.checks["cwt"] is not True or verdict.payload is None:
            return False
        return "JSON" not in self.raw or _same_json(verdict.payload["hcert"], self.raw["JSON"])

    def verify(self) -> bool:
        return self.from_cose().checks["signature"] is True

    def expiration(self) -> bool:
        return self.from_cose().checks["expiry"] is True

    def key_usage(self) -> bool:
        return self.from_cose().checks["key_usage"] is True

    def schema(self) -> bool:
        if self.raw.get("COSE") or self.raw.get("PREFIX"):
            return self.from_cose().checks["schema"] is True
        return not schema_problems(self.raw["JSON"])

    def valid_object(self) -> bool:
        return not schema_problems(self.raw["JSON"])

    def encode(self) -> bool | None:
        """None when the vector has no CBOR or no JSON to compare (PT's EXPECTEDENCODE)."""
        if "CBOR" not in self.raw or "JSON" not in self.raw:
            return None
        return _same_json(_cbor_json(self.raw["CBOR"]), self.raw["JSON"])


def _cbor_json(hex_text: str) -> Any:
    from verifier.hc1 import _json_view

    obj = cbor2.loads(bytes.fromhex(hex_text))
    if isinstance(obj, dict) and -260 in obj:  # some vectors give the whole CWT claims
        obj = obj[-260][1]
    return _json_view(obj)


CHECKS = {
    "EXPECTEDPICTUREDECODE": Vector.picture_decode,
    "EXPECTEDUNPREFIX": Vector.unprefix,
    "EXPECTEDB45DECODE": Vector.b45decode,
    "EXPECTEDCOMPRESSION": Vector.compression,
    "EXPECTEDDECODE": Vector.decode,
    "EXPECTEDVALIDJSON": Vector.valid_json,
    "EXPECTEDVERIFY": Vector.verify,
    "EXPECTEDEXPIRATIONCHECK": Vector.expiration,
    "EXPECTEDKEYUSAGE": Vector.key_usage,
    "EXPECTEDSCHEMAVALIDATION": Vector.schema,
    "EXPECTEDVALIDOBJECT": Vector.valid_object,
    "EXPECTEDENCODE": Vector.encode,
}


#: Misspelt flags in upstream vectors (BG, ES, PT): "EXPTECTEDEXPIRED" stands where the
#: other vectors of the same folders have EXPECTEDEXPIRATIONCHECK, with the same meaning
#: (true: valid at VALIDATIONCLOCK). ES/1001-1003 nest a stray "EXPECTEDRESULTS": true.
ALIASES = {"EXPTECTEDEXPIRED": "EXPECTEDEXPIRATIONCHECK"}
IGNORED = {"EXPECTEDRESULTS"}


def test_vectors_are_present() -> None:
    assert len(FILES) >= 100
    assert (VECTORS / "LICENSE").is_file() and (VECTORS / "NOTICE").is_file()


def test_exceptions_name_real_vectors() -> None:
    for file, flag in EXCEPTIONS:
        raw = json.loads((VECTORS / file).read_text("utf-8-sig"))
        assert flag in raw["EXPECTEDRESULTS"], (file, flag)


@pytest.mark.parametrize("name", FILES)
def test_vector(name: str) -> None:
    raw = json.loads((VECTORS / name).read_text("utf-8-sig"))
    vector = Vector(name, raw)
    expected: dict[str, bool] = {ALIASES.get(k, k): v for k, v in raw["EXPECTEDRESULTS"].items() if k not in IGNORED}
    unknown = set(expected) - set(CHECKS)
    assert not unknown, f"unknown flags {unknown}"
    disagreements = []
    for flag, want in expected.items():
        got = CHECKS[flag](vector)
        if got is None:
            folder = (name.split("/")[0], flag)
            assert (name, flag) in NOT_EVALUABLE or folder in NOT_EVALUABLE_FOLDERS, f"{name} {flag}: input missing"
            continue
        exception = EXCEPTIONS.get((name, flag))
        if exception is not None:
            assert exception["expected"] == want and got == exception["ours"], (
                f"{name} {flag}: listed as an exception but we now agree; remove it"
            )
        elif got != want:
            disagreements.append(f"{flag}: expected {want}, got {got}")
    assert not disagreements, f"{name} ({raw['TESTCTX'].get('DESCRIPTION')}): {disagreements}"
