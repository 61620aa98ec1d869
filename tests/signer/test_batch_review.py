"""Review of the batch signing path: issue_many against issue, the rewritten
pure helpers against their previous versions, and ``sign --jobs`` when a
worker cannot start, dies, or the run is interrupted."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import multiprocessing
import os
import shutil
import signal
import threading
import zlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.loader import key_secret, key_spec_from_args, open_key
from keys.secrets import KEY_PASSPHRASE_ENV
from signer import payload as payload_module
from signer.cli import build_parser, main
from signer.issue import Hc1Issuer, Issued
from signer.manifest import read_manifest
from signer.payload import latest_dose
from signer.records import Dose, Record, RowProblem
from signer.run import Options, SigningRun, WorkerSetup, build_signer
from tests.fixtures.pki import TestPki as Pki
from verifier.codec import b45encode, b45encode_many, zlib_stored
from verifier.crypto import ecdsa_der_to_raw
from verifier.errors import ConfigError, InputError, KeyBackendError
from verifier.uvci import LUHN_ALPHABET, with_checksum, with_checksums

from .conftest import TEST_PASSPHRASE, stamp
from .test_cli import AT, NOW, key_args, write_records
from .test_issue import cose_of

ISSUER = "Ministry of Health of Viet Nam"


# --------------------------------------------------------------------------
# issue_many against issue


def payload_of(issued: Issued) -> bytes:
    """The signed CWT payload (the signature itself is randomised)."""
    return bytes(cbor2.loads(cose_of(issued.hc1)).value[2])


def odd_records(examples: list[Record]) -> list[Record]:
    base = examples[0]
    d1 = base.doses[0]
    tie = stamp(replace(base, record_id="TIE", doses=(replace(d1, dose_number=2), replace(d1, dose_number=2, lot="B"))))
    newest_unknown = stamp(
        replace(base, record_id="NEWEST-UNKNOWN", doses=(d1, replace(d1, date="2022-12-01", vaccine="Covaxin", dose_number=3)))
    )
    old_unknown = stamp(
        replace(base, record_id="OLD-UNKNOWN", doses=(replace(d1, date="2020-12-30", vaccine="Covaxin"), replace(d1, date="2022-01-01")))
    )
    return [
        tie,
        newest_unknown,
        old_unknown,
        stamp(replace(base, record_id="NO-DOSES", doses=())),
        stamp(replace(base, record_id="NO-NAME", full_name="")),
        stamp(replace(base, record_id="BAD-NATIONALITY", nationality="Việt Nam")),
        stamp(replace(base, record_id="BAD-DATE", doses=(replace(d1, date="2021-02-30"),))),
        replace(base, record_id="UNVERIFIED", verified=""),
        base,
        base,  # the same object twice
    ]


def test_issue_many_equals_issue_one_by_one(test_pki: Pki, example_records: list[Record], now: dt.datetime) -> None:
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    records = odd_records(example_records) + example_records
    # a given UVCI for every third record; "" (a fresh one, as issue(uvci="")) or None otherwise
    uvcis = [f"URN:UVCI:01:VN:REVIEW{i:04d}" if i % 3 == 0 else ("" if i % 2 else None) for i in range(len(records))]
    uvcis = [with_checksum(u) if u else u for u in uvcis]
    batch = issuer.issue_many(records, now=now, uvcis=uvcis)
    assert len(batch) == len(records)
    seen_uvcis = set()
    for record, uvci, got in zip(records, uvcis, batch, strict=True):
        try:
            one: Issued | InputError = issuer.issue(record, now=now, uvci=uvci or None)
        except InputError as err:
            one = err
        assert type(got) is type(one), record.record_id
        if isinstance(got, InputError):
            assert str(got) == str(one)
            continue
        assert isinstance(one, Issued)
        assert got.record_id == record.record_id
        if uvci:
            assert got.uvci == uvci == one.uvci
            assert payload_of(got) == payload_of(one)
        else:
            assert got.uvci not in seen_uvcis
            assert dict(got.dcc, v=None) == dict(one.dcc, v=None)
        seen_uvcis.add(got.uvci)
        assert got.dcc["v"][0]["ci"] == got.uvci
    by_id = {r.record_id: res for r, res in zip(records, batch, strict=True)}
    assert isinstance(by_id["TIE"], Issued) and by_id["TIE"].dcc["v"][0]["dn"] == 2
    assert "unknown vaccine 'Covaxin'" in str(by_id["NEWEST-UNKNOWN"])
    assert isinstance(by_id["OLD-UNKNOWN"], Issued)  # only the latest dose is checked
    assert str(by_id["NO-DOSES"]) == "record has no doses"
    assert "verification stamp" in str(by_id["UNVERIFIED"])


def test_issue_many_all_failing_and_empty(test_pki: Pki, example_records: list[Record], now: dt.datetime) -> None:
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    assert issuer.issue_many([], now=now) == []
    bad = [replace(r, verified="") for r in example_records]
    results = issuer.issue_many(bad, now=now)
    assert all(isinstance(r, InputError) for r in results) and len(results) == len(bad)
    with pytest.raises(ConfigError):
        issuer.issue_many(example_records, now=now, uvcis=[None])


@pytest.mark.parametrize("country", ["vn", "V", "VNM", ""])
def test_bad_country_is_a_configuration_error(test_pki: Pki, country: str) -> None:
    """It used to pass the constructor and fail every issue_many call with an
    InputError for the whole batch (issue_many promises one result per record)."""
    with pytest.raises(ConfigError, match="UVCI country"):
        Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER, country=country)


def test_one_issuer_from_two_threads(test_pki: Pki, example_records: list[Record], now: dt.datetime) -> None:
    issuer = Hc1Issuer(test_pki.dsc_ec, issuer_name=ISSUER)
    later = now + dt.timedelta(days=1)
    errors: list[BaseException] = []

    def work(when: dt.datetime) -> None:
        try:
            for _ in range(15):
                for record, got in zip(example_records, issuer.issue_many(example_records, now=when), strict=True):
                    assert isinstance(got, Issued) and got.record_id == record.record_id
                    claims = cbor2.loads(payload_of(got))
                    assert claims[6] == int(when.timestamp()) == got.iat  # iat of this thread's clock
                    assert claims[-260][1]["nam"] == got.dcc["nam"]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in (now, later)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --------------------------------------------------------------------------
# rewritten helpers against the previous versions (git show 1556a90)


def old_latest_dose(record: Record) -> tuple[int, Dose]:
    if not record.doses:
        raise InputError("record has no doses")
    for i, dose in enumerate(record.doses, start=1):
        payload_module.check_dose_date(dose.date, i)
    if len(record.doses) == 1:
        return 1, record.doses[0]
    index = max(range(len(record.doses)), key=lambda i: (record.doses[i].date, record.doses[i].dose_number))
    return index + 1, record.doses[index]


ALPHA3 = json.loads((Path(__file__).parents[2] / "templates" / "countries.json").read_text())[
    "alpha3_to_alpha2"
]


def old_nationality(value: str) -> str:
    """The reference: alpha-2 as before, plus ISO alpha-3 codes mapped (issue 9, point 3)."""
    if not value:
        return "VN"
    if value in ALPHA3:
        return str(ALPHA3[value])
    if len(value) != 2 or not value.isascii() or not value.isalpha() or not value.isupper():
        raise InputError("nationality is not an ISO 3166-1 code")
    return value


def outcome(f: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", f(*args)
    except InputError as err:
        return "error", str(err)


DATES = st.sampled_from(["2021-03-01", "2021-03-01", "2021-12-31", "2022-01-01", "2019-12-31", "2021-02-29", "2021-3-1", "", "2024-02-29"])
DOSES = st.builds(Dose, date=DATES, vaccine=st.just("Pfizer"), lot=st.sampled_from(["", "A"]), dose_number=st.integers(0, 4))


@settings(max_examples=400, deadline=None)
@given(st.lists(DOSES, max_size=5))
def test_latest_dose_as_before(doses: list[Dose]) -> None:
    record = Record("R", "Nguyen Van A", "1980", "M", "VN", "", doses=tuple(doses))
    assert outcome(latest_dose, record) == outcome(old_latest_dose, record)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=3), st.sampled_from(
    ["VN", "US", "vn", "Vn", "ÀB", "V1", "ＶＮ", "", "ǅA", "VNM", "KOR", "USA", "XXX", "vnm", "VNM "]
)))  # fmt: skip
def test_nationality_as_before(value: str) -> None:
    got, want = outcome(payload_module._nationality, value), outcome(old_nationality, value)
    assert got[0] == want[0] and (got[0] == "error" or got == want)
    for accepted, alpha2 in payload_module._GOOD_NATIONALITIES.items():  # nothing bad cached
        assert outcome(old_nationality, accepted) == ("ok", alpha2)


@settings(max_examples=200, deadline=None)
@given(st.text(LUHN_ALPHABET, max_size=12), st.integers(1, 5), st.integers(0, 4), st.data())
def test_with_checksums_as_with_checksum(head: str, half: int, count: int, data: st.DataObject) -> None:
    length = 2 * half
    parts = data.draw(st.text(LUHN_ALPHABET, min_size=length * count, max_size=length * count))
    expected = [with_checksum(head + parts[i : i + length]) for i in range(0, len(parts), length)]
    assert with_checksums(head, parts.encode("ascii"), length) == expected


@pytest.mark.parametrize(("head", "parts"), [("a", b"AB"), ("A", b"aB"), ("A", b"A\xff"), ("A", b"ABC")])
def test_with_checksums_refuses_other_characters(head: str, parts: bytes) -> None:
    with pytest.raises(InputError):
        with_checksums(head, parts, 2)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=9), max_size=6), st.sampled_from(["", "HC1:"]))
def test_b45encode_many_as_b45encode(chunks: list[bytes], prefix: str) -> None:
    assert b45encode_many(chunks, prefix=prefix) == [prefix + b45encode(c) for c in chunks]


@pytest.mark.parametrize("size", [0, 1, 65534, 65535, 65536, 131070, 131071])
def test_zlib_stored_block_boundaries(size: int) -> None:
    data = os.urandom(size)
    stream = zlib_stored(data)
    assert int.from_bytes(stream[:2], "big") % 31 == 0
    blocks = -(-size // 65535) or 1
    assert len(stream) == 2 + 5 * blocks + size + 4
    for wbits in (9, 15, 0):
        inflater = zlib.decompressobj(wbits)
        assert inflater.decompress(stream) == data and inflater.eof and not inflater.unused_data


def old_der_to_raw(der: bytes, size: int) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_or_error(der: bytes, size: int) -> tuple[str, bytes | None]:
    try:
        return "ok", ecdsa_der_to_raw(der, size)
    except (ValueError, OverflowError):
        return "error", None


@settings(max_examples=600, deadline=None)
@given(st.integers(0, 2**264), st.integers(0, 2**264), st.sampled_from([32, 48]), st.data())
def test_ecdsa_der_to_raw_as_before(r: int, s: int, size: int, data: st.DataObject) -> None:
    der = encode_dss_signature(r, s)
    at = data.draw(st.integers(0, len(der) - 1))
    mutated = der[:at] + bytes([data.draw(st.integers(0, 255))]) + der[at + 1 :]
    for candidate in (der, mutated, der + data.draw(st.binary(min_size=1, max_size=2))):
        try:
            expected: tuple[str, bytes | None] = ("ok", old_der_to_raw(candidate, size))
        except (ValueError, OverflowError):
            expected = ("error", None)
        assert raw_or_error(candidate, size) == expected, candidate.hex()


# --------------------------------------------------------------------------
# sign --jobs


def test_negative_jobs_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("-1", "two"):
        with pytest.raises(SystemExit) as exit_info:
            main(["sign", str(tmp_path / "in.jsonl"), "--out", str(tmp_path / "out"), "--jobs", bad])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "argument --jobs" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@contextlib.contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Turn a hang into a test failure."""

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def make_run(
    key_files: tuple[Path, Path], out: Path, *, jobs: int = 2, key_for_workers: Path | None = None
) -> tuple[SigningRun, contextlib.ExitStack]:
    """A run as ``run_sign`` sets it up; the workers may get another key path."""
    args = ["sign", "unused.jsonl", "--out", str(out), "--at", AT, *key_args(key_files)]
    ns = build_parser().parse_args(args)
    spec = key_spec_from_args(ns)
    options = Options(now=NOW, allow_unverified=False, png=False, svg=False)
    secret = key_secret(spec)
    stack = contextlib.ExitStack()
    key = stack.enter_context(open_key(spec, secret=secret))
    worker_spec = spec if key_for_workers is None else replace(spec, key_path=key_for_workers)  # type: ignore[type-var]
    setup = WorkerSetup(spec=worker_spec, secret=secret, ns=ns, options=options)
    assert TEST_PASSPHRASE not in repr(setup) and TEST_PASSPHRASE not in str(setup)
    out.mkdir()
    run = SigningRun(out, signer=build_signer(key, ns, options), override=None, err=__import__("sys").stderr, workers=(jobs, setup))
    return run, stack


