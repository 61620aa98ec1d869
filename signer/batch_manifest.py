"""The manifest of a batch folder, made from the ledger and appended to (issue 10).

    >>> # manifest = manifest_of(ledger, output)   # one per locked BatchOutput
    >>> # after each batch's 'written' commit:  manifest.append_new()
    >>> # at the end:  write_manifest(ledger, output)   # -> lines, or None (up to date)

``DIR/manifest.jsonl`` holds one line per current (``written``) certificate
of the folder, in issuance order (ledger id), and nothing else. Made whole
from the ledger it costs about 27 us per certificate (2.7 s of CPU for
100,000), which is most of what a resumed or a small follow-up run adds to a
big folder. So a run that only *adds* certificates appends their lines:

- **where**: to the hidden work file ``DIR/.manifest.jsonl.work``, after each
  batch's ``written`` commit, never to ``manifest.jsonl`` itself: a write
  interrupted by SIGKILL (the kernel stops a write between pages) or a power
  cut can leave half a line, and no reader may ever see one. At the end the
  work file is flushed (fdatasync) and renamed over ``manifest.jsonl``, then
  the folder is flushed: readers see the old or the new manifest, whole.
- **what the ledger knows**: ``ledger_meta`` entry ``manifest-tail:DIR`` =
  ``{"id": W, "lines": N, "bytes": L, "sha256": H}``: the first ``L`` bytes of
  the work file (or of ``manifest.jsonl`` once published) are the ``N`` lines
  of the folder's written certificates with id <= ``W``, and hash to ``H``.
  It is stored in the *next* batch's ``written`` transaction (so it names
  only bytes already written: a kill can leave more, never less) and before
  the rename at the end. No fsync per batch: the SHA-256 check below is what
  makes a short or damaged work file harmless.
- **after a kill**: the next run checks the work file's first ``L`` bytes
  against ``H``, cuts off the rest (a half line, or lines the ledger entry
  did not name yet) and appends the certificates written with id > ``W``.
- **the next run into a finished folder**: ``manifest.jsonl`` is the base
  when its size is ``L`` and its bytes hash to ``H``; it is copied to a new
  work file (a published manifest is never written again) and appended to.
- **made whole instead**, exactly as before (the same bytes: one line per
  written certificate in id order): when a line must change or go (a
  certificate superseded, revoked, released by ``signer ledger release``, or
  its files written again: the ``manifest-stale:DIR`` flag, set in the same
  transaction as the change), when no base matches, when the number of lines
  is not the ledger's count of written certificates of the folder (something
  the appends could not see, e.g. an older reservation written late), and
  for ``signer ledger manifest`` (``force``).

Only the process that holds the folder's lock appends (``signer batch``; not
the Celery workers, whose coordinator makes the manifest at the end).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signer.ledger.store import MANIFEST_STALE, Certificate, Ledger
from signer.manifest import MANIFEST_NAME, _iso

if TYPE_CHECKING:
    from signer.batch import BatchOutput

WORK_NAME = f".{MANIFEST_NAME}.work"
#: ``ledger_meta`` entry (+ the folder's path): what the work file holds (see the module).
MANIFEST_TAIL = "manifest-tail:"
#: Bytes per write() of an append (a kill between two leaves a half line: see tests/ledger/test_manifest_append.py).
APPEND_CHUNK = 1 << 16
_READ = 1 << 20
#: json.dumps(entry, ensure_ascii=False), with one encoder for all lines
_LINE = json.JSONEncoder(ensure_ascii=False).encode


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def manifest_entry_of(cert: Certificate) -> dict[str, Any]:
    """The manifest line of a current certificate (as ``signer sign`` writes
    them, plus ``sha256`` of each file, ``generation``, and the record's
    ``province`` and ``commune``: null for certificates reserved before the
    ledger had them)."""
    entry: dict[str, Any] = {
        "record_id": cert.record_id,
        "line": cert.line,
        "uvci": cert.uvci,
        "kid": cert.kid,
        "iat": cert.iat,
        "exp": cert.exp,
        "iat_iso": _iso(cert.iat or 0),
        "exp_iso": _iso(cert.exp or 0),
        "exp_clamped": bool(cert.exp_clamped),
        "verified": cert.verified,
        "files": [f.name for f in cert.files],
        "sha256": [f.sha256 for f in cert.files],
        "generation": cert.generation,
        "province": cert.province,  # the record's place: signer.communes makes one ZIP per commune
        "commune": cert.commune,
    }
    if cert.override_reason is not None:
        entry["override"] = {"operator": cert.override_operator, "reason": cert.override_reason}
    return entry


@dataclass(frozen=True)
class Tail:
    """What the first ``size`` bytes of the work file hold (see the module)."""

    id: int
    lines: int
    size: int
    sha256: str

    def text(self) -> str:
        return json.dumps(
            {"id": self.id, "lines": self.lines, "bytes": self.size, "sha256": self.sha256}
        )

    @classmethod
    def parse(cls, text: str | None) -> Tail | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            tail = cls(int(data["id"]), int(data["lines"]), int(data["bytes"]), str(data["sha256"]))
        except (ValueError, KeyError, TypeError):
            return None
        return tail if min(tail.id, tail.lines, tail.size) >= 0 else None


class ManifestFile:
    """The manifest of one locked batch folder: appends during a run, the
    rename at the end (see the module)."""

    def __init__(self, ledger: Ledger, output: BatchOutput) -> None:
        self.ledger = ledger
        self.folder = output.path
        self.path = output.path / MANIFEST_NAME
        self.work = output.path / WORK_NAME
        self.stale_key = MANIFEST_STALE + output.key
        self.tail_key = MANIFEST_TAIL + output.key
        self.out_dir = output.key
        #: this run changed or removed lines: appending is pointless, the end makes it whole
        self.whole = False
        self._fd: int | None = None  # the work file, open for appending
        self._id = self._lines = self._size = 0
        self._hash = hashlib.sha256()
        self._stored: str | None = None  # the tail entry last committed

    # -- during the run ---------------------------------------------------
    def tail_meta(self) -> dict[str, str]:
        """The ``ledger_meta`` entry for what the work file holds now, if it
        changed: to be committed with the next change (one batch behind)."""
        if self._fd is None:
            return {}
        text = self._tail().text()
        return {} if text == self._stored else {self.tail_key: text}

    def stored(self, meta: dict[str, str]) -> None:
        """``meta`` (from :meth:`tail_meta`) is committed."""
        if self.tail_key in meta:
            self._stored = meta[self.tail_key]

    def append_new(self) -> None:
        """Append the lines of the folder's certificates written since (id > W)."""
        if self.whole:
            return
        if self._fd is None:
            self._open()
        self._append(self.ledger.in_states(("written",), out_dir=self.out_dir, after=self._id))

    # -- the end ----------------------------------------------------------
    def publish(self, *, force: bool = False) -> int | None:
        """Bring ``manifest.jsonl`` up to date (see the module); the number of
        lines, or None when it already was."""
        stale = self.ledger.get_meta(
            self.stale_key
        )  # None (never set), "0" (up to date) or when it changed
        whole = force or self.whole or stale not in (None, "0")
        if whole:
            self._start_empty()
        elif self._fd is None and self._up_to_date():
            return None
        elif self._fd is None:
            self._open()
        self._append(self.ledger.in_states(("written",), out_dir=self.out_dir, after=self._id))
        assert self._fd is not None
        if not whole and (self._lines != self._written() or os.fstat(self._fd).st_size != self._size):
            # a certificate the appends could not see (written with an id below W), or
            # bytes the tail does not name (a failed write): made whole, as before
            self._start_empty()
            self._append(self.ledger.in_states(("written",), out_dir=self.out_dir))
        fd = self._fd
        assert fd is not None
        os.fdatasync(fd)
        tail = self._tail().text()
        # up to date, unless the ledger changed for this folder meanwhile (a revocation)
        if not self.ledger.set_meta(
            {self.stale_key: "0", self.tail_key: tail}, only_if={self.stale_key: stale}
        ):
            self.ledger.set_meta({self.tail_key: tail})
        self._stored = tail
        os.replace(self.work, self.path)
        fsync_dir(self.folder)
        self.close()
        return self._lines

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # -- helpers ----------------------------------------------------------
    def _tail(self) -> Tail:
        return Tail(self._id, self._lines, self._size, self._hash.hexdigest())

    def _written(self) -> int:
        row = self.ledger.db.fetchone(
            "SELECT COUNT(*) FROM certificates WHERE out_dir = ? AND state = 'written'",
            (self.out_dir,),
        )
        return int(row[0]) if row else 0

    def _up_to_date(self) -> bool:
        """Nothing to do: no work file left, ``manifest.jsonl`` as published, nothing written since."""
        tail = Tail.parse(self.ledger.get_meta(self.tail_key))
        if tail is None or self.work.exists():
            return False
        try:
            if self.path.stat().st_size != tail.size:
                return False
        except OSError:
            return False
        newer = self.ledger.db.fetchone(
            "SELECT 1 FROM certificates WHERE out_dir = ? AND state = 'written' AND id > ? LIMIT 1",
            (self.out_dir, tail.id),
        )
        return newer is None and self._written() == tail.lines

    def _open(self) -> None:
        """Continue the work file a killed run left, or the published manifest, or start empty."""
        tail = Tail.parse(self.ledger.get_meta(self.tail_key))
        if tail is not None and (self._adopt_work(tail) or self._adopt_published(tail)):
            self._stored = tail.text()
            return
        self._start_empty()

    def _adopt_work(self, tail: Tail) -> bool:
        try:
            fd = os.open(self.work, os.O_RDWR | os.O_APPEND)
        except OSError:
            return False
        try:
            digest = _hash_prefix(fd, tail.size)
            if digest is None or digest.hexdigest() != tail.sha256:
                os.close(fd)
                return False
            os.ftruncate(
                fd, tail.size
            )  # what a killed run wrote after the ledger's entry: met again below
        except OSError:
            os.close(fd)
            return False
        self._use(fd, tail, digest)
        return True

    def _adopt_published(self, tail: Tail) -> bool:
        try:
            src = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            if os.fstat(src).st_size != tail.size:
                return False
            fd = _create(self.work)
            digest = hashlib.sha256()
            while chunk := os.read(src, _READ):
                digest.update(chunk)
                _write_all(fd, chunk)
        finally:
            os.close(src)
        if digest.hexdigest() != tail.sha256 or os.fstat(fd).st_size != tail.size:
            os.close(fd)
            return False
        self._use(fd, tail, digest)
        return True

    def _use(self, fd: int, tail: Tail, digest: Any) -> None:
        self.close()
        self._fd, self._hash = fd, digest
        self._id, self._lines, self._size = tail.id, tail.lines, tail.size

    def _start_empty(self) -> None:
        self.close()
        self._fd = _create(self.work)
        self._hash = hashlib.sha256()
        self._id = self._lines = self._size = 0
        self._stored = None

    def _append(self, certs: Iterable[Certificate]) -> None:
        fd = self._fd
        assert fd is not None
        parts: list[str] = []
        last = self._id
        for cert in certs:
            parts.append(_LINE(manifest_entry_of(cert)))
            last = cert.id
            if len(parts) >= 4096:
                self._write(parts, last)
                parts = []
        if parts:
            self._write(parts, last)

    def _write(self, parts: list[str], last: int) -> None:
        data = ("\n".join(parts) + "\n").encode("utf-8")
        fd = self._fd
        assert fd is not None
        try:
            for start in range(0, len(data), APPEND_CHUNK):
                _write_all(fd, data[start : start + APPEND_CHUNK])
        except BaseException:
            # a short write and then an error (ENOSPC, EIO) left part of the batch in the
            # work file: cut it back to what the tail names, or make the end start over
            try:
                os.ftruncate(fd, self._size)
            except OSError:
                self.whole = True
            raise
        self._hash.update(data)
        self._size += len(data)
        self._lines += len(parts)
        self._id = last


def _create(path: Path) -> int:
    # the manifest's mode as before (a plain open(): 0666 less the umask)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o666)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _hash_prefix(fd: int, size: int) -> Any:
    """SHA-256 of the first ``size`` bytes of ``fd`` (None: the file is shorter)."""
    digest = hashlib.sha256()
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_READ, size - offset), offset)
        if not chunk:
            return None
        digest.update(chunk)
        offset += len(chunk)
    return digest


def manifest_of(ledger: Ledger, output: BatchOutput) -> ManifestFile:
    """The folder's :class:`ManifestFile` for this run (one per output and ledger)."""
    current = output.manifest
    if current is None or current.ledger is not ledger:
        current = output.manifest = ManifestFile(ledger, output)
    return current


def write_manifest(ledger: Ledger, output: BatchOutput, *, force: bool = False) -> int | None:
    """Make ``DIR/manifest.jsonl`` up to date with the ledger (see the module):
    the number of lines, or None when it already was."""
    return manifest_of(ledger, output).publish(force=force)
