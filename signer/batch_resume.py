"""Where an interrupted ``signer batch`` got to in its input, so that running it
again costs time in proportion to the unfinished work (issue 10).

    >>> # point = ResumePoint.open(output, records_path, settings)   # DIR/.resume/, if it matches
    >>> # items = point.items(column_map)        # from the first unfinished line
    >>> # point.verified()                        # before the first change to the ledger
    >>> # ... after each batch's 'written' commit: point.save(...)
    >>> # point.finish()                          # the run ended: nothing to resume

Without it, the same command after a kill reads, parses and looks up every
record of the input again and skips the finished ones one by one (about
0.15 ms each: at 90 % of a 100,000-record batch, longer than signing the
rest). With it, a run over a JSON Lines input (what ``signer check`` writes)
records in ``DIR/.resume/``, after each batch of 256 is committed in the
ledger:

- ``point.json``: the input's path, size, mtime, ctime and inode at the start, the run's
  settings that decide what happens to a record (centre, ledger, file check,
  override, column map, re-issuance), the last finished line and the byte
  offset after it, the SHA-256 of the input up to that offset, the counts of
  the summary so far, and the lengths of the two files below;
- ``errors.csv``: the refused records so far (line, record id, reason; as
  ``errors.csv`` of the folder, no ID or name);
- ``seen.bin``: the record ids seen so far, as the 8-byte keyed hashes of
  :class:`signer.run.SeenIds` (its key is in ``point.json``).

``point.json`` (temporary file, rename) names the length *and the SHA-256*
of the two files' prefixes that hold the point's rows, so a kill at any
moment leaves a point that is at most one batch behind the ledger (it is
saved after the batch's ledger changes are committed): the records in
between are met again and skipped by the ledger as before. Nothing here is
flushed to disk (fdatasync): the point only saves time, and a power cut that
loses or tears any of the three files leaves a point whose JSON does not
parse or whose named bytes do not hash as named, which is not used (the
next run reads everything), or an older whole point (further behind the
ledger, which is flushed at each commit: never ahead of it). Two flushes per
batch were measured at about 9 ms of the run's process blocked per batch
under others' disk load (docs/benchmarks.md, session 8). The next run uses the point only if the
input file has the same path, size, mtime, ctime and inode, and the settings
are the same; it then starts reading at the offset
(:func:`signer.records.read_records_range`) with the counts, refused records
and seen ids of the prefix, while a thread checks the input's bytes up to
the offset against the point's SHA-256; the run's first change to the ledger
waits for that (:meth:`ResumePoint.verified`: other bytes stop the run
before it changes anything, and the point is removed). Anything else (a CSV input, a changed file,
``reissue`` with another time) reads the whole input as before. A run that
ends (even with refused records) removes the point.

What the shortcut does not do: look at the files of the finished prefix
again (a file deleted after the kill is written again by the *next* full run,
as for any batch) or re-read refusals of the prefix (reported from the
point's ``errors.csv``).
"""

from __future__ import annotations

import array
import contextlib
import csv
import hashlib
import io
import json
import mmap
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from signer.batch_report import BatchCounts
from signer.records import Record, RowProblem, read_records, read_records_range
from signer.run import SeenIds, signals_held, stopping
from verifier.errors import ConfigError

RESUME_DIR = ".resume"
POINT = "point.json"
ERRORS = "errors.csv"
SEEN = "seen.bin"
VERSION = 3  # 2: the files' prefixes named by SHA-256 too, nothing flushed; 3: the input's ctime and inode
_JSONL = (".jsonl", ".ndjson", ".json")


