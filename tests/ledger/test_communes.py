"""One ZIP per commune (signer.communes, `batch --zip-per-commune`, `ledger zips`):
a real batch with PDFs on a PKI made by `python -m keys`, the ZIPs unpacked
and checked file by file against the folder and the ledger, identical bytes
on a re-run, superseded and revoked certificates left out, hostile commune
names turned into safe, distinct file names."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import secrets
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from keys import pki as pki_module
from keys.cli import main as keys_main
from keys.secrets import CSCA_PASSPHRASE_ENV, KEY_PASSPHRASE_ENV
from signer import communes
from signer.batch import BatchOutput
from signer.cli import main
from signer.communes import ZIP_NAME, commune_key, write_commune_zips, zip_name
from signer.ledger import Ledger
from signer.manifest import read_manifest
from signer.records import Record
from tests.signer.conftest import stamp
from verifier.errors import ConfigError

from .helpers import CENTRE, check_consistent, many_records, write_records

T0 = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=dt.UTC)
AT = (T0 + dt.timedelta(days=1)).isoformat()


@pytest.fixture()
def pki(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[str]]:
    """A PKI made with `python -m keys` as the demo makes it, and the batch's key and PDF options."""
    monkeypatch.setenv(CSCA_PASSPHRASE_ENV, "csca-" + secrets.token_hex(10))
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, "dsc-" + secrets.token_hex(10))
    d = tmp_path / "pki"
    for args in (("init-csca",), ("issue-dsc", "--name", "Centre DSC"), ("issue-crl",)):
        assert keys_main([args[0], "--pki", str(d), *args[1:], "--now", T0.isoformat()]) == 0
    index = pki_module.load_index(d)
    (dsc,) = index.dscs
    return d, [
        "--key", str(d / (dsc.key_file or "")), "--cert", str(d / dsc.cert), "--chain", str(d / "csca.pem"),
        "--pdf", "--crl", str(d / index.crls[-1].der),
    ]  # fmt: skip


def batch(source: Path, out: Path, ledger: str, key_args: list[str], *extra: str) -> int:
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", AT]
    return main([*args, "--progress", "none", *key_args, *extra])


def unzip(path: Path) -> tuple[list[str], dict[str, bytes]]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
        return names, {n: archive.read(n) for n in names}


def index_rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def zips_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.zip"))}


