"""Records whose text the certificate cannot carry are refused one by one, never signed
wrongly and never a traceback; an output that cannot be written stops the run cleanly."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.issue import issue_hc1
from signer.manifest import read_manifest
from signer.names import person_name
from signer.payload import build_dcc, load_vaccines
from signer.records import Record, write_jsonl
from signer.uvci import new_uvci
from tests.fixtures.pki import TestPki as Pki
from verifier.errors import InputError

from .conftest import ROOT, TEST_PASSPHRASE, stamp

AT = "2026-06-01T12:00:00Z"


@pytest.mark.parametrize(
    "name",
    ["\ud800Nguyễn Văn An", "Nguyễn Văn An\x00", "Nguyễn\x07 Văn An", "Lê Thị\x9b Hoa", "Nguyễn Văn \u202eAn", "Lê \u2067Hoa\u2069"],
)
def test_control_characters_and_lone_surrogates_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="control or invalid characters"):
        person_name(name)


def test_tabs_and_line_breaks_are_only_whitespace() -> None:
    assert person_name("Nguyễn\tVăn\r\nAn").to_dcc()["gnt"] == "VAN<AN"


@pytest.mark.parametrize("nationality", ["VIỆT NAM", "XYZ", "vnm", "V", "V1"])
def test_nationality_must_be_an_iso_code(example_records: list[Record], nationality: str) -> None:
    """The nationality picks the family name: a free-text one must not swap fn and gn."""
    rec = replace(example_records[0], nationality=nationality)
    with pytest.raises(InputError, match="ISO 3166-1"):
        build_dcc(rec, uvci=new_uvci(made_at=1780315200), issuer="MoH", vaccines=load_vaccines())


@pytest.mark.parametrize(("alpha3", "fnt"), [("VNM", "NGUYEN"), ("KOR", "NGUYEN"), ("USA", "HUONG")])
def test_alpha3_nationality_is_its_alpha2(
    example_records: list[Record], alpha3: str, fnt: str
) -> None:
    """Exports write VNM, KOR, USA (issue 9, point 3): the same family-name order as VN, KR, US."""
    rec = replace(example_records[0], nationality=alpha3)
    dcc = build_dcc(rec, uvci=new_uvci(made_at=1780315200), issuer="MoH", vaccines=load_vaccines())
    assert dcc["nam"]["fnt"] == fnt


def test_empty_nationality_means_vn(example_records: list[Record]) -> None:
    rec = replace(example_records[0], nationality="")  # docs/records.md: empty = VN
    dcc = build_dcc(rec, uvci=new_uvci(made_at=1780315200), issuer="MoH", vaccines=load_vaccines())
    assert dcc["nam"]["fnt"] == "NGUYEN" and dcc["nam"]["gnt"] == "THI<THANH<HUONG"


def test_surrogate_name_is_an_input_error_when_issuing(example_records: list[Record], test_pki: Pki) -> None:
    import datetime as dt

    rec = stamp(replace(example_records[0], full_name="\udc00Nguyễn Văn An"))
    with pytest.raises(InputError):
        issue_hc1(rec, test_pki.dsc_ec, now=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), issuer_name="MoH")


def _run(records: Path, out: Path, key_files: tuple[Path, Path], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "signer", "sign", str(records), "--out", str(out), "--at", AT,
         "--key", str(key_files[0]), "--cert", str(key_files[1]), *extra],
        capture_output=True, text=True, cwd=ROOT, check=False,
        env={**__import__("os").environ, KEY_PASSPHRASE_ENV: TEST_PASSPHRASE},
    )  # fmt: skip


def test_bad_text_records_are_reported_and_the_others_signed(
    example_records: list[Record], ec_key_files: tuple[Path, Path], tmp_path: Path
) -> None:
    good = example_records[:2]
    surrogate = json.dumps(stamp(replace(example_records[2], record_id="SURR", full_name="\ud800An Lê")).to_json())
    foreign = stamp(replace(example_records[3], record_id="NAT", nationality="VIỆT NAM"))
    records = tmp_path / "in.jsonl"
    with records.open("w", encoding="utf-8") as fh:
        write_jsonl([good[0]], fh)
        fh.write(surrogate + "\n")  # json.dumps escapes it: "\ud800" in the file
        write_jsonl([foreign, good[1]], fh)
    proc = _run(records, tmp_path / "out", ec_key_files)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    # the name's escaped lone surrogate is not Unicode: the reader reports the line (signer.records._read_jsonl)
    assert "line 2: record SURR: bad_encoding: line holds an escaped lone surrogate: not valid Unicode" in proc.stderr
    assert "line 3: record NAT: nationality is not an ISO 3166-1 code such as VN or VNM" in proc.stderr
    manifest = read_manifest(tmp_path / "out" / "manifest.jsonl")
    assert [e["record_id"] for e in manifest] == [r.record_id for r in good]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_unwritable_output_stops_cleanly_with_no_unlisted_certificate(
    example_records: list[Record], ec_key_files: tuple[Path, Path], tmp_path: Path, jobs: str
) -> None:
    records = tmp_path / "in.jsonl"
    with records.open("w", encoding="utf-8") as fh:
        write_jsonl(example_records[:3], fh)
    out = tmp_path / "out"
    blocked = example_records[1].record_id
    (out / f"{blocked}.png").mkdir(parents=True)  # the PNG cannot replace a directory
    proc = _run(records, out, ec_key_files, "--jobs", jobs)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"error: line 2: record {blocked}: cannot write ")
    # the record signed before the failure is in the manifest; the failing one left no
    # signed HC1 text behind that the manifest does not list
    manifest = read_manifest(out / "manifest.jsonl")
    assert [e["record_id"] for e in manifest] == [example_records[0].record_id]
    assert not (out / f"{blocked}.hc1.txt").exists()
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_manifest_commit_waits_for_another_run(tmp_path: Path) -> None:
    """Two runs into one directory: the second commit waits for the first, so no lines are lost."""
    import fcntl
    import os
    import threading

    from signer.issue import Issued
    from signer.manifest import Manifest, manifest_entry

    runs = [Manifest(tmp_path), Manifest(tmp_path)]
    runs[1]._part_path = tmp_path / ".manifest.jsonl.other.part"  # another process's part file
    for n, run in enumerate(runs):
        issued = Issued(record_id=f"R{n}", hc1="HC1:X", uvci=f"U{n}", kid=b"12345678", iat=0, exp=1, exp_clamped=False, dcc={})
        run.add(manifest_entry(issued, line=1, verified=True, files=()))
    held = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(held, fcntl.LOCK_EX)  # as if the other run were between its read and its rename
    first = threading.Thread(target=runs[0].commit)
    first.start()
    first.join(0.3)
    assert first.is_alive() and not (tmp_path / "manifest.jsonl").exists()
    os.close(held)
    first.join(5)
    runs[1].commit()
    assert sorted(e["record_id"] for e in read_manifest(tmp_path / "manifest.jsonl")) == ["R0", "R1"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("dob", ["19٨٥", "1985-0٣", "1985-03-1٤"])
def test_non_ascii_digits_in_the_date_of_birth_are_refused_without_echoing_it(dob: str) -> None:
    from signer.payload import check_date_of_birth

    with pytest.raises(InputError, match="not YYYY, YYYY-MM or YYYY-MM-DD") as err:
        check_date_of_birth(dob)
    assert dob not in str(err.value)  # the schema's message used to quote the date of birth
