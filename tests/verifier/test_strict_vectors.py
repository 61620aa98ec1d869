"""tests/vectors/strict (issue 8, points 4 and 5): every folder through
verify_qr_text and ``python -m verifier qr --qr-file``, with both CBOR
decoders (cbor2's own options, and the Python scan used with cbor2 5).

make_vectors.py is re-run (fresh keys) and its folders must give the same
results; see tests/vectors/strict/README.md for how each vector was made.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.verifier.cli_run import load_script, run_cli
from verifier import codec, strict_cbor
from verifier.hc1 import qr_text_from_file, verify_qr_text
from verifier.human import render
from verifier.result import Reason
from verifier.trust import load_trust

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "strict"
NAMES = sorted(p.parent.name for p in VECTORS.glob("*/expected.json"))


@pytest.fixture(params=["native", "python-scan"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Both decoding paths of verifier.strict_cbor (the native one needs cbor2 >= 6.1)."""
    if request.param == "native":
        if not strict_cbor.NATIVE:
            pytest.skip("cbor2 has no allow_duplicate_keys / semantic_decoders (cbor2 < 6.1)")
    else:
        monkeypatch.setattr(strict_cbor, "NATIVE", False)
    codec._protected_header.cache_clear()  # decoded by this path, not found in the cache
    yield request.param
    codec._protected_header.cache_clear()


def _load_generator() -> types.ModuleType:
    return load_script(VECTORS / "make_vectors.py", "strict_vectors")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("strict")
    assert _load_generator().main(["--out", str(out)]) == 0
    return out


_cli = run_cli


def _check(folder: Path, state: Path) -> None:
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    now = dt.datetime.fromisoformat(expected["at"].replace("Z", "+00:00"))
    trust_files = [str(folder / name) for name in expected["trust"]]
    text = qr_text_from_file((folder / "qr.txt").read_bytes())
    verdict = verify_qr_text(text, load_trust(trust_files, now=now, state_dir=state), now=now)
    assert verdict.valid is expected["valid"], verdict.errors
    assert verdict.stage_failed == expected["stage_failed"]
    assert [str(r) for r in verdict.reasons] == expected["reasons"], verdict.errors
    assert Reason.INTERNAL not in verdict.reasons
    render(verdict, lang="vi")  # the human view copes with whatever decoded
    json.loads(verdict.to_json())
    argv = [a for f in trust_files for a in ("--trust", f)]
    for extra in (("--json",), ()):
        code, out, err = _cli("qr", *argv, *extra, "--at", expected["at"], "--qr-file", str(folder / "qr.txt"))
        assert (code, err) == (expected["exit"], "")
        if extra:
            result = json.loads(out)
            assert result["valid"] is expected["valid"]
            assert result["stage_failed"] == expected["stage_failed"]
            assert [e["reason"] for e in result["errors"]] == expected["reasons"]
        else:
            assert out.splitlines()[0] == ("VALID" if expected["valid"] else "INVALID")


def test_the_folder_holds_vectors() -> None:
    assert len(NAMES) >= 50
    assert {json.loads((VECTORS / n / "expected.json").read_text())["valid"] for n in NAMES} == {True, False}


@pytest.mark.parametrize("name", NAMES)
def test_committed_vector(name: str, decoder: str, verifier_state: Path) -> None:
    _check(VECTORS / name, verifier_state)


def test_regenerated_vectors_agree(regenerated: Path, verifier_state: Path) -> None:
    """make_vectors.py still makes these folders, with the same expected results."""
    assert sorted(p.parent.name for p in regenerated.glob("*/expected.json")) == NAMES
    for name in NAMES:
        committed = json.loads((VECTORS / name / "expected.json").read_text(encoding="utf-8"))
        again = json.loads((regenerated / name / "expected.json").read_text(encoding="utf-8"))
        assert again == committed, name
        _check(regenerated / name, verifier_state)
    readme = (VECTORS / "README.md").read_text(encoding="utf-8")
    assert readme == (regenerated / "README.md").read_text(encoding="utf-8")


def test_no_private_key_in_the_vectors() -> None:
    for path in VECTORS.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"PRIVATE KEY" not in data, path
            if path.suffix == ".pem":
                assert data.count(b"-----BEGIN ") == data.count(b"-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("name", ["alg-huge-unsigned", "key-huge-dcc", "dn-bignum-huge"])
def test_hostile_integers_through_a_real_process(name: str, verifier_state: Path) -> None:
    """Issue 8, point 5: exit 1 with one JSON verdict, nothing on stderr (was
    exit 2 with an internal error, or --json printing nothing)."""
    folder = VECTORS / name
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    text = qr_text_from_file((folder / "qr.txt").read_bytes())
    env = {**os.environ, "VNDCC_VERIFIER_STATE": str(verifier_state)}
    run = subprocess.run(
        [sys.executable, "-m", "verifier", "qr", "--trust", str(folder / "trust.pem"), "--json",
         "--at", expected["at"], text],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
    )
    assert (run.returncode, run.stderr) == (1, "")
    result = json.loads(run.stdout)
    assert [e["reason"] for e in result["errors"]] == ["integer_out_of_range"]
