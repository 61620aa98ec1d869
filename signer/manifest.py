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
so a reader never sees a half-written manifest.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.issue import Issued
from verifier.errors import ConfigError

MANIFEST_NAME = "manifest.jsonl"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same directory + rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


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


@dataclass
class Manifest:
    """Collects the entries of one run; :meth:`commit` writes them atomically."""

    out_dir: Path
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    def add(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)

    def commit(self) -> None:
        """Append this run's entries to the manifest file (temp file + rename)."""
        if not self.entries:
            return
        try:
            old = self.path.read_bytes() if self.path.exists() else b""
        except OSError as err:
            raise ConfigError(f"cannot read {self.path}: {err.strerror}") from None
        if old and not old.endswith(b"\n"):
            old += b"\n"
        new = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in self.entries)
        write_atomic(self.path, old + new.encode("utf-8"))


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """All entries of a manifest file."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