def test_one_zip_per_commune_with_exactly_the_current_files(
    pki: tuple[Path, list[str]], ledger_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, key_args = pki
    records = many_records(20)  # the 8 example records' places, in turn
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert batch(source, out, ledger_target, key_args, "--zip-per-commune") == 0
    summary = capsys.readouterr().out
    assert "commune ZIPs: 8 in" in summary and "(20 certificate(s); 8 written, 0 unchanged)" in summary
    current = check_consistent(ledger_target, out, [r.record_id for r in records], extra={"communes"})
    by_place: dict[str, list[Record]] = {}
    for r in records:
        by_place.setdefault(zip_name(r.province, r.commune), []).append(r)
    zips = out / "communes"
    assert sorted(p.name for p in zips.glob("*.zip")) == sorted(by_place)
    assert "phuong-ben-nghe--thanh-pho-ho-chi-minh--" in " ".join(by_place)
    for name, members in by_place.items():
        names, content = unzip(zips / name)
        ids = sorted(r.record_id for r in members)
        files = sorted(f"{rid}{ext}" for rid in ids for ext in (".pdf", ".png"))
        assert names == ["index.csv", *files]  # sorted, no .hc1.txt, nothing of another commune
        rows = index_rows(content["index.csv"])
        assert [row["record_id"] for row in rows] == ids
        for row in rows:
            cert = current[row["record_id"]]
            assert row["uvci"] == cert.uvci
            assert row["files"] == f"{row['record_id']}.pdf {row['record_id']}.png"
            assert set(row) == {"record_id", "uvci", "files"}  # no citizen ID, no name
            for entry in cert.files:
                if entry.name.endswith((".pdf", ".png")):
                    assert hashlib.sha256(content[entry.name]).hexdigest() == entry.sha256
                    assert content[entry.name] == (out / entry.name).read_bytes()
        text = b"".join(content.values())
        for r in members:
            assert r.id_number.encode() not in content["index.csv"]
            assert r.full_name.encode() not in content["index.csv"]
        assert text  # (the PDFs carry the names; that is what is distributed)
    ledger = Ledger.open(ledger_target, actor="t", create=False)
    try:
        cert = ledger.by_record("R00000")[0]
        assert (cert.province, cert.commune) == (records[0].province, records[0].commune)
    finally:
        ledger.close()
    manifest = read_manifest(out / "manifest.jsonl")
    assert {e["commune"] for e in manifest} == {r.commune for r in records}

    # the same certificates again: the same bytes, left in place; elsewhere too
    before = zips_of(zips)
    mtimes = {p.name: p.stat().st_mtime_ns for p in zips.glob("*.zip")}
    assert batch(source, out, ledger_target, key_args, "--zip-per-commune") == 0
    assert "(20 certificate(s); 0 written, 8 unchanged)" in capsys.readouterr().out
    assert zips_of(zips) == before
    assert {p.name: p.stat().st_mtime_ns for p in zips.glob("*.zip")} == mtimes
    elsewhere = tmp_path / "elsewhere"
    assert write_commune_zips(out, elsewhere) == sorted(elsewhere / n for n in before)
    assert zips_of(elsewhere) == before
    assert main(["ledger", "zips", str(out), "--dest", str(tmp_path / "third")]) == 0
    assert zips_of(tmp_path / "third") == before
    assert oct((tmp_path / "third" / next(iter(before))).stat().st_mode & 0o777) == oct(0o600)
    assert not list(zips.glob(".*partial")) and not list(zips.glob(".zips-*"))


def test_superseded_revoked_and_moved_certificates_leave_the_zips(
    pki: tuple[Path, list[str]], ledger_target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, key_args = pki
    records = many_records(10)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert batch(source, out, ledger_target, key_args, "--zip-per-commune") == 0
    first = check_consistent(ledger_target, out, [r.record_id for r in records], extra={"communes"})
    zips = out / "communes"
    place = zip_name(records[1].province, records[1].commune)  # R00001 and R00009 live there
    assert [row["record_id"] for row in index_rows(unzip(zips / place)[1]["index.csv"])] == ["R00001", "R00009"]
    lonely = zip_name(records[2].province, records[2].commune)  # only R00002

    # R00001 corrected (a lot number): a new certificate supersedes the old one
    fixed = list(records)
    dose = replace(records[1].doses[0], lot="FIXED-LOT-1")
    fixed[1] = stamp(replace(records[1], doses=(dose, *records[1].doses[1:])))
    # R00002 moves to another commune: its old commune's ZIP disappears
    fixed[2] = stamp(replace(records[2], commune="Phường Bến Nghé", province="Thành phố Hồ Chí Minh"))
    assert batch(write_records(tmp_path / "fixed.jsonl", fixed), out, ledger_target, key_args, "--zip-per-commune") == 0
    assert "2 issued (2 superseding an earlier certificate)" in capsys.readouterr().out
    now = check_consistent(ledger_target, out, [r.record_id for r in records], extra={"communes"})
    rows = {row["record_id"]: row for row in index_rows(unzip(zips / place)[1]["index.csv"])}
    assert rows["R00001"]["uvci"] == now["R00001"].uvci != first["R00001"].uvci
    _, content = unzip(zips / place)
    png = next(f for f in now["R00001"].files if f.name.endswith(".png"))
    assert hashlib.sha256(content["R00001.png"]).hexdigest() == png.sha256  # the new QR, not the old
    assert not (zips / lonely).exists()
    ben_nghe = zip_name("Thành phố Hồ Chí Minh", "Phường Bến Nghé")
    assert "R00002" in {row["record_id"] for row in index_rows(unzip(zips / ben_nghe)[1]["index.csv"])}
    assert first["R00001"].uvci.encode() not in b"".join(unzip(zips / place)[1].values())

    # R00009 revoked: the manifest is made again at once, the ZIPs follow with `ledger zips`
    capsys.readouterr()
    assert main(["revoke", "--ledger", ledger_target, "--record-id", "R00009", "--reason", "wrong person"]) == 0
    said = capsys.readouterr().out
    assert "manifest: " in said and "signer ledger zips" in said
    assert "R00009" not in {e["record_id"] for e in read_manifest(out / "manifest.jsonl")}
    assert main(["ledger", "zips", str(out)]) == 0
    rows = {row["record_id"]: row for row in index_rows(unzip(zips / place)[1]["index.csv"])}
    assert set(rows) == {"R00001"}
    assert "R00009.pdf" not in unzip(zips / place)[0]


def test_zips_follow_a_revocation_with_the_ledger_option(
    pki: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder whose manifest is out of date (revoked while a batch held the
    folder): `ledger zips --ledger` makes the manifest first."""
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    _, key_args = pki
    ledger_path = str(tmp_path / "ledger.sqlite")
    records = many_records(3)
    out = tmp_path / "out"
    assert batch(write_records(tmp_path / "in.jsonl", records), out, ledger_path, key_args) == 0
    with BatchOutput(out):  # a batch "runs": revoke cannot make the manifest now
        assert main(["revoke", "--ledger", ledger_path, "--record-id", "R00000", "--reason", "test"]) == 0
        with pytest.raises(ConfigError, match="a batch is running"):
            write_commune_zips(out, tmp_path / "z")
    assert "R00000" in {e["record_id"] for e in read_manifest(out / "manifest.jsonl")}  # stale
    assert main(["ledger", "zips", str(out), "--ledger", ledger_path]) == 0
    assert "R00000" not in {e["record_id"] for e in read_manifest(out / "manifest.jsonl")}
    listed = {row["record_id"] for z in (out / "communes").glob("*.zip") for row in index_rows(unzip(z)[1]["index.csv"])}
    assert listed == {"R00001", "R00002"}


HOSTILE = [
    ("../../etc", "../../passwd"),
    ("Thành phố Hồ Chí Minh", "Phường 1/../.."),
    ("Tỉnh Khánh Hòa", "Phường Vĩnh Hoà"),  # old tone placement ...
    ("Tỉnh Khánh Hòa", "phường  vĩnh hòa"),  # ... new placement, case and spaces: the same commune
    ("Tỉnh Khánh Hòa", "Phường Vĩnh Hóa"),  # another tone: another commune, same slug
    ("Tỉnh Bắc Ninh", "Xã An Lạc"),
    ("Tỉnh Bắc Ninh", "Xã Ân Lạc"),
    ("", "北京市"),
    ("", "\u202ePhường evil\u202c gnp.exe"),
    ("CON", "NUL"),
    ("Tỉnh Đồng Tháp", "Đ" * 300),
    ("", ""),
    ("", "🦠 Xã 😷"),
    ("-", "."),
]


def test_hostile_commune_names_give_safe_distinct_file_names() -> None:
    names = [zip_name(p, c) for p, c in HOSTILE]
    for name in names:
        assert ZIP_NAME.fullmatch(name), name
        assert "/" not in name and not name.startswith((".", "-")) and len(name) <= 96
    assert names[2] == names[3]  # Hoà = hòa
    assert len({names[2], names[4]}) == 2 and names[4].split("--")[0] == names[2].split("--")[0]
    assert names[5] != names[6]
    keys = {commune_key(p, c) for p, c in HOSTILE}
    assert len(set(names)) == len(keys) == len(HOSTILE) - 1
    assert names[0].startswith("passwd--etc--") and names[1].startswith("phuong-1--thanh-pho-ho-chi-minh--")
    assert names[7].startswith("commune--") and names[11].startswith("no-commune--")


def test_hostile_commune_names_end_to_end(
    pki: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    _, key_args = pki
    base = many_records(len(HOSTILE))
    records = [stamp(replace(r, province=p, commune=c)) for r, (p, c) in zip(base, HOSTILE, strict=True)]
    out = tmp_path / "out"
    code = batch(write_records(tmp_path / "in.jsonl", records), out, str(tmp_path / "l.sqlite"), key_args,
                 "--zip-per-commune", "--zip-dir", str(tmp_path / "zips"))  # fmt: skip
    issued = {e["record_id"] for e in read_manifest(out / "manifest.jsonl")}
    assert code == (0 if len(issued) == len(records) else 1)
    made = sorted((tmp_path / "zips").iterdir())
    assert all(p.parent == tmp_path / "zips" for p in made)
    assert not list(tmp_path.glob("etc*")) and not (tmp_path.parent / "passwd").exists()
    listed = [row["record_id"] for z in made if z.suffix == ".zip" for row in index_rows(unzip(z)[1]["index.csv"])]
    assert sorted(listed) == sorted(issued)  # every current certificate in exactly one ZIP
    assert len(issued) == len(HOSTILE), issued  # a strange place name is no reason to refuse a record


def test_refusals(pki: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VNDCC_LEDGER_KEY", raising=False)
    _, key_args = pki
    out = tmp_path / "out"
    assert batch(write_records(tmp_path / "in.jsonl", many_records(3)), out, str(tmp_path / "l.sqlite"), key_args) == 0
    # another batch folder's ZIPs are not replaced
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.jsonl").write_text("")
    dest = tmp_path / "dest"
    write_commune_zips(out, dest)
    with pytest.raises(ConfigError, match="another batch folder"):
        write_commune_zips(other, dest)
    # a damaged file is never distributed
    (out / "R00001.png").write_bytes(b"\x89PNG not the signed QR")
    with pytest.raises(ConfigError, match="does not match the manifest"):
        write_commune_zips(out, tmp_path / "d2")
    assert not list((tmp_path / "d2").glob(".*partial"))
    (out / "R00001.png").unlink()
    with pytest.raises(ConfigError, match="run the batch again"):
        write_commune_zips(out, tmp_path / "d3")
    # a manifest that names a file outside the folder
    evil = tmp_path / "evil"
    evil.mkdir()
    line = {"record_id": "R1", "uvci": "U", "files": ["../in.jsonl"], "sha256": ["0" * 64]}
    (evil / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ConfigError, match="not a plain name"):
        write_commune_zips(evil, tmp_path / "d4")
    os.symlink(tmp_path / "in.jsonl", evil / "R1.pdf")
    line["files"] = ["R1.pdf"]
    (evil / "manifest.jsonl").write_text(json.dumps(line) + "\n")
    with pytest.raises(ConfigError):
        write_commune_zips(evil, tmp_path / "d5")
    with pytest.raises(ConfigError, match=r"no manifest\.jsonl"):
        write_commune_zips(tmp_path / "pki", tmp_path / "d6")
    assert (tmp_path / "dest" / communes.SOURCE_MARK).read_text() == f"{out.resolve()}\n"


#: Runs `signer ARGS...` (argv[2:]) and stops for good inside the second
#: commune ZIP, once its ``.NAME.partial`` is written and flushed (argv[1]:
#: the file it touches then), to be killed there.
STOP_IN_THE_SECOND_ZIP = """
import os, sys, time
from pathlib import Path
from signer.cli import main
real, calls = os.fsync, []
def fsync(fd):
    real(fd)
    if os.readlink(f"/proc/self/fd/{fd}").endswith(".zip.partial"):
        calls.append(fd)
        if len(calls) == 2:
            Path(sys.argv[1]).touch()
            time.sleep(120)
os.fsync = fsync
sys.exit(main(sys.argv[2:]))
"""


def kill_in_the_second_zip(stopped: Path, args: list[str]) -> None:
    """Run `signer ARGS` in a process of its own and SIGKILL it inside its second ZIP."""
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", STOP_IN_THE_SECOND_ZIP, str(stopped), *args], cwd=root)
    try:
        deadline = time.monotonic() + 120
        while not stopped.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert stopped.exists(), f"the run did not reach its second ZIP (exit {proc.poll()})"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_a_run_killed_while_writing_zips_leaves_nothing_after_the_next(
    pki: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """SIGKILL in the middle of the ZIPs (one renamed into place, the next one
    written as .NAME.partial, the scratch folder with the grouped manifest):
    the next run into the same folder removes what the killed one left and
    writes the same ZIPs as an uninterrupted run."""
    _, key_args = pki
    out, dest = tmp_path / "out", tmp_path / "dest"
    assert batch(write_records(tmp_path / "in.jsonl", many_records(20)), out, str(tmp_path / "l.sqlite"), key_args) == 0
    write_commune_zips(out, tmp_path / "ref")
    reference = zips_of(tmp_path / "ref")
    assert len(reference) == 8
    kill_in_the_second_zip(tmp_path / "stopped", ["ledger", "zips", str(out), "--dest", str(dest)])
    left = sorted(p.name for p in dest.iterdir())
    assert [n for n in left if n.endswith(".zip")] != [] and any(n.endswith(".zip.partial") for n in left), left
    assert any(n.startswith(communes.WORK_PREFIX) and (dest / n).is_dir() for n in left), left

    assert main(["ledger", "zips", str(out), "--dest", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == sorted([*reference, communes.SOURCE_MARK])
    assert zips_of(dest) == reference


def test_a_batch_killed_in_its_zips_is_resumed_after_its_last_record(
    pki: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`batch --zip-per-commune` killed once every record is written, while it
    writes the ZIPs (minutes for a large batch): the same command again
    resumes after the last record, with the killed run's counts, and only
    finishes the ZIPs; it neither reads the input again nor issues anything."""
    _, key_args = pki
    records = many_records(20)
    source = write_records(tmp_path / "in.jsonl", records)
    out, ledger = tmp_path / "out", str(tmp_path / "l.sqlite")
    args = ["batch", str(source), "--out", str(out), "--ledger", ledger, "--centre", CENTRE, "--at", AT,
            "--progress", "none", *key_args, "--zip-per-commune"]  # fmt: skip
    kill_in_the_second_zip(tmp_path / "stopped", args)
    capsys.readouterr()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "resuming after line 20 of" in captured.err, captured.err
    assert "batch: 20 record(s): 20 issued, 0 skipped" in captured.out, captured.out  # the killed run's counts
    assert "commune ZIPs: 8 in" in captured.out
    check_consistent(ledger, out, [r.record_id for r in records], extra={"communes"})
    write_commune_zips(out, tmp_path / "ref")
    assert zips_of(out / "communes") == zips_of(tmp_path / "ref")
    assert sorted(p.name for p in (out / "communes").iterdir() if not p.name.endswith(".zip")) == [".batch"]
    assert not (out / ".resume").exists()  # the point goes once the run has ended
    # and then a run like any other: nothing to do
    assert main(args) == 0
    assert "batch: 20 record(s): 0 issued, 20 skipped as already issued" in capsys.readouterr().out


def test_leftovers_of_a_killed_zip_run_are_removed_and_nothing_else(
    pki: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """Each kind of leftover (as named by the code that makes it) goes; files
    and folders of other names in DEST, and a symbolic link named like a
    scratch folder, stay."""
    _, key_args = pki
    out, dest = tmp_path / "out", tmp_path / "dest"
    assert batch(write_records(tmp_path / "in.jsonl", many_records(3)), out, str(tmp_path / "l.sqlite"), key_args) == 0
    write_commune_zips(out, dest)
    (dest / communes._tmp_name(communes.SOURCE_MARK)).write_text("half a mark")
    (dest / ".x--0123456789.zip.partial").write_bytes(b"PK half")
    (dest / f"{communes.WORK_PREFIX}abcd1234").mkdir()
    (dest / f"{communes.WORK_PREFIX}abcd1234" / "groups.sqlite").write_bytes(b"x")
    (dest / "notes.txt").write_text("the centre's own file")
    (dest / ".keep").mkdir()
    os.symlink(tmp_path / "out", dest / f"{communes.WORK_PREFIX}link")
    write_commune_zips(out, dest)
    assert sorted(p.name for p in dest.iterdir() if not p.name.endswith(".zip")) == [
        ".batch", ".keep", f"{communes.WORK_PREFIX}link", "notes.txt"
    ]
    assert (out / "manifest.jsonl").exists()  # the link's target untouched


def test_a_run_reads_only_the_files_of_the_communes_that_changed(
    pki: tuple[Path, list[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ZIP's comment names what it is made of (index and each file's
    SHA-256): a later run leaves a ZIP that already is what it would write
    without reading a file; one that changed, a damaged ZIP or one without
    that comment is written again, to the same bytes a run from nothing
    writes."""
    _, key_args = pki
    records = many_records(10)
    out, ledger = tmp_path / "out", str(tmp_path / "l.sqlite")
    assert batch(write_records(tmp_path / "in.jsonl", records), out, ledger, key_args, "--zip-per-commune") == 0
    zips = out / "communes"
    for path in zips.glob("*.zip"):
        with zipfile.ZipFile(path) as archive:
            assert re.fullmatch(rb"vn-dcc commune zip sha256:[0-9a-f]{64}", archive.comment)
    read: list[str] = []
    real = communes._read_checked

    def counted(batch_dir: Path, name: str, digest: str) -> bytes:
        read.append(name)
        return real(batch_dir, name, digest)

    monkeypatch.setattr(communes, "_read_checked", counted)
    assert main(["ledger", "zips", str(out)]) == 0
    assert "0 written, 8 unchanged" in capsys.readouterr().out
    assert read == []

    # R00001 corrected: only its commune's ZIP (R00001 and R00009) is made again
    fixed = list(records)
    dose = replace(records[1].doses[0], lot="FIXED-LOT-1")
    fixed[1] = stamp(replace(records[1], doses=(dose, *records[1].doses[1:])))
    assert batch(write_records(tmp_path / "fixed.jsonl", fixed), out, ledger, key_args, "--zip-per-commune") == 0
    assert "(10 certificate(s); 1 written, 7 unchanged)" in capsys.readouterr().out
    assert sorted(read) == ["R00001.pdf", "R00001.png", "R00009.pdf", "R00009.png"]

    # a ZIP cut short, and one with another comment (an older run's): both written again
    place, other = zip_name(records[1].province, records[1].commune), zip_name(records[0].province, records[0].commune)
    data = (zips / place).read_bytes()
    (zips / place).write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(zips / other, "a") as archive:
        archive.comment = b"made by an older version"
    read.clear()
    assert main(["ledger", "zips", str(out)]) == 0
    assert "2 written, 6 unchanged" in capsys.readouterr().out
    assert sorted(read) == ["R00000.pdf", "R00000.png", "R00001.pdf", "R00001.png", "R00008.pdf", "R00008.png",
                            "R00009.pdf", "R00009.png"]  # fmt: skip
    write_commune_zips(out, tmp_path / "ref")
    assert zips_of(zips) == zips_of(tmp_path / "ref")
