"""Records, keys and checks shared by the batch tests."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from keys.secrets import KEY_PASSPHRASE_ENV
from signer.ledger import Ledger
from signer.ledger.secret import LEDGER_KEY_ENV
from signer.manifest import read_manifest
from signer.records import Record, read_records, write_jsonl
from tests.signer.conftest import EXAMPLES, TEST_PASSPHRASE, stamp, write_key_files

AT = "2026-06-01T12:00:00Z"
CENTRE = "Trạm Y tế Xã Tân Phú"
#: Files a batch leaves in its folder besides the certificates' own.
RUN_FILES = {"manifest.jsonl", "errors.csv"}


def example_records() -> list[Record]:
    return [stamp(r) for r in read_records(EXAMPLES / "records.jsonl") if isinstance(r, Record)]


def many_records(count: int) -> list[Record]:
    """``count`` verified records R00000.. made from the examples (distinct ids and citizen IDs)."""
    base = example_records()
    out = []
    for i in range(count):
        r = base[i % len(base)]
        out.append(stamp(replace(r, record_id=f"R{i:05d}", id_number=f"0790{i:08d}", line=i + 1)))
    return out


def write_records(path: Path, records: list[Record]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        write_jsonl(records, fh)
    return path


def batch_command(test_pki: Any, tmp_path: Path, monkeypatch: Any) -> Callable[..., list[str]]:
    """Set up an in-process ``signer batch`` test: the key's passphrase in the
    environment, no ledger key (the ledger makes its own), the test DSC's key
    files in ``tmp_path``. Returns ``args(source, *extra)``: the command line
    that signs ``source`` into tmp_path/out with the ledger tmp_path/ledger.sqlite."""
    monkeypatch.setenv(KEY_PASSPHRASE_ENV, TEST_PASSPHRASE)
    monkeypatch.delenv(LEDGER_KEY_ENV, raising=False)
    key, cert = write_key_files(test_pki.dsc_ec, tmp_path)
    out, ledger = tmp_path / "out", tmp_path / "ledger.sqlite"

    def args(source: Path, *extra: str) -> list[str]:
        return ["batch", str(source), "--out", str(out), "--ledger", str(ledger), "--centre", CENTRE, "--at", AT,
                "--progress", "none", "--key", str(key), "--cert", str(cert), *extra]  # fmt: skip

    return args


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_consistent(
    ledger_target: str, out: Path, record_ids: list[str], *, extra: Iterable[str] = ()
) -> dict[str, Any]:
    """Every record issued exactly once, files = ledger = manifest, nothing
    else in the folder (but ``extra``, e.g. the commune ZIPs' folder);
    returns {record_id: current certificate}."""
    ledger = Ledger.open(ledger_target, actor="check", create=False)
    try:
        current = {c.record_id: c for c in ledger.in_states(("written",), out_dir=str(out.resolve()))}
        pending = list(ledger.in_states(("reserved", "signed")))
        uvcis = [u for (u,) in ledger.db.fetchall("SELECT uvci FROM certificates")]
        from signer.ledger.audit import verify_ledger

        problems = verify_ledger(ledger)
    finally:
        ledger.close()
    assert problems == []
    assert pending == []
    assert len(uvcis) == len(set(uvcis))
    assert sorted(current) == sorted(record_ids)
    expected_files = set(RUN_FILES) | set(extra)
    for cert in current.values():
        for entry in cert.files:
            path = out / entry.name
            assert path.is_file(), entry.name
            assert path.stat().st_size == entry.size and sha256(path) == entry.sha256, entry.name
            expected_files.add(entry.name)
    on_disk = {p.name for p in out.iterdir()}
    assert on_disk == expected_files, sorted(on_disk ^ expected_files)[:10]
    manifest = read_manifest(out / "manifest.jsonl")
    assert sorted(e["uvci"] for e in manifest) == sorted(c.uvci for c in current.values())
    assert len(manifest) == len(current)
    for entry in manifest:
        cert = current[entry["record_id"]]
        assert entry["sha256"] == [f.sha256 for f in cert.files]
    return current


def read_csv_rows(path: Path) -> list[list[str]]:
    import csv

    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def as_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)


def die(*_: Any, **__: Any) -> None:
    """A stand-in that kills the process at once, as a SIGKILL would (no clean-up)."""
    os._exit(9)


def after(original: Callable[..., Any], calls: int) -> Callable[..., Any]:
    """``original``, but the process dies on call number ``calls`` (after it)."""
    count = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal count
        result = original(*args, **kwargs)
        count += 1
        if count >= calls:
            os._exit(9)
        return result

    return wrapper