def renamed(records: list[Record], count: int) -> list[Record]:
    return [stamp(replace(records[i % len(records)], record_id=f"R{i:03d}", line=i + 1)) for i in range(count)]


@pytest.fixture()
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    monkeypatch.setattr("signer.run.BATCH_SIZE", 2)


def test_worker_that_cannot_open_the_key_stops_the_run(
    small_batches: None, ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path
) -> None:
    """It used to hang: multiprocessing.Pool restarted the failing worker forever."""
    gone = tmp_path / "gone.key.pem"
    run, stack = make_run(ec_key_files, tmp_path / "out", key_for_workers=gone)
    with stack, deadline(60), pytest.raises(KeyBackendError, match="cannot read"):
        run.sign_all(renamed(example_records, 5))
    assert run.signed == 0 and not multiprocessing.active_children()


def test_killed_worker_stops_the_run(
    small_batches: None, ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path
) -> None:
    """It used to hang: the killed worker's batch was never answered."""
    records = renamed(example_records, 12)

    def items() -> Iterator[Record | RowProblem]:
        for i, record in enumerate(records):
            if i == 6:  # three batches handed out: kill the workers
                for child in multiprocessing.active_children():
                    with contextlib.suppress(ProcessLookupError):  # the pool stops the others
                        os.kill(child.pid or 0, signal.SIGKILL)
            yield record

    out = tmp_path / "out"
    run, stack = make_run(ec_key_files, out)
    with stack, deadline(60), pytest.raises(ConfigError, match="stopped unexpectedly"):
        run.sign_all(items())
    run.manifest.commit()
    written = [e["record_id"] for e in read_manifest(out / "manifest.jsonl")] if run.signed else []
    assert written == [r.record_id for r in records[: len(written)]] and len(written) < len(records)
    assert sorted(p.name for p in out.glob("*.hc1.txt")) == sorted(f"{rid}.hc1.txt" for rid in written)
    assert not multiprocessing.active_children()


