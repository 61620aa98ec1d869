"""Issuance manifest and atomic file output for signing runs.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> write_atomic(out / "a.txt", b"hello")
    >>> (out / "a.txt").read_bytes()
    b'hello'

``manifest.jsonl`` holds one JSON object per issued certificate, which is
what is needed to find and revoke a certificate later (record id -> UVCI,
kid, iat, exp) and to audit overrides. It holds no name, date of birth or
citizen ID. Fields:

``record_id``, ``line`` (in the records file), ``uvci``, ``kid`` (base64),
``iat``/``exp`` (seconds since the epoch) and ``iat_iso``/``exp_iso``,
``exp_clamped`` (exp was cut to the DSC's notAfter), ``verified`` (the
record carried a current verification stamp) and, for a record signed
without one, ``override``: ``{"operator", "reason"}``; ``files``: the
output file names.

A run adds its lines to the manifest already in the output directory; the
new manifest is written to a temporary file and renamed over the old one,
so a reader never sees a half-written manifest. Entries are streamed to a
part file during the run, so memory does not grow with the batch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from signer.issue import Issued
from verifier.errors import ConfigError
from verifier.util import write_atomic as _write_atomic

MANIFEST_NAME = "manifest.jsonl"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory + rename.

    No fsync per file: a run writes millions of small files; the manifest
    (committed last) is what records them.
    """
    _write_atomic(path, data, durable=False)


@functools.lru_cache(maxsize=4096)  # a run signs at one time: the same few values over and over
def _iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Override:
    """Who signed an unverified record, and why (issue 4: recorded with the issuance)."""

    operator: str
    reason: str


def manifest_entry(
    issued: Issued,
    *,
    line: int,
    verified: bool,
    files: tuple[str, ...],
    override: Override | None = None,
) -> dict[str, Any]:
    """The manifest object for one certificate (no personal data)."""
    entry: dict[str, Any] = {
        "record_id": issued.record_id,
        "line": line,
        "uvci": issued.uvci,
        "kid": issued.kid_b64,
        "iat": issued.iat,
        "exp": issued.exp,
        "iat_iso": _iso(issued.iat),
        "exp_iso": _iso(issued.exp),
        "exp_clamped": issued.exp_clamped,
        "verified": verified,
        "files": list(files),
    }
    if override is not None:
        entry["override"] = {"operator": override.operator, "reason": override.reason}
    return entry


class Manifest:
    """This run's entries, streamed to a part file; :meth:`commit` publishes them.

    Memory stays constant however many records a run signs: entries go to
    ``DIR/.manifest.jsonl.<pid>.part`` as they come; :meth:`commit` writes
    the old manifest followed by the part to a temporary file and renames it
    over ``manifest.jsonl`` (so readers see the old or the new manifest,
    never a mix), then removes the part file.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.count = 0
        self._part_path = out_dir / f".{MANIFEST_NAME}.{os.getpid()}.part"
        self._part: IO[str] | None = None

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    def add(self, entry: dict[str, Any]) -> None:
        if self._part is None:
            try:
                self._part = self._part_path.open("w", encoding="utf-8")
            except OSError as err:
                raise ConfigError(f"cannot write in {self.out_dir}: {err.strerror}") from None
        self._part.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._part.flush()  # a killed run leaves its UVCIs in the part file
        self.count += 1

    def commit(self) -> None:
        """Append this run's entries to the manifest file (temp file + rename)."""
        if self._part is None:
            return
        self._part.close()
        self._part = None
        # Two runs into the same directory: without a lock, each would copy the
        # old manifest and the later rename would drop the other's lines. The
        # lock is on the directory itself (flock), so no lock file is left behind.
        try:
            lock = os.open(self.out_dir, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise ConfigError(f"cannot open {self.out_dir}: {err.strerror}") from None
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._publish()
        finally:
            os.close(lock)  # releases the lock
        self._part_path.unlink()

    def _publish(self) -> None:
        """Old manifest + this run's part -> temp file -> rename (caller holds the lock)."""
        fd, tmp = tempfile.mkstemp(dir=self.out_dir, prefix=f".{MANIFEST_NAME}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                if self.path.exists():
                    with self.path.open("rb") as old:
                        shutil.copyfileobj(old, out)
                        size = old.tell()
                        if size:
                            old.seek(size - 1)
                            if old.read(1) != b"\n":
                                out.write(b"\n")
                with self._part_path.open("rb") as part:
                    shutil.copyfileobj(part, out)
            os.replace(tmp, self.path)
        except OSError as err:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise ConfigError(f"cannot write {self.path}: {err.strerror}") from None


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """All entries of a manifest file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