class ResumePoint:
    """The resume point of one output folder for one run (see the module)."""

    def __init__(self, folder: Path, records: Path, settings: dict[str, Any]) -> None:
        self.folder = folder / RESUME_DIR
        self.records = records
        self.settings = settings
        stat = records.stat()
        self.size = stat.st_size
        # the change time too: no program sets it back (a write, utime, chmod or rename moves it);
        # the inode, not the device number (which may change at a reboot: a resume after a power cut)
        self.identity = {
            "path": str(records.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "ctime_ns": stat.st_ctime_ns, "inode": stat.st_ino,
        }  # fmt: skip
        self.enabled = records.suffix.lower() in _JSONL
        # the check of the input's prefix, in a thread until :meth:`verified`
        self._loader: threading.Thread | None = None
        self._load_error: BaseException | None = None
        self._prefix: tuple[str, int] | None = None  # the point's (SHA-256, line) of the prefix, to check
        self._prefix_ok = True
        # what the prefix (lines 1..line) left: from the point read at the start
        self._line = 0
        self.offset = 0
        self.counts: dict[str, Any] = {}
        self.errors: list[tuple[int, str, str]] = []
        self.seen_key: bytes | None = None
        self.seen_values = array.array("q")
        # this run's bookkeeping
        self._hash = hashlib.sha256()
        self._input: BinaryIO | None = None
        self._errors_len = 0
        self._seen_len = 0
        self._errors_hash = hashlib.sha256()  # of the first _errors_len bytes of errors.csv
        self._seen_hash = hashlib.sha256()  # of the first _seen_len bytes of seen.bin
        self._newlines = 0  # newlines of the input hashed so far
        self._pos = 0  # bytes of the input hashed so far

    # -- the start ------------------------------------------------------------
    @classmethod
    def open(cls, folder: Path, records: Path, settings: dict[str, Any]) -> ResumePoint:
        """The folder's point for this input and settings, if it matches (else a fresh one).

        The point's own files are read here (a few ms; in a thread, behind the
        run's setup, each of their reads waited for the GIL: ~70 ms). The input
        up to the point is hashed in a thread (about 50 ms per 60 MB, the GIL
        released), started by :meth:`start_check` (the run starts it once its
        workers are forked: no thread of the run runs at a fork), while the run
        reads and admits its first batch from there: :meth:`verified` waits for
        it, and the run calls that before its first change to the ledger. An
        error making a fresh point reaches the first use (:attr:`line`,
        :meth:`restore`...). :meth:`close` waits for the thread: call it on
        every path (the folder's lock must outlive the thread)."""
        point = cls(folder, records, settings)
        try:
            if point.enabled:
                # any damage (a torn or hand-edited file: OSError, ValueError, csv.Error, AttributeError...) means
                # no usable point: the run then reads the whole input, as it would without one
                with contextlib.suppress(Exception):
                    point._load()
            if not point._line:
                point._reset()
        except OSError as exc:  # _reset's: raised by the first use (a run stopping for another reason reports its own)
            point._load_error = exc
        return point

    def start_check(self) -> None:
        """Start hashing the input up to the point in a thread (once; nothing
        to check: nothing started). :meth:`verified` waits for it."""
        if self._prefix is not None and self._loader is None and self._prefix_ok:
            self._loader = threading.Thread(target=self._check_prefix, name="resume-point", daemon=True)
            self._loader.start()

    def _check_prefix(self) -> None:
        assert self._prefix is not None
        try:
            self._prefix_ok = self._hash_prefix(*self._prefix)
        except Exception:  # the input cannot be read again: not the bytes the point names
            self._prefix_ok = False

    def _wait(self) -> None:
        """Raise the error of making a fresh point, if any (once)."""
        error, self._load_error = self._load_error, None
        if error is not None:
            raise error

    def _join(self, signals: Callable[[], AbstractContextManager[None]] = stopping) -> None:
        """Until :meth:`open`'s thread has ended, Ctrl-C and SIGTERM never
        interrupting the join (an interrupted join would let the thread outlive
        the folder's lock, and in Python 3.11 a thread whose join was
        interrupted cannot be joined again): dropped meanwhile (``stopping``:
        the run's stop and end), or held until after it (``signals_held``)."""
        loader = self._loader
        if loader is not None:
            with signals():
                loader.join()
            self._loader = None

    def verified(self) -> None:
        """Until the input's bytes up to the point are checked (hashed in
        :meth:`open`'s thread): the run calls this before its first change to
        the ledger. The point names the input's size, times and inode, so
        other bytes under the same ones are not expected; if they are found,
        the point is dropped and the run stops with :class:`ConfigError`
        before anything is changed (the same command again reads the whole
        input). Ctrl-C and SIGTERM wait for the check."""
        self._wait()
        if self._prefix is None:
            return
        self.start_check()  # not started yet: checked now
        self._join(signals_held)
        if not self._prefix_ok:
            if self._line:  # once: every later call raises again
                self._reset()
            raise ConfigError(
                f"{self.records} is not what the interrupted run read, though its size and times are the same: "
                "the resume point is removed; run the same command again (it reads the whole input)"
            )
        self._prefix = None

    @property
    def line(self) -> int:
        """The last finished line of the input (0: none, read from the start)."""
        self._wait()
        return self._line

    def _load(self) -> None:
        """The point's own files: what the prefix left (the prefix itself is
        checked next, :meth:`_hash_prefix`)."""
        data = json.loads((self.folder / POINT).read_text("utf-8"))
        if data.get("version") != VERSION or data["input"] != self.identity or data["settings"] != self.settings:
            return
        line, offset = int(data["line"]), int(data["offset"])
        if not (0 < offset <= self.size):
            return
        prefix = (str(data["sha256"]), line)
        errors_len, seen_len = int(data["errors_bytes"]), int(data["seen_bytes"])
        with (self.folder / ERRORS).open("rb") as fh:
            errors_raw = fh.read(errors_len)
        with (self.folder / SEEN).open("rb") as fh:
            raw = fh.read(seen_len)
        if len(raw) != seen_len or len(errors_raw) != errors_len or seen_len % 8:
            return
        # the bytes are checked before they are parsed: torn or stale bytes are not read as rows
        errors_hash, seen_hash = hashlib.sha256(errors_raw), hashlib.sha256(raw)
        if errors_hash.hexdigest() != data["errors_sha256"] or seen_hash.hexdigest() != data["seen_sha256"]:
            return  # not what the point named (a power cut lost appended bytes: they are not flushed)
        rows = [(int(a), b, c) for a, b, c in csv.reader(io.StringIO(errors_raw.decode("utf-8")))]
        values = array.array("q")
        values.frombytes(raw)
        if sys.byteorder != "little":
            values.byteswap()
        # a run killed after an append, before the point named it, left more: cut it off
        os.truncate(self.folder / ERRORS, errors_len)
        os.truncate(self.folder / SEEN, seen_len)
        self._line, self.offset, self.counts = line, offset, dict(data["counts"])
        self.errors, self.seen_key, self.seen_values = rows, bytes.fromhex(data["seen_key"]), values
        self._errors_len, self._seen_len = errors_len, seen_len
        self._errors_hash, self._seen_hash = errors_hash, seen_hash
        self._prefix = prefix

    def _hash_prefix(self, sha256: str, line: int) -> bool:
        """The input up to the point's offset has the point's SHA-256; it is
        then where this run's points hash on from (at line ``line``: the
        point's, which the run that wrote it counted in the same bytes)."""
        # the file is mapped and hashed in one call, the GIL released throughout: no
        # fresh pages (the page cache's are mapped; a 32 MiB read buffer took 8,192
        # page faults, each costly on a VM whose host takes freed memory back) and no
        # wait for the GIL between pieces, which the run's thread holds while it sets
        # up (60 MB: ~40 ms alone, against ~70 ms read into a buffer). A file shorter
        # than the offset is refused by mmap (ValueError: not the bytes the point
        # names); one cut short while it is hashed ends the process (SIGBUS) before
        # the run has changed anything, as a kill would: the next run starts over.
        with (
            self.records.open("rb", buffering=0) as fh,
            mmap.mmap(fh.fileno(), self.offset, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) as mapped,
        ):
            digest = hashlib.sha256()
            digest.update(mapped)
        if digest.hexdigest() != sha256:
            return False
        self._hash, self._newlines, self._pos = digest, line, self.offset
        return True

    def _reset(self) -> None:
        """No usable point: start a new one (files truncated)."""
        self._line = self.offset = 0
        self.counts, self.errors, self.seen_values, self.seen_key = {}, [], array.array("q"), None
        if self.folder.exists():
            shutil.rmtree(self.folder)
        if not self.enabled:
            return
        self.folder.mkdir(mode=0o700)
        for name in (ERRORS, SEEN):
            os.close(os.open(self.folder / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
        self._errors_len = self._seen_len = 0
        self._errors_hash, self._seen_hash = hashlib.sha256(), hashlib.sha256()

    def items(self, column_map: str | None) -> Iterator[Record | RowProblem]:
        """The input from the first unfinished line."""
        if self.line:
            return read_records_range(self.records, self.offset, None, self._line + 1, column_map=column_map)
        return read_records(self.records, column_map=column_map)

    def restore(self, counts: BatchCounts, seen: SeenIds) -> tuple[int, int, int]:
        """Put the prefix's counts and seen ids into this run's; returns its
        (signed, failed, clamped) for :class:`signer.run.SigningRun`."""
        self._wait()
        if self.seen_key is not None:
            seen.load(self.seen_key, self.seen_values)
        if not self.line:
            return 0, 0, 0
        values = dict(self.counts)
        run = values.pop("run")
        reasons = values.pop("reasons")
        for name, value in values.items():
            setattr(counts, name, value)
        counts.reasons.update(reasons)
        return int(run["signed"]), int(run["failed"]), int(run["clamped"])

    # -- after each batch -----------------------------------------------------
    def save(
        self,
        last_line: int,
        counts: BatchCounts,
        run: dict[str, int],
        errors: Sequence[tuple[int, str, str]],
        seen_key: bytes,
        seen: Sequence[int],
    ) -> None:
        """The prefix up to ``last_line`` is finished (its ledger changes committed)."""
        if not self.enabled or last_line <= self.line:
            return
        self.verified()  # this run's points hash on from the prefix's digest
        if self._input is None:
            self._input = self.records.open("rb")
            self._input.seek(self._pos)
        offset = self._advance(last_line)
        if offset is None:  # the line has no newline yet (the end of the file): nothing to gain
            return
        if errors:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(errors)
            data = buf.getvalue().encode("utf-8")
            self._errors_len += _append(self.folder / ERRORS, data)
            self._errors_hash.update(data)
        if seen:
            # each batch's run sorted: the next run sorts the whole file (SeenIds.load),
            # which takes half as long over sorted runs (90,000 ids: ~12 ms of ~23)
            values = array.array("q", sorted(seen))
            if sys.byteorder != "little":
                values.byteswap()
            data = values.tobytes()
            self._seen_len += _append(self.folder / SEEN, data)
            self._seen_hash.update(data)
        totals = asdict(counts)
        totals["reasons"] = dict(counts.reasons)
        totals["released"] = 0  # bookkeeping of batches in flight; not in the summary
        totals["run"] = run
        point = {
            "version": VERSION, "input": self.identity, "settings": self.settings, "line": last_line,
            "offset": offset, "sha256": self._hash.hexdigest(), "counts": totals,
            "errors_bytes": self._errors_len, "seen_bytes": self._seen_len, "seen_key": seen_key.hex(),
            "errors_sha256": self._errors_hash.hexdigest(), "seen_sha256": self._seen_hash.hexdigest(),
        }  # fmt: skip
        tmp = self.folder / f".{POINT}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:  # not flushed to disk: see the module
            json.dump(point, fh)
        os.replace(tmp, self.folder / POINT)
        self._line, self.offset = last_line, offset

    def _advance(self, line: int) -> int | None:
        """Hash the input up to the end of ``line``; the byte offset after it
        (None: the input ends before that line's newline)."""
        fh = self._input
        assert fh is not None
        while self._newlines < line:
            chunk = fh.read(1 << 16)
            if not chunk:
                return None
            cut = _after_newlines(chunk, line - self._newlines)
            if cut is None:
                self._hash.update(chunk)
                self._newlines += chunk.count(b"\n")
                self._pos += len(chunk)
            else:
                self._hash.update(chunk[:cut])
                self._newlines = line
                self._pos += cut
                fh.seek(self._pos)
        return self._pos

    def finish(self) -> None:
        """The run ended: nothing to resume (if the prefix was what the point named)."""
        self.verified()
        self.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.folder)

    def close(self) -> None:
        self._join()
        self._load_error = None  # a run that stops before using the point: its own error is the one to report
        if self._input is not None:
            self._input.close()
            self._input = None


def _after_newlines(chunk: bytes, count: int) -> int | None:
    """The index just after the ``count``-th newline of ``chunk`` (None: fewer)."""
    pos = -1
    for _ in range(count):
        pos = chunk.find(b"\n", pos + 1)
        if pos < 0:
            return None
    return pos + 1


def _append(path: Path, data: bytes) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    return len(data)
