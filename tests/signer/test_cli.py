"""`python -m signer sign` end to end: good and bad records, CSV and JSONL, manifest, gate."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from PIL import Image

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.cli import main
from signer.manifest import read_manifest
from signer.records import Record, write_jsonl
from tests.fixtures.pki import TestPki as Pki
from verifier.hc1 import verify_qr_text
from verifier.trust import load_trust

from .conftest import EXAMPLES, ROOT, TEST_PASSPHRASE, stamp

AT = "2026-06-01T12:00:00Z"
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def key_args(files: tuple[Path, Path]) -> list[str]:
    return ["--key", str(files[0]), "--cert", str(files[1])]


@pytest.fixture()
def passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)


def write_records(path: Path, records: list[Record], extra_lines: list[str] = ()) -> Path:  # type: ignore[assignment]
    with path.open("w", encoding="utf-8") as fh:
        write_jsonl(records, fh)
        for line in extra_lines:
            fh.write(line + "\n")
    return path


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("batch_size", "jobs"), [(2, 1), (256, 1), (2, 2), (3, 0)])
def test_bad_records_among_good_ones(
    example_records: list[Record],
    ec_key_files: tuple[Path, Path],
    passphrase: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    batch_size: int,
    jobs: int,
) -> None:
    """Whatever the batch size and the number of signing processes: good
    records signed, each bad one reported, in line order."""
    monkeypatch.setattr("signer.run.BATCH_SIZE", batch_size)
    good = example_records[:3]
    bad_vaccine = stamp(replace(example_records[3], record_id="BAD-VAX", doses=(replace(example_records[3].doses[0], vaccine="Covaxin"),)))
    unverified = replace(example_records[4], record_id="UNVERIFIED", verified="")
    unsafe_id = stamp(replace(example_records[5], record_id="../escape"))
    duplicate = example_records[0]
    records = write_records(
        tmp_path / "in.jsonl",
        [good[0], bad_vaccine, good[1], unverified, unsafe_id, duplicate, good[2]],
        ["{not json"],
    )
    out = tmp_path / "out"
    code = main(["sign", str(records), "--out", str(out), "--at", AT, "--jobs", str(jobs), *key_args(ec_key_files)])
    err = capsys.readouterr().err
    assert code == 1
    assert "line 2: record BAD-VAX: dose 1: unknown vaccine 'Covaxin'" in err
    assert "line 4: record UNVERIFIED: not verified" in err
    assert "line 5: record ?: record id missing or not usable" in err
    assert "line 6: record HCM-000001: duplicate record id" in err
    assert "line 8: record ?: bad_json" in err
    assert "error: 5 record(s) not signed" in err
    reported = [int(line.split(":")[0].removeprefix("line ")) for line in err.splitlines() if line.startswith("line ")]
    assert reported == [2, 4, 5, 6, 8]
    for rec in example_records[:5]:  # no name or citizen ID in the messages
        assert rec.full_name not in err and rec.id_number not in err

    manifest = read_manifest(out / "manifest.jsonl")
    assert [e["record_id"] for e in manifest] == [r.record_id for r in good]
    assert [e["line"] for e in manifest] == [1, 3, 7]
    assert not (tmp_path / "escape.png").exists()
    assert no_temp_files(out)

    trust = load_trust([ec_key_files[1]], now=NOW, state_dir=tmp_path / "state")
    for rec, entry in zip(good, manifest, strict=True):
        hc1 = (out / f"{rec.record_id}.hc1.txt").read_text("ascii")
        verdict = verify_qr_text(hc1, trust, now=NOW)
        assert verdict.valid, verdict.errors
        assert verdict.payload is not None
        assert verdict.payload["hcert"]["v"][0]["ci"] == entry["uvci"]
        assert verdict.payload["exp"] == entry["exp"] and verdict.payload["iat"] == entry["iat"]
        image = Image.open(out / f"{rec.record_id}.png")
        assert [b.text for b in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)] == [hc1]
        assert entry["verified"] is True and "override" not in entry
        assert entry["iat_iso"] == "2026-06-01T12:00:00Z"
        assert entry["files"] == [f"{rec.record_id}.hc1.txt", f"{rec.record_id}.png"]
        # the manifest carries no personal data
        text = json.dumps(entry, ensure_ascii=False)
        for secret in (rec.full_name, rec.id_number, rec.date_of_birth, rec.full_name.split()[0]):
            assert secret not in text


def test_csv_with_bom_and_override(
    example_records: list[Record],
    ec_key_files: tuple[Path, Path],
    passphrase: None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv_file = EXAMPLES / "records.csv"
    assert csv_file.read_bytes().startswith(b"\xef\xbb\xbf")  # as Excel writes it
    out = tmp_path / "out"
    base = ["sign", str(csv_file), "--out", str(out), "--at", AT, *key_args(ec_key_files)]

    # CSV exports carry no verification stamp: refused without the override
    assert main(base) == 1
    assert "not verified" in capsys.readouterr().err
    assert not (out / "manifest.jsonl").exists()

    # the override needs a reason, before any key is opened
    assert main([*base, "--allow-unverified"]) == 2
    assert "--override-reason" in capsys.readouterr().err

    code = main([*base, "--allow-unverified", "--override-reason", "registry offline, MoH letter 12/2021", "--operator", "op.lan", "--svg"])
    assert code == 0, capsys.readouterr().err
    manifest = read_manifest(out / "manifest.jsonl")
    assert [e["record_id"] for e in manifest] == [r.record_id for r in example_records]
    for entry in manifest:
        assert entry["verified"] is False
        assert entry["override"] == {"operator": "op.lan", "reason": "registry offline, MoH letter 12/2021"}
        assert (out / f"{entry['record_id']}.svg").read_bytes().startswith(b"<?xml")

    # a second run appends to the manifest; UVCIs are never reused
    assert main([*base, "--allow-unverified", "--override-reason", "again", "--operator", "op.mai"]) == 0
    again = read_manifest(out / "manifest.jsonl")
    assert len(again) == 2 * len(manifest)
    assert len({e["uvci"] for e in again}) == len(again)
    assert no_temp_files(out)


def test_operator_defaults_to_user(
    example_records: list[Record], ec_key_files: tuple[Path, Path], passphrase: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("USER", "nurse.hoa")
    records = write_records(tmp_path / "in.jsonl", [replace(example_records[0], verified="")])
    args = ["sign", str(records), "--out", str(tmp_path / "o"), "--at", AT, *key_args(ec_key_files)]
    assert main([*args, "--allow-unverified", "--override-reason", "test"]) == 0
    assert read_manifest(tmp_path / "o" / "manifest.jsonl")[0]["override"]["operator"] == "nurse.hoa"


def test_exp_clamp_is_reported(
    example_records: list[Record], test_pki: Pki, passphrase: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from keys.certs import make_dsc, new_private_key
    from keys.software import SoftwareKey

    from .conftest import write_key_files

    k = new_private_key("ec-p256")
    cert = make_dsc(test_pki.csca, test_pki.csca_key, k.public_key(), name="Short", now=NOW, days=30)  # type: ignore[arg-type]
    files = write_key_files(SoftwareKey(private_key=k, certificate=cert), tmp_path)
    records = write_records(tmp_path / "in.jsonl", example_records[:2])
    assert main(["sign", str(records), "--out", str(tmp_path / "o"), "--at", AT, *key_args(files)]) == 0
    assert "warning: 2 certificate(s) expire with the DSC" in capsys.readouterr().err
    entries = read_manifest(tmp_path / "o" / "manifest.jsonl")
    assert all(e["exp_clamped"] and e["exp"] == int(cert.not_valid_after_utc.timestamp()) for e in entries)


def test_pkcs11_token(
    example_records: list[Record], softhsm_token: Any, softhsm_pin_env: str, tmp_path: Path
) -> None:
    cert = tmp_path / "token-dsc.pem"
    from cryptography.hazmat.primitives.serialization import Encoding

    cert.write_bytes(softhsm_token.ps256_cert.public_bytes(Encoding.PEM))
    records = write_records(tmp_path / "in.jsonl", example_records[:6])
    trust = load_trust([cert], now=NOW, state_dir=tmp_path / "state")
    # --jobs 2: the run's session and one worker's; 3: two workers log in to the token, one at a time
    for jobs in ("1", "2", "3"):
        out = tmp_path / f"o{jobs}"
        args = ["sign", str(records), "--out", str(out), "--at", AT, "--jobs", jobs]
        args += ["--pkcs11-module", softhsm_token.module, "--token-label", softhsm_token.token_label, "--key-label", "dsc-rsa"]
        assert main(args) == 0
        for rec in example_records[:6]:
            assert verify_qr_text((out / f"{rec.record_id}.hc1.txt").read_text(), trust, now=NOW).valid
        assert [e["record_id"] for e in read_manifest(out / "manifest.jsonl")] == [r.record_id for r in example_records[:6]]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing-records", "records file not found"),
        ("wrong-passphrase", "wrong passphrase"),
        ("bad-at", "not an ISO-8601"),
        ("expired-dsc", "not valid at the signing time"),
        ("no-key", "choose exactly one signing key"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    setup: str, message: str, example_records: list[Record], ec_key_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "wrong" if setup == "wrong-passphrase" else TEST_PASSPHRASE)
    records = write_records(tmp_path / "in.jsonl", example_records[:1])
    if setup == "missing-records":
        records = tmp_path / "nope.jsonl"
    at = {"bad-at": "yesterday", "expired-dsc": "2040-01-01T00:00:00"}.get(setup, AT)
    keys = [] if setup == "no-key" else key_args(ec_key_files)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "signer", "sign", str(records), "--out", str(out), "--at", at, *keys],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**__import__("os").environ},
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())


def test_console_script_help() -> None:
    exe = Path(sys.executable).with_name("vn-dcc-sign")
    proc = subprocess.run([str(exe), "sign", "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    for option in ("--out", "--allow-unverified", "--override-reason", "--key", "--p12", "--token-label", "--svg"):
        assert option in proc.stdout
    assert "passphrase" in proc.stdout.lower()


def test_override_without_operator_is_refused(
    example_records: list[Record], ec_key_files: tuple[Path, Path], passphrase: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("USER", raising=False)
    records = write_records(tmp_path / "in.jsonl", [replace(example_records[0], verified="")])
    args = ["sign", str(records), "--out", str(tmp_path / "o"), "--at", AT, *key_args(ec_key_files)]
    assert main([*args, "--allow-unverified", "--override-reason", "test"]) == 2
    assert "--operator" in capsys.readouterr().err
    assert main([*args, "--override-reason", "test"]) == 2
    assert "only meaningful with --allow-unverified" in capsys.readouterr().err


def test_manifest_streams_and_appends(tmp_path: Path) -> None:
    from signer.issue import Issued
    from signer.manifest import Manifest, manifest_entry

    (tmp_path / "manifest.jsonl").write_text('{"record_id": "OLD"}')  # no final newline
    manifest = Manifest(tmp_path)
    manifest.commit()  # nothing added: nothing changes
    assert (tmp_path / "manifest.jsonl").read_text() == '{"record_id": "OLD"}'
    for i in range(3):
        issued = Issued(record_id=f"R{i}", hc1="HC1:X", uvci=f"U{i}", kid=b"12345678", iat=0, exp=1, exp_clamped=False, dcc={})
        manifest.add(manifest_entry(issued, line=i + 1, verified=True, files=()))
    parts = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    assert len(parts) == 1 and len(parts[0].read_text().splitlines()) == 3  # streamed, not held
    assert read_manifest(tmp_path / "manifest.jsonl") == [{"record_id": "OLD"}]  # not yet published
    manifest.commit()
    assert [e["record_id"] for e in read_manifest(tmp_path / "manifest.jsonl")] == ["OLD", "R0", "R1", "R2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl"]