def test_ctrl_c_stops_workers_without_tracebacks(
    small_batches: None,
    ec_key_files: tuple[Path, Path],
    example_records: list[Record],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C reaches every process of the group: the workers used to print a
    KeyboardInterrupt traceback each."""
    records = renamed(example_records, 12)

    def items() -> Iterator[Record | RowProblem]:
        for i, record in enumerate(records):
            if i == 6:
                for child in multiprocessing.active_children():  # just started: SIGINT may be blocked yet
                    os.kill(child.pid or 0, signal.SIGINT)
                threading.Event().wait(0.5)  # time for a worker to print
                raise KeyboardInterrupt
            yield record

    run, stack = make_run(ec_key_files, tmp_path / "out")
    with stack, deadline(60), pytest.raises(KeyboardInterrupt):
        run.sign_all(items())
    err = capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not multiprocessing.active_children()


def test_more_jobs_than_batches_and_duplicates_across_batches(
    small_batches: None, ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = renamed(example_records, 7)
    records[5] = replace(records[0], line=6)  # duplicate id, two batches later
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    key_copy = tmp_path / "k"
    key_copy.mkdir()
    files = (Path(shutil.copy(ec_key_files[0], key_copy)), Path(shutil.copy(ec_key_files[1], key_copy)))
    assert main(["sign", str(source), "--out", str(out), "--at", AT, "--jobs", "9", *key_args(files)]) == 1
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if line.startswith("line ")] == ["line 6: record R000: duplicate record id in this file"]
    manifest = read_manifest(out / "manifest.jsonl")
    assert [e["line"] for e in manifest] == [1, 2, 3, 4, 5, 7]


def test_pdf_with_token_and_two_jobs(
    softhsm_token: Any,
    softhsm_pin_env: str,
    test_pki: Pki,
    example_records: list[Record],
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--pdf with two worker processes (--jobs 3), each logging in to the token: every
    record's PDF and HC1, the manifest in input order, the PIN nowhere."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.fixtures.pki import empty_crl

    monkeypatch.setattr("signer.run.BATCH_SIZE", 2)
    sign_time = NOW - dt.timedelta(days=2)
    csca = softhsm_token.csca
    crl = empty_crl(csca, test_pki.csca_key, at=sign_time)
    (tmp_path / "csca.pem").write_bytes(csca.public_bytes(Encoding.PEM))
    (tmp_path / "csca.crl").write_bytes(crl.public_bytes(Encoding.DER))
    records = renamed(example_records, 5)
    records[3] = stamp(replace(records[3], doses=(replace(records[3].doses[0], vaccine="Covaxin"),)))
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    args = ["sign", str(source), "--out", str(out), "--at", sign_time.isoformat(), "--jobs", "3", "--pdf"]
    args += ["--pkcs11-module", softhsm_token.module, "--token-label", softhsm_token.token_label, "--key-label", "dsc-ec"]
    args += ["--chain", str(tmp_path / "csca.pem"), "--crl", str(tmp_path / "csca.crl"), "--centre", "Trạm Y tế Xã Tân Phú"]
    assert main(args) == 1
    captured = capfd.readouterr()
    assert softhsm_pin_env not in captured.out + captured.err
    assert [line for line in captured.err.splitlines() if line.startswith("line ")] == [
        "line 4: record R003: dose 1: unknown vaccine 'Covaxin' (see templates/vaccines.json)"
    ]
    manifest = read_manifest(out / "manifest.jsonl")
    assert [e["record_id"] for e in manifest] == ["R000", "R001", "R002", "R004"]
    for entry in manifest:
        assert entry["files"] == [f"{entry['record_id']}.hc1.txt", f"{entry['record_id']}.pdf", f"{entry['record_id']}.png"]
        assert (out / f"{entry['record_id']}.pdf").read_bytes().startswith(b"%PDF-")
    assert not (out / "R003.pdf").exists()


def test_unwritable_output_mid_run_with_two_jobs(
    small_batches: None, ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A file that cannot be written (a directory in its place) in the second
    batch: the run stops with one line, the workers stop, the manifest holds
    exactly the records written before."""
    records = renamed(example_records, 8)
    source = write_records(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    (out / "R003.hc1.txt").mkdir(parents=True)
    assert main(["sign", str(source), "--out", str(out), "--at", AT, "--jobs", "2", *key_args(ec_key_files)]) == 2
    err = capfd.readouterr().err
    assert err.startswith("error: line 4: record R003: cannot write") and len(err.splitlines()) == 1, err
    assert [e["record_id"] for e in read_manifest(out / "manifest.jsonl")] == ["R000", "R001", "R002"]
    assert sorted(p.name for p in out.iterdir() if p.name != "R003.hc1.txt") == sorted(
        ["manifest.jsonl", *(f"R00{i}.{ext}" for i in range(3) for ext in ("hc1.txt", "png"))]
    )
    assert not multiprocessing.active_children()


def children_of(pid: int) -> set[int]:
    """Live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def workers_until_written(proc: Any, out: Path, count: int) -> set[int]:
    """The run's worker processes seen until ``count`` HC1 files are in
    ``out`` (or the run ended, or 60 s passed)."""
    import time

    workers: set[int] = set()
    end = time.monotonic() + 60
    while time.monotonic() < end and proc.poll() is None:
        workers |= children_of(proc.pid)
        if out.is_dir() and sum(1 for p in out.iterdir() if p.name.endswith(".hc1.txt")) >= count:
            break
        time.sleep(0.02)
    return workers


def assert_listed_as_written(out: Path, *, at_least: int) -> None:
    """Every HC1 file in ``out`` has its manifest line and every line its file (at least ``at_least``)."""
    listed = {e["record_id"] for e in read_manifest(out / "manifest.jsonl")}
    written = {p.name.removesuffix(".hc1.txt") for p in out.iterdir() if p.name.endswith(".hc1.txt")}
    assert len(written) >= at_least and written == listed


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_the_run_is_killed(
    ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path
) -> None:
    """SIGKILL of `signer sign --jobs 3` (the run and 2 workers; nothing can
    stop the workers then): the workers used to wait for work forever, with
    the key open."""
    import subprocess
    import sys
    import time

    source = write_records(tmp_path / "in.jsonl", renamed(example_records, 3000))
    env = {**os.environ, KEY_PASSPHRASE_ENV: TEST_PASSPHRASE}
    args = [sys.executable, "-m", "signer", "sign", str(source), "--out", str(tmp_path / "out"), "--at", AT, "--jobs", "3"]
    proc = subprocess.Popen([*args, *key_args(ec_key_files)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + 60
        while len(workers := children_of(proc.pid)) < 2 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        assert len(workers) == 2, "the workers did not start"
    finally:
        proc.kill()
        proc.wait()
    end = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < end:
        time.sleep(0.1)
    left = [pid for pid in workers if alive(pid)]
    for pid in left:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert left == []
    assert proc.stderr is not None and b"Traceback" not in proc.stderr.read()


def test_ctrl_c_between_two_files_of_a_record(
    ec_key_files: tuple[Path, Path],
    example_records: list[Record],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real SIGINT while the third record's PNG is written (its HC1 file is
    already there): that HC1 file used to stay, without a manifest line. Now
    the interrupt is held back until the record is written and listed."""
    import signer.run

    real_write = signer.run.write_atomic

    def write_then_interrupted(path: Path, data: bytes) -> None:
        if path.name == "R002.png":
            os.kill(os.getpid(), signal.SIGINT)  # delivered inside the real write
        real_write(path, data)

    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    monkeypatch.setattr("signer.run.write_atomic", write_then_interrupted)
    source = write_records(tmp_path / "in.jsonl", renamed(example_records, 4))
    out = tmp_path / "out"
    assert main(["sign", str(source), "--out", str(out), "--at", AT, *key_args(ec_key_files)]) == 2
    assert capsys.readouterr().err == "error: interrupted\n"
    assert [e["record_id"] for e in read_manifest(out / "manifest.jsonl")] == ["R000", "R001", "R002"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.jsonl", *(f"R00{i}.{ext}" for i in range(3) for ext in ("hc1.txt", "png"))]
    )


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_sigterm_ends_the_run_with_its_manifest(
    ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path, jobs: str
) -> None:
    """`kill` (SIGTERM) mid-run: exit 2 with one line, and every certificate
    written so far is listed in the committed manifest (the process used to
    die with signed files no manifest line listed); no worker, no temp file left."""
    import subprocess
    import sys
    import time

    source = write_records(tmp_path / "in.jsonl", renamed(example_records, 3000))
    out = tmp_path / "out"
    env = {**os.environ, KEY_PASSPHRASE_ENV: TEST_PASSPHRASE}
    args = [sys.executable, "-m", "signer", "sign", str(source), "--out", str(out), "--at", AT, "--jobs", jobs]
    proc = subprocess.Popen([*args, *key_args(ec_key_files)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        workers = workers_until_written(proc, out, 300)
        assert proc.poll() is None, "the run ended before it could be stopped"
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert err.decode().strip().splitlines() == ["error: interrupted"]
    assert_listed_as_written(out, at_least=300)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    end = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < end:
        time.sleep(0.1)
    assert not [pid for pid in workers if alive(pid)]


#: `signer sign --jobs 3` whose two workers, on SIGTERM (sent by the run's abort), are
#: one stopped half-way through sending a result (the pool's manager thread then
#: waits for the rest of the message, as in 1 kill in 26 of a real run) and one
#: slow to die (3 s: a thread in fdatasync on a loaded disk). Fault injection in
#: the workers only: the run's abort and shutdown are the code under test.
TWO_FAULTY_WORKERS = """
import os, signal, struct, sys, time
import signer.run as run
from signer.cli import main

marker = sys.argv[1]
start = run._start_worker


def stopped_mid_result(signum, frame):
    while frame is not None and frame.f_code.co_name != "_process_worker":
        frame = frame.f_back
    writer = frame.f_locals["result_queue"]._writer
    os.write(writer.fileno(), struct.pack("!i", 10_000_000) + b"\\x80\\x04part")
    os._exit(1)


def slow_to_die(signum, frame):
    time.sleep(3)
    os._exit(1)


def start_worker(*args):
    start(*args)
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        signal.signal(signal.SIGTERM, stopped_mid_result)
    except FileExistsError:
        signal.signal(signal.SIGTERM, slow_to_die)


run._start_worker = start_worker
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("signals", [1, 2])
def test_run_stopped_once_or_twice_ends(
    ec_key_files: tuple[Path, Path], example_records: list[Record], tmp_path: Path, signals: int
) -> None:
    """SIGTERM, then (2) a second one while the run's abort waits for the
    worker slow to die: the run ends with exit 2 and its manifest within the
    time limit, and no worker is left. The second signal used to break out
    of the abort's wait, skipping the manager's unblocking and the pool's
    shutdown: the process then hung at exit. With one signal, it fails if the
    abort only terminates the workers (the manager's wait is never ended)."""
    import subprocess
    import sys
    import time

    source = write_records(tmp_path / "in.jsonl", renamed(example_records, 3000))
    out = tmp_path / "out"
    env = {**os.environ, KEY_PASSPHRASE_ENV: TEST_PASSPHRASE}
    args = [sys.executable, "-c", TWO_FAULTY_WORKERS, str(tmp_path / "first-worker"), "sign", str(source),
            "--out", str(out), "--at", AT, "--jobs", "3", *key_args(ec_key_files)]  # fmt: skip
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    workers: set[int] = set()
    try:
        workers = workers_until_written(proc, out, 300)
        assert proc.poll() is None and len(workers) == 2, "the run ended before it could be stopped"
        proc.terminate()
        if signals == 2:
            time.sleep(0.5)  # the abort waits for the slow worker (3 s)
            proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the run did not end within 30 s of the signal")
    finally:
        if proc.poll() is None:  # hung: clean up before failing
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    left = [pid for pid in workers if alive(pid)]  # the run ended: its workers were gone before
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 2, err.decode()
    assert err.decode().strip().splitlines() == ["error: interrupted"]
    assert_listed_as_written(out, at_least=300)
    assert left == []
