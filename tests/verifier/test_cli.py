"""`python -m verifier qr` command-line contract (issue 2): exit codes, --at, inputs, output."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image

from tests.fixtures import pki as pki_fixture
from tests.fixtures.pki import NOW
from tests.verifier.cli_run import run_cli
from tests.verifier.factory import make_hc1
from verifier.cli import parse_at

Pki = pki_fixture.TestPki


_cli = run_cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-06-01T12:00:00Z", dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)),
        ("2026-06-01T12:00:00", dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)),  # no zone = UTC
        ("2026-06-01T12:00:00.250", dt.datetime(2026, 6, 1, 12, 0, 0, 250000, tzinfo=dt.UTC)),
        ("2026-06-01T19:00:00.5+07:00", dt.datetime(2026, 6, 1, 12, 0, 0, 500000, tzinfo=dt.UTC)),
        ("2026-06-01", dt.datetime(2026, 6, 1, tzinfo=dt.UTC)),
    ],
)
def test_parse_at(text: str, expected: dt.datetime) -> None:
    assert parse_at(text) == expected


def test_exit_codes_and_json(test_pki: Pki, dsc_pem: str) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW, iat=NOW.timestamp(), exp=NOW.timestamp())
    at = "2026-06-01T12:00:00"
    code, out, err = _cli("qr", "--trust", dsc_pem, "--json", "--at", at, text)
    assert (code, err) == (0, "") and json.loads(out)["valid"] is True
    code, out, _ = _cli(
        "qr", "--trust", dsc_pem, "--json", "--at", "2026-06-01T12:00:00.001Z", text
    )
    assert code == 1 and json.loads(out)["stage_failed"] == "expiry"
    code, out, _ = _cli("qr", "--trust", dsc_pem, "--json", "--at", at, "HC1:garbage")
    assert code == 1 and json.loads(out)["errors"][0]["stage"] == "base45"


@pytest.mark.parametrize(
    "argv",
    [
        ["qr", "--json", "HC1:x"],  # --trust missing
        ["qr", "--trust", "t.pem"],  # no input
        ["qr", "--trust", "t.pem", "HC1:x", "--image", "a.png"],  # two inputs
        ["qr", "--trust", "t.pem", "--at", "yesterday", "HC1:x"],
        ["qr", "--trust", "t.pem", "--lang", "fr", "HC1:x"],
        ["nonsense"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert _cli(*argv)[0] == 2


def test_missing_input_files_exit_2(dsc_pem: str, tmp_path: Path) -> None:
    for flag in ("--qr-file", "--image"):
        code, out, err = _cli("qr", "--trust", dsc_pem, flag, str(tmp_path / "absent"))
        assert code == 2 and out == "" and err.startswith("error: cannot read")


def test_qr_file_and_image(test_pki: Pki, dsc_pem: str, tmp_path: Path) -> None:
    text = make_hc1(test_pki.dsc_rsa, now=NOW)
    qr_file = tmp_path / "qr.txt"
    qr_file.write_text("\ufeff" + text + "\r\n", encoding="utf-8")
    code, out, _ = _cli(
        "qr", "--trust", dsc_pem, "--at", NOW.isoformat(), "--json", "--qr-file", str(qr_file)
    )
    assert code == 0 and json.loads(out)["checks"]["qr"] is None
    image = zxingcpp.write_barcode_to_image(
        zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode), scale=3
    )
    png = tmp_path / "qr.png"
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(png)
    code, out, _ = _cli(
        "qr", "--trust", dsc_pem, "--at", NOW.isoformat(), "--json", "--image", str(png)
    )
    obj = json.loads(out)
    assert code == 0 and obj["checks"]["qr"] is True and obj["qr_text"] == text


def test_human_verdict_en_vi(test_pki: Pki, dsc_pem: str) -> None:
    text = make_hc1(test_pki.dsc_ec, now=NOW)
    code, out, _ = _cli("qr", "--trust", dsc_pem, "--at", NOW.isoformat(), text)
    assert code == 0
    assert out.splitlines()[0] == "VALID"
    assert "Nguyễn Thị Thanh Hương (NGUYEN THI THANH HUONG)" in out
    assert "Date of birth: 1990-01-02" in out and "dose 2 of 2, Comirnaty" in out
    code, out, _ = _cli("qr", "--trust", dsc_pem, "--at", "2099-01-01", "--lang", "vi", text)
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "KHÔNG HỢP LỆ" and "Ngày sinh: 1990-01-02" in out and "mũi 2/2" in out
    assert lines[-1] == "Lý do: chứng nhận đã hết hạn"


def test_real_process(test_pki: Pki, dsc_pem: str, tmp_path: Path) -> None:
    """The module entry point as other tools drive it: exit status and one JSON object."""
    text = make_hc1(test_pki.dsc_ec, now=NOW)
    env = {**os.environ, "VNDCC_VERIFIER_STATE": str(tmp_path / "state")}
    base = [
        sys.executable,
        "-m",
        "verifier",
        "qr",
        "--trust",
        dsc_pem,
        "--json",
        "--at",
        NOW.isoformat(),
    ]
    ok = subprocess.run([*base, text], capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True and ok.stderr == ""
    bad = subprocess.run([*base, text[:-5]], capture_output=True, text=True, env=env, timeout=60)
    assert (
        bad.returncode == 1
        and json.loads(bad.stdout)["valid"] is False
        and "Traceback" not in bad.stderr
    )


def test_broken_optional_subcommand_does_not_break_qr(
    test_pki: Pki, dsc_pem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plug-in subcommand that fails to import leaves `qr` working and itself reports exit 2."""
    pkg = tmp_path / "plug" / "brokenpkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "cli.py").write_text("raise RuntimeError('half-installed')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "plug"))
    monkeypatch.setattr("verifier.cli.OPTIONAL_SUBCOMMANDS", ("brokenpkg.cli",))
    code, _, _ = _cli(
        "qr", "--trust", dsc_pem, "--at", NOW.isoformat(), make_hc1(test_pki.dsc_ec, now=NOW)
    )
    assert code == 0
    code, _, err = _cli("brokenpkg", "x.pdf")
    assert code == 2 and "half-installed" in err and err.count("\n") == 1
