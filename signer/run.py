"""One signing run of ``python -m signer sign``: records in, signed files out, in input order.

    >>> # signer = build_signer(key, ns, Options(now=now, allow_unverified=False, png=True, svg=False))
    >>> # run = SigningRun(out_dir, signer=signer, override=None, err=sys.stderr)
    >>> # with stop_signals():
    >>> #     try: run.sign_all(read_records(path))
    >>> #     finally: run.manifest.commit()

Data flow, per batch of :data:`BATCH_SIZE` read items (records and row
problems):

1. **admit** (this process): row problems, unusable or duplicate record
   ids and unverified records (without the override) are refused here, so
   the checks that need the whole run (the ids seen so far) stay in one place;
2. **sign** (:class:`Signer`, in this process or in a worker): HC1 through
   :meth:`signer.issue.Hc1Issuer.issue_many`, the signature checked with the
   certificate, then the PDF passport and the QR images; one
   :class:`Outputs` per record, or the reason it was not signed;
3. **write** (this process, in input order): each record's files (atomic
   writes), its manifest line, and the messages on stderr.

Step 1 hands step 2 :class:`Job` tuples (record, and optionally the UVCI
and signing time to use); :class:`signer.batch.LedgerRun` overrides steps 1
and 3 to go through the issuance ledger (``signer batch``).

With ``jobs > 1`` step 2 runs in ``jobs`` processes: ``jobs - 1`` workers
(``fork``), each opening the key itself (a PKCS#11 session does not survive
fork; the PIN or passphrase is asked once, before), and this process, which
signs a batch itself with the key it holds whenever the workers have
:data:`TASKS_PER_WORKER` tasks each not yet done and one more held back
for each (at most :data:`IN_FLIGHT` more batches in flight; once the input is
read, a held batch goes to a worker about to be free rather than signed here:
``_Flight.sign_here_rather``); the output is the same as with one process, byte for
byte apart from the random UVCIs and signatures. A worker that cannot
open the key, or dies, stops the run with one error line (the files
written so far keep their manifest lines); workers ignore Ctrl-C, which
the run handles by stopping them.
"""

from __future__ import annotations

import argparse
import array
import bisect
import collections
import contextlib
import datetime as dt
import errno
import gc
import hashlib
import heapq
import itertools
import multiprocessing
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO, TypeAlias

from keys.base import SigningKey
from signer.durable import SYNCFS_HINT, Flusher
from signer.issue import Hc1Issuer, Issued
from signer.manifest import Manifest, Override, manifest_entry, write_atomic
from signer.qr import make_qr, qr_png, qr_svg
from signer.records import Record, RowProblem, is_verified
from verifier import codec
from verifier.crypto import verify_signature
from verifier.errors import ConfigError, InputError, KeyBackendError, PassportError

if TYPE_CHECKING:
    from keys.loader import KeySpec
    from signer.batch_adopt import Adopted, Attempt, Candidate
    from signer.pdf.cli import PdfOutput

#: Records signed per :meth:`Hc1Issuer.issue_many` call (docs/benchmarks.md:
#: 64-256 sign equally fast; a batch's outputs are written before the next).
BATCH_SIZE = 256
#: With ``--jobs N`` the run's own process is one of the N signing processes
#: (``_Flight``): each of the N - 1 workers gets this many batches not yet
#: done (one it signs, one waiting for it in the pool), the next
#: N - 1 admitted are held back to refill them as soon as a task ends, and
#: the run's process signs the others itself, between admitting and writing
#: batches. A task handed to the pool is the workers' to the end: so the tail,
#: once the input is read, is at most this many batches for a worker while
#: the run's process signs the held ones.
TASKS_PER_WORKER = 2
#: In a worker's queue (``_Flight.feed``) a record whose killed run's files
#: are adopted (signer.batch_adopt: checked, not signed) weighs this much of
#: one signed: a batch of 256 adopted took 50-85 ms of a worker, signed ~200 ms.
#: Counted as whole batches, the adopted ones that start a resume left the
#: worker idle for ~130 ms while this process signed a batch.
ADOPT_WEIGHT = 0.3
#: A batch signed here of at least this many records (in records signed) updates
#: :attr:`_Flight.per_record` (a few records' time is mostly the batch's fixed cost).
MEASURED_UNITS = 16
#: With ``--jobs``, batches signed by the run's process that may wait for
#: their turn to be written (behind the workers' tasks, in input order):
#: batches in flight are at most (TASKS_PER_WORKER + 1) x (N - 1) + IN_FLIGHT.
IN_FLIGHT = 3
#: Record ids become file names: keep them to a safe alphabet.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class Job(NamedTuple):
    """A record admitted for signing (step 1 -> step 2)."""

    position: int  # in its batch
    record: Record
    verified: bool
    uvci: str | None = None  # the UVCI to sign with (the ledger reserved it); None = a fresh one
    iat: int | None = None  # sign at this time (epoch seconds) instead of the run's
    record_hash: str = ""  # the ledger's hash of the record's data (written to the staging journal)
    #: a killed run's finished files to adopt instead of signing (signer.batch_adopt.Attempt)
    adopt: Attempt | None = None


@dataclass
class Admitted:
    """A batch after step 1: position -> why refused, and the jobs to sign.
    ``extra`` holds what a subclass of :class:`SigningRun` decided (the ledger's plans)."""

    refused: dict[int, str]
    ready: list[Job]
    extra: Any = None


#: What step 2 gets for one batch: the records, their UVCIs and signing times
#: (None = default), the ledger's record hashes ("" outside the ledger), and
#: what to adopt instead of signing (None: sign).
Task = tuple[list[Record], list[str | None], list[int | None], list[str], list["Attempt | None"]]
#: One record's result of step 2: its outputs, the killed run's files adopted
#: instead (signer.batch_adopt), or why it was not signed.
Result: TypeAlias = "Outputs | Adopted | str"


def task_of(jobs: Sequence[Job]) -> Task:
    return ([j.record for j in jobs], [j.uvci for j in jobs], [j.iat for j in jobs], [j.record_hash for j in jobs],
            [j.adopt for j in jobs])  # fmt: skip


@dataclass(frozen=True)
class Outputs:
    """What to write for one record: the certificate and its files, by name.

    With :attr:`Options.hash_outputs` (ledger runs) also the SHA-256 (hex) of
    the signed CWT payload and of each file, computed where it was signed
    (in the worker processes with ``--jobs``)."""

    issued: Issued
    files: dict[str, bytes]
    payload_sha256: str = ""
    digests: dict[str, str] = field(default_factory=dict)
    #: With :attr:`Options.stage`: the files are already written under these paths (name -> (staged path,
    #: size)), flushed or being flushed (a worker's: confirmed through _FlushBoard; the run's own: Stager
    #: ``later``); ``files`` is then empty.
    staged: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """What a :class:`Signer` makes per record (picklable, for the workers)."""

    now: dt.datetime
    allow_unverified: bool  # the run has an override: the issuer's gate is off
    png: bool
    svg: bool
    hash_outputs: bool = False  # fill Outputs.payload_sha256 and .digests (the ledger's run)
    #: A folder (the ledger run's ``DIR/.partial``) where the signing process
    #: itself writes and flushes the files (Outputs.staged): with ``--jobs``,
    #: creating files is then spread over the workers, and no file's bytes
    #: travel back to the run's process, which only renames them.
    stage: str | None = None
    #: With ``stage``: the run's settings (signer.batch_adopt.settings_tag); each
    #: staging folder then gets a journal of what it holds (signer.batch_adopt), so
    #: that the run after a kill can adopt the finished files instead of signing again.
    journal_tag: str = ""
    #: The HMAC key of the journal's lines (signer.batch_adopt.journal_key; a
    #: secret: inherited by the forked workers, never shown).
    journal_key: bytes = field(default=b"", repr=False)


class Signer:
    """Step 2, per process: records -> certificates and their files."""

    def __init__(
        self, issuer: Hc1Issuer, options: Options, pdf: PdfOutput | None = None, ns: argparse.Namespace | None = None
    ) -> None:
        self.issuer, self.options, self.pdf = issuer, options, pdf
        #: the command's arguments it was built from (signer.batch_adopt.settings_tag)
        self.ns = ns
        #: called after every :data:`JOURNAL_EVERY` records made (the run's own
        #: process with ``--jobs``: it hands held-back batches to the workers
        #: whose task ended meanwhile, rather than after the whole batch)
        self.between: Callable[[], None] | None = None
        #: With :attr:`Options.stage`: :meth:`sign` does not wait for its staged
        #: files' flushes but leaves their :class:`Stager` in :attr:`unflushed`,
        #: whose ``flushed()`` the caller calls before it renames them (the run's
        #: own process with ``--jobs``: it writes the batch later, in input order)
        self.flush_later = False
        self.unflushed: Stager | None = None
        #: With :attr:`Options.stage`: this process's flusher of the staged
        #: files (made before its first file) and, with :attr:`flush_later`,
        #: the thread that flushes them while signing goes on (made in the
        #: process that signs: neither survives fork)
        self._flusher: Flusher | None = None
        self._flush_thread: ThreadPoolExecutor | None = None

    def sign(
        self,
        records: Sequence[Record],
        uvcis: Sequence[str | None] | None = None,
        times: Sequence[int | None] | None = None,
        record_hashes: Sequence[str] | None = None,
        adopt: Sequence[Attempt | None] | None = None,
    ) -> list[Result]:
        """One result per record: its outputs, or why it was not signed.

        ``uvcis``: the UVCI of each record (None: a fresh one); ``times``: the
        signing time of each record in epoch seconds (None: the run's; the
        ledger re-signs a certificate whose files were lost at its original
        time, so that its payload stays the same); ``record_hashes``: the
        ledger's hash of each record (for the staging journal); ``adopt``: for
        a record a killed run had reserved, its finished files to adopt if
        they prove to be its issue (the result is then their
        :class:`~signer.batch_adopt.Adopted`), else it is signed.

        Raises :class:`ConfigError` when the key's signature does not verify,
        and what the key backend raises: both stop the run.
        """
        if adopt and any(a is not None for a in adopt):
            return self._adopt_or_sign(records, uvcis, times, record_hashes, adopt)
        opts = self.options
        results: list[Result] = []
        issued_all = self._issue(records, uvcis, times)
        stager = None
        if opts.stage is not None:
            if self._flusher is None:
                try:
                    self._flusher = Flusher(opts.stage)
                except OSError as err:
                    raise ConfigError(f"cannot write into {opts.stage}: {err.strerror or err}") from None
            if self.flush_later and self._flush_thread is None:
                self._flush_thread = ThreadPoolExecutor(1, thread_name_prefix="stage-flush")
            stager = Stager(
                Path(opts.stage), opts.journal_tag, opts.journal_key, results, later=self.flush_later,
                flusher=self._flusher, flush_thread=self._flush_thread,
            )  # fmt: skip
        made = False
        try:
            self._make(records, issued_all, record_hashes, stager, results)
            if stager is not None:
                stager.finish()
            made = True
        finally:
            if stager is not None and made and stager.later:
                self.unflushed = stager
            elif stager is not None:
                stager.close()
        return results

    def _adopt_or_sign(
        self,
        records: Sequence[Record],
        uvcis: Sequence[str | None] | None,
        times: Sequence[int | None] | None,
        record_hashes: Sequence[str] | None,
        adopt: Sequence[Attempt | None],
    ) -> list[Result]:
        """:meth:`sign` when some records may be adopted: those first, then
        the others signed in one call."""
        results: list[Result | None] = [None] * len(records)
        for index, attempt in enumerate(adopt):
            if attempt is not None:
                results[index] = attempt.adopted(self.issuer)
        rest = [i for i, result in enumerate(results) if result is None]
        if rest:
            def pick(values: Sequence[Any] | None) -> list[Any] | None:
                return None if values is None else [values[i] for i in rest]

            signed = self.sign([records[i] for i in rest], pick(uvcis), pick(times), pick(record_hashes))
            for index, result in zip(rest, signed, strict=True):
                results[index] = result
        return results  # type: ignore[return-value]  # every slot is filled

    def close(self) -> None:
        """Release the flusher and its thread (after the last flush ended)."""
        if self._flush_thread is not None:
            self._flush_thread.shutdown(wait=True)
            self._flush_thread = None
        if self._flusher is not None:
            self._flusher.close()
            self._flusher = None

    def _make(
        self,
        records: Sequence[Record],
        issued_all: Sequence[Issued | InputError],
        record_hashes: Sequence[str] | None,
        stager: Stager | None,
        results: list[Result],
    ) -> None:
        opts = self.options
        between = self.between
        for index, (record, issued) in enumerate(zip(records, issued_all, strict=True)):
            if between is not None and index % JOURNAL_EVERY == JOURNAL_EVERY - 1:
                between()
            if isinstance(issued, InputError):
                results.append(str(issued))
                continue
            rid = record.record_id
            files = {f"{rid}.hc1.txt": issued.hc1.encode("ascii")}
            if self.pdf is not None:
                try:
                    files[f"{rid}.pdf"] = self.pdf.render_and_sign(issued, record, now=opts.now)
                except InputError as exc:
                    results.append(str(exc))
                    continue
            payload = self_check(issued, self.issuer.key)
            if opts.png or opts.svg:
                qr = make_qr(issued.hc1)
                if opts.png:
                    files[f"{rid}.png"] = qr_png(qr)
                if opts.svg:
                    files[f"{rid}.svg"] = qr_svg(qr)
            if opts.hash_outputs:
                sha = hashlib.sha256
                digests = {name: sha(data).hexdigest() for name, data in files.items()}
                result = Outputs(issued, files, sha(payload).hexdigest(), digests)
                results.append(result)
                if stager is not None:  # replaced by the staged result once the record's group is written
                    stager.add(len(results) - 1, result, record_hashes[index] if record_hashes else "")
            else:
                results.append(Outputs(issued=issued, files=files))

    def _issue(
        self,
        records: Sequence[Record],
        uvcis: Sequence[str | None] | None,
        times: Sequence[int | None] | None,
    ) -> list[Issued | InputError]:
        """issue_many, once per distinct signing time (one call in a normal run)."""
        opts, issuer = self.options, self.issuer
        if not times or all(t is None for t in times):
            return issuer.issue_many(records, now=opts.now, uvcis=uvcis, allow_unverified=opts.allow_unverified)
        results: list[Issued | InputError | None] = [None] * len(records)
        groups: dict[int | None, list[int]] = {}
        for i, t in enumerate(times):
            groups.setdefault(t, []).append(i)
        for t, index in groups.items():
            now = opts.now if t is None else dt.datetime.fromtimestamp(t, dt.UTC)
            sub_uvcis = None if uvcis is None else [uvcis[i] for i in index]
            try:
                got = issuer.issue_many(
                    [records[i] for i in index], now=now, uvcis=sub_uvcis, allow_unverified=opts.allow_unverified
                )
            except ConfigError:  # the DSC was not valid at that earlier time
                if t is None:
                    raise
                reason = InputError("cannot re-sign at the original signing time: this DSC was not valid then")
                got = [reason] * len(index)
            for i, result in zip(index, got, strict=True):
                results[i] = result
        return results  # type: ignore[return-value]  # every slot is filled


_stage_count = itertools.count()


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (``os.write`` may write fewer)."""
    with memoryview(data) as view:
        written = 0
        while written < len(view):
            written += os.write(fd, view[written:])


def write_file(path: str, data: bytes) -> None:
    """A new file (it must not exist) holding ``data``, closed, not flushed. Raises ``OSError``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, data)
    finally:
        os.close(fd)


def slim(issued: Issued) -> Issued:
    """``issued`` without what the run's process does not use once the files
    are written (the HC1 text, the DCC): less to pickle back from a worker."""
    return Issued(
        record_id=issued.record_id, hc1="", uvci=issued.uvci, kid=issued.kid, iat=issued.iat, exp=issued.exp,
        exp_clamped=issued.exp_clamped, dcc={},
    )  # fmt: skip


#: A staging folder's files and journal lines are written this many records
#: at a time (the lines in one ``write``; fewer than this many finished
#: records per worker are signed again after a kill instead of adopted).
JOURNAL_EVERY = 16


class Stager:
    """Writes the records' files into a new folder under ``root`` (one per
    task), :data:`JOURNAL_EVERY` records at a time, and puts in ``results``
    (the task's result list) each record's :class:`Outputs` with ``staged``
    paths instead of bytes (and a :func:`slim` certificate).

    The files are flushed all at once by ``flusher`` (signer.durable: one
    ``syncfs``; made before the first file, shared by the process's stagers
    of one run, used from one thread): :meth:`finish` flushes them before it
    returns, or with ``later`` (the run's own process and the ``--jobs``
    workers) hands the flush to ``flush_thread`` and returns at once, and
    :meth:`flushed` / :meth:`flush_error` wait for it (the results go back
    before the disk is done; the run places them once flushed). With ``tag``
    (the run's signer.batch_adopt.settings_tag) and ``key`` (the lines' HMAC
    key), each group's journal lines are appended to the folder's
    ``.journal`` after its files, in one write (signer.batch_adopt: a line
    names only files wholly written; not flushed yet, so the run that adopts
    them checks their SHA-256 and flushes them before it renames them). Group
    by group during the task, so that a run killed while a worker signs a
    batch leaves the records signed so far, but for at most the last
    :data:`JOURNAL_EVERY` - 1, for the next run to adopt. Raises
    :class:`ConfigError` when the files cannot be written (it stops the run:
    the folder is then emptied by the next one); when the flush fails, the
    journal is removed at once (:meth:`_drop_journal`).
    """

    def __init__(
        self,
        root: Path,
        tag: str,
        key: bytes = b"",
        results: list[Result] | None = None,
        *,
        later: bool = False,
        flusher: Flusher | None = None,
        flush_thread: ThreadPoolExecutor | None = None,
    ) -> None:
        self.root, self.tag, self._key = root, tag, key
        #: :meth:`finish` does not wait for the flush: :meth:`flushed` does
        self.later = later
        self.results: list[Result] = [] if results is None else results
        self.folder: Path | None = None
        self._flusher, self._own_flusher = flusher, flusher is None
        self._flush_thread = flush_thread
        self._journal: int | None = None
        self._written: list[tuple[str, int]] = []  # (path, size) of every file written
        self._flush: Future[None] | None = None  # the flush under way or done (None: not started)
        self._group: list[tuple[int, Outputs, str]] = []
        self._line_of = None
        if tag and key:  # imported here: signer sign does not need the ledger's modules
            from signer.batch_adopt import journal_bytes

            self._line_of = journal_bytes

    def add(self, index: int, result: Outputs, record_hash: str) -> None:
        """Stage ``result`` (the record at ``results[index]``) with its group."""
        self._group.append((index, result, record_hash))
        if len(self._group) >= JOURNAL_EVERY:
            self._write_group()

    def _write_group(self) -> None:
        group, self._group = self._group, []
        if not group:
            return
        try:
            if self.folder is None:
                if self._flusher is None:  # before any file is written: it sees their write-back errors
                    self._flusher = Flusher(self.root)
                folder = self.root / f"w{os.getpid()}-{next(_stage_count)}"
                folder.mkdir(mode=0o700)
                self.folder = folder
                if self._line_of is not None:  # before the flush: see _drop_journal
                    from signer.batch_adopt import JOURNAL

                    self._journal = os.open(
                        folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
                    )
            prefix = os.path.join(self.folder, "")
            results, line_of, written = self.results, self._line_of, self._written
            lines = []
            for index, result, record_hash in group:
                staged = {}
                for name, data in result.files.items():
                    path = prefix + name
                    write_file(path, data)
                    written.append((path, len(data)))
                    staged[name] = (path, len(data))
                out = Outputs(slim(result.issued), {}, result.payload_sha256, result.digests, staged)
                results[index] = out
                if line_of is not None:
                    lines.append(line_of(self.tag, result.issued, out, record_hash, self._key))
            if lines and self._journal is not None:
                write_all(self._journal, b"".join(lines))
        except OSError as err:
            raise ConfigError(f"cannot write into {self.root.parent}: {err.strerror or err}") from None

    def _flush_files(self) -> None:
        """Flush every file written (in :attr:`_flush_thread` with ``later``);
        on failure the journal goes first. Raises ``OSError``."""
        if self._flusher is None or not self._written:
            return
        try:
            self._flusher.flush(self._written)
        except OSError:
            self._drop_journal()
            raise

    def _start_flush(self) -> Future[None]:
        if self._flush is None:
            if self._flush_thread is not None:
                self._flush = self._flush_thread.submit(self._flush_files)
            else:
                self._flush = Future()
                try:
                    self._flush_files()
                    self._flush.set_result(None)
                except OSError as err:
                    self._flush.set_exception(err)
        return self._flush

    def _drop_journal(self) -> None:
        """The flush failed: the folder's journal is unlinked before the error
        is reported, so that no run adopts what this folder holds. The files'
        pages may never reach the disk, yet a later run in the same boot
        would read them from the page cache (SHA-256 right) and its own flush
        would succeed (the error was reported here already). The journal
        exists from the folder's creation on, before any flush."""
        if self.folder is None:
            return
        from signer.batch_adopt import JOURNAL

        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.folder / JOURNAL)

    def finish(self) -> None:
        """Write the last group and flush every file to disk (with
        :attr:`later`: start the flush; :meth:`flushed` waits for it).
        Raises :class:`ConfigError`."""
        self._write_group()
        self._start_flush()
        if not self.later:
            self.flushed()

    def flushed(self) -> None:
        """Wait until every file is flushed, then :meth:`close`. Raises :class:`ConfigError`."""
        error = self.flush_error()
        if error is not None:
            raise ConfigError(f"cannot write into {self.root.parent}: {error.strerror or error}")

    def flush_error(self) -> OSError | None:
        """Wait until every file is flushed, then :meth:`close`; the flush's
        error, if it failed (a --jobs worker's confirming thread)."""
        try:
            error = self._start_flush().exception()
        finally:
            self.close()
        return error if isinstance(error, OSError) or error is None else OSError(errno.EIO, str(error))

    def close(self) -> None:
        """Release the journal (and the flusher when it is this stager's own).
        A stager stopped before its flush (an error, the run stopped) flushes
        what it wrote first: a failure then removes its journal, as in
        :meth:`flush_error` (the error may already have been reported to
        another process, so the run that would adopt these files might
        never see it)."""
        try:
            if self._written:
                with contextlib.suppress(Exception):
                    self._start_flush().exception()
        finally:
            if self._journal is not None:
                os.close(self._journal)
                self._journal = None
            if self._own_flusher and self._flusher is not None:
                self._flusher.close()
                self._flusher = None


def verified_sign1(hc1: str, key: SigningKey) -> codec.Sign1 | None:
    """The COSE_Sign1 of the HC1 text if ``key``'s certificate verifies its signature, else None."""
    sign1 = codec.decode_sign1(codec.from_qr_text(hc1))
    data = codec.sig_structure(sign1.protected_bytes, sign1.payload)
    if not verify_signature(key.certificate.public_key(), sign1.alg, data, sign1.signature):
        return None
    return sign1


def self_check(issued: Issued, key: SigningKey) -> bytes:
    """Verify the signature just made (catches a misbehaving key backend);
    returns the signed CWT payload."""
    sign1 = verified_sign1(issued.hc1, key)
    if sign1 is None:
        raise ConfigError("the signing key produced a signature its certificate does not verify")
    return bytes(sign1.payload)


# --------------------------------------------------------------------------
# worker processes


@dataclass(frozen=True)
class WorkerSetup:
    """How a worker builds its :class:`Signer` (inherited through fork, never pickled:
    it holds the key's secret)."""

    spec: KeySpec
    secret: str | None
    ns: argparse.Namespace
    options: Options

    def __repr__(self) -> str:  # never shows the secret
        return f"WorkerSetup(spec={self.spec!r})"


_worker: Signer | None = None
_worker_error: tuple[str, str] | None = None  # why _start_worker failed, sent back by _work
_worker_stack = contextlib.ExitStack()
#: Held by a worker while it opens the key (set before the workers fork).
#: SoftHSM2 answered C_Login with CKR_GENERAL_ERROR now and then when two
#: freshly forked processes re-initialised the module and logged in at once
#: (5 of 50 token runs with --jobs 2 failed under load); one at a time, 160
#: of 160 passed.
_key_open_lock: Any = None


class _FlushBoard:
    """With ``--jobs`` and staged files (a ledger run): how far each worker's
    flushes have got, in memory shared with the workers (made before they
    fork). A worker hands a task's results back as soon as its files are
    written (:class:`_Unconfirmed`, not after their flushes end: the worker
    signs on meanwhile); one thread of the worker waits for the flushes of
    its tasks in their order and then sets ``done[worker]`` to the task's
    number, or ``errors[worker]`` to the errno of the first that failed (and
    from then on nothing more for that worker; the folder's journal is gone
    already: :meth:`Stager._drop_journal`). The run places a worker's batch
    only once :meth:`wait` says its flush succeeded: the same guarantee as
    a worker that waited itself (the worker's own flusher, opened before it
    wrote those files, sees any write-back error of them: signer.durable)."""

    def __init__(self, context: Any, workers: int, folder: Path) -> None:
        self.size, self.folder = workers, folder
        self.done = context.RawArray("q", workers)  # per worker: its tasks up to this number are flushed
        self.errors = context.RawArray("i", workers)  # per worker: errno of a failed flush (0: none)
        self.hints = context.RawArray("b", workers)  # per worker: that flush was a syncfs (signer.durable.SYNCFS_HINT)
        self._next = context.RawValue("i", 0)  # the next worker's index
        self._lock = context.Lock()

    def join(self) -> int:
        """A new worker's index (-1: none left: it then waits for its own flushes)."""
        with self._lock:
            index = self._next.value
            self._next.value = index + 1
        return index if index < self.size else -1

    def confirm(self, worker: int, number: int, error: OSError | None) -> None:
        """(In the worker) task ``number``'s flushes ended, with ``error`` or not."""
        if self.errors[worker]:
            return  # an earlier task's flush failed: no later one may look confirmed
        if error is not None:
            self.hints[worker] = int(SYNCFS_HINT in (error.strerror or ""))
            self.errors[worker] = error.errno or errno.EIO
        else:
            self.done[worker] = number

    def ended(self, result: _WorkResult) -> bool:
        """A worker's result needs no wait (:meth:`wait` returns or raises at once)."""
        if not isinstance(result, _Unconfirmed):
            return True
        return self.done[result.worker] >= result.number or bool(self.errors[result.worker])

    def wait(
        self, pool: ProcessPoolExecutor | None, worker: int, number: int, idle: Callable[[], None] | None = None
    ) -> None:
        """(In the run) until task ``number`` of ``worker`` is flushed, calling
        ``idle`` meanwhile (the run hands held-back batches to workers whose
        tasks ended). Raises :class:`ConfigError` if one of its flushes
        failed, BrokenProcessPool when a worker died meanwhile."""
        delay = 0.0002
        while self.done[worker] < number:
            if idle is not None:
                idle()
            failed = self.errors[worker]
            if failed and self.done[worker] < number:
                hint = f" ({SYNCFS_HINT})" if self.hints[worker] else ""
                raise ConfigError(f"cannot write into {self.folder}: {os.strerror(failed)}{hint}")
            processes = list((pool._processes or {}).values()) if pool is not None else []
            if any(p.exitcode is not None for p in processes):
                _unblock_manager(pool)  # type: ignore[arg-type]  # not None: it has processes
                raise BrokenProcessPool(_BROKEN)
            time.sleep(delay)
            delay = min(2 * delay, 0.005)


@dataclass(frozen=True)
class _Unconfirmed:
    """A worker's results whose staged files may not be flushed yet: the run
    waits for ``_FlushBoard.wait(worker, number)`` before it writes them."""

    results: list[Result]
    worker: int
    number: int


_board: _FlushBoard | None = None  # set by the run before its workers fork
_worker_slot = -1  # this worker's index in _board (-1: it waits for its own flushes)
_worker_tasks = 0  # the tasks it has handed back unconfirmed
_confirmer: Any = None  # the worker's thread that confirms its tasks' flushes in order


def _forget_confirmer() -> None:
    global _confirmer, _worker_tasks
    _confirmer, _worker_tasks = None, 0


os.register_at_fork(after_in_child=_forget_confirmer)


def _confirm_later(stager: Stager, results: list[Result]) -> _Unconfirmed | None:
    """(In a worker) hand ``stager``'s flushes to the confirming thread; None
    when this worker has no place on the board. ``results``: the task's (those
    the stager staged, and any adopted)."""
    global _worker_tasks, _confirmer
    board, slot = _board, _worker_slot
    if board is None or slot < 0:
        return None
    if _confirmer is None:
        _confirmer = ThreadPoolExecutor(1, thread_name_prefix="stage-confirm")
    _worker_tasks += 1
    number = _worker_tasks

    def confirm() -> None:
        try:
            error = stager.flush_error()
        except BaseException as exc:  # never leave the run waiting
            error = exc if isinstance(exc, OSError) else OSError(errno.EIO, str(exc))
        board.confirm(slot, number, error)

    _confirmer.submit(confirm)
    return _Unconfirmed(results, slot, number)


def _start_worker(setup: WorkerSetup, parent: int) -> None:
    global _worker, _worker_error, _worker_slot
    # Ctrl-C reaches the whole process group: the run stops the workers, so
    # they ignore it (no traceback per worker on stderr). They start with it
    # blocked (_submit), so that none arrives before this.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the run's own handler is not for workers
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    from keys.loader import open_key

    try:
        with _key_open_lock or contextlib.nullcontext():
            key = _worker_stack.enter_context(open_key(setup.spec, secret=setup.secret))
            _worker = build_signer(key, setup.ns, setup.options)
        if _board is not None and setup.options.stage is not None:
            _worker_slot = _board.join()
            _worker.flush_later = _worker_slot >= 0
    except PassportError as exc:  # reported by the first _work call: stops the run
        _worker_error = (type(exc).__name__, str(exc))
    except Exception as exc:  # idem, without a traceback per worker
        _worker_error = ("ConfigError", f"a signing process could not start: {exc}")
    _run_first()


def _run_first() -> None:
    """The first work the workers inherited (:data:`_first`), done by the one
    that claims it, as it starts: not sent as a task, which reached the
    worker ~40 ms after its fork (the pool's threads wait for the GIL that the
    run's process holds while it sets up). Its result is not read; what fails
    in it is left to the batches (a worker that could not start reports that
    with its first task)."""
    global _first
    first, _first = _first, None
    claim = _first_claim
    if first is None or claim is None or _worker is None:
        return
    with claim.get_lock():
        mine, claim.value = not claim.value, 1
    if mine:
        call, args = first
        with contextlib.suppress(Exception):
            call(*args)


def _exit_with_parent(parent: int) -> None:
    """A worker's watchdog thread: end the worker once the run's process is
    gone (killed, so it could not stop its workers). The executor's workers
    hold both ends of their task pipe and would wait for work forever,
    with the key open."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


_WorkResult = list[Result] | tuple[str, str] | _Unconfirmed


def _work(task: Task) -> _WorkResult:
    """A worker's step 2; a run-stopping error comes back as (class name, message)."""
    if _worker is None:
        return _worker_error or ("ConfigError", "signing worker not started")
    try:
        results = _worker.sign(*task)
    except PassportError as exc:  # not every PassportError can be pickled back as itself
        return (type(exc).__name__, str(exc))
    stager, _worker.unflushed = _worker.unflushed, None
    if stager is None:
        return results
    # back before the files' flushes end: the run waits for them (_FlushBoard)
    unconfirmed = _confirm_later(stager, results)
    if unconfirmed is not None:
        return unconfirmed
    try:
        stager.flushed()
    except PassportError as exc:
        return (type(exc).__name__, str(exc))
    return results


def _submit(pool: ProcessPoolExecutor, task: Task) -> Future[_WorkResult]:
    """``pool.submit(_work, task)`` (:func:`_submit_call`)."""
    return _submit_call(pool, _work, task)


def _submit_call(pool: ProcessPoolExecutor, call: Callable[..., Any], *args: Any) -> Future[Any]:
    """``pool.submit(call, *args)`` with SIGINT blocked: the first call
    forks the workers, which inherit the mask (a Ctrl-C is then delivered
    here, once the call returns)."""
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        return pool.submit(call, *args)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def prove_ahead(candidates: list[Candidate]) -> int:
    """A worker's first task in a run that adopts a killed run's files:
    :func:`signer.batch_adopt.prove_ahead` with its issuer."""
    from signer.batch_adopt import prove_ahead as prove

    if _worker is None:
        return 0
    return prove(candidates, _worker.issuer)


#: The workers' first work and its arguments (:meth:`SigningRun.start_workers`),
#: set just before they fork and read by them in their copy of this process's
#: memory: never pickled (a killed run's journal lines, ~0.6 MB per 1,000: ~20 ms
#: of pickling here and unpickling there, while the worker waited for them).
#: One worker does it (:func:`_run_first`), the first to set :data:`_first_claim`
#: (a byte shared with the workers, made with it).
_first: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
_first_claim: Any = None


def _forked() -> None:
    """The task whose submit forks the workers (the pool forks them all at its first)."""


def _process_pool(workers: int, context: Any, setup: WorkerSetup) -> ProcessPoolExecutor:
    """The workers' pool (:class:`_Flight` decides how many tasks it holds)."""
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(setup, os.getpid()))
    _widen_pipes(pool)
    return pool


#: Bytes the pool's pipes hold (Linux F_SETPIPE_SZ; the default is 64 KiB).
PIPE_BYTES = 1 << 20


def _widen_pipes(pool: ProcessPoolExecutor) -> None:
    """Let the pool's result pipe (and its task pipe) hold a whole batch's
    message: a ledger run's task result of 256 records is about 140 KB
    pickled, and a worker's write of it into a 64 KiB pipe waited until the
    run's process had read the rest (its reading thread needs the GIL, which
    the run's main thread holds while it signs): the worker sat idle before
    its next task. Where the size cannot be set, the pipe stays as it is."""
    import fcntl

    setsize = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setsize is None:
        return
    for queue in (getattr(pool, "_result_queue", None), getattr(pool, "_call_queue", None)):
        writer = getattr(queue, "_writer", None)
        if writer is None:
            continue
        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(writer.fileno(), setsize, PIPE_BYTES)


class _InFlight:
    """One batch with ``--jobs`` between its step 1 and its step 3."""

    __slots__ = ("admitted", "items", "task", "unflushed")

    def __init__(self, items: list[Record | RowProblem], admitted: Admitted, task: Future[_WorkResult] | None) -> None:
        self.items, self.admitted = items, admitted
        #: its step 2: a worker's task or a batch signed here; None: held back (admitted, not signed yet)
        self.task = task
        #: signed here: its staged files, whose flushes step 3 waits for (Signer.flush_later)
        self.unflushed: Stager | None = None


class _Fed(NamedTuple):
    """A task handed to the workers (:meth:`_Flight.feed`)."""

    task: Future[_WorkResult]
    weight: float  # in a worker's queue (_weight)
    units: float  # its records, in records signed (_units)
    handed: float  # when (time.monotonic())


class _Flight:
    """The batches of a ``--jobs`` run in flight, in input order, and who signs
    them: each of the ``workers`` gets :data:`TASKS_PER_WORKER` (one it signs,
    one waiting for it in the pool, so that it never waits for work), the next
    ``workers`` are held back to refill them as soon as a task ends
    (:meth:`feed`), and the run's process signs the others itself, the oldest
    first (and, once the input is read, the held ones it is worth signing
    here: :meth:`sign_here_rather`). A task handed to the
    pool stays the worker's: nothing is taken back (``Future.cancel`` on a
    pool's task leaves it in the pool's table, and a pool that breaks later
    then fails on it in its manager thread)."""

    def __init__(self, workers: int) -> None:
        self.pending: collections.deque[_InFlight] = collections.deque()
        self.workers = workers
        self.target = TASKS_PER_WORKER * workers  # in tasks, an adopting one weighing less (_weight)
        self.window = self.target + workers + IN_FLIGHT
        #: the workers' tasks not known to be done, oldest first
        self._fed: collections.deque[_Fed] = collections.deque()
        #: when a worker's task was last seen done (time.monotonic(); set by the pool's thread)
        self._done_at = 0.0
        #: what this process measured of itself, for :meth:`sign_here_rather`: seconds
        #: per record it signed (a moving average; 0: none yet), and its time outside
        #: signing (admitting and writing batches) over the batches admitted so far
        self.per_record = 0.0
        self.spent = 0.0
        self.admitted = 0

    def add(self, items: list[Record | RowProblem], admitted: Admitted) -> None:
        if admitted.ready:
            self.pending.append(_InFlight(items, admitted, None))
            return
        nothing: Future[_WorkResult] = Future()  # all refused, or skipped by the ledger: no worker needed
        nothing.set_result([])
        self.pending.append(_InFlight(items, admitted, nothing))

    def input_read(self) -> None:
        """The last batch is in: from now on a worker gets a task only when it
        has none left (or only adopting ones), and the run's process signs the
        held batches (a task queued behind a worker's current one at the end of
        the input was the tail: the run's process sat idle while the worker
        signed its last two, ~0.2 s per run)."""
        self.target = self.workers

    def held(self) -> int:
        return sum(batch.task is None for batch in self.pending)

    def signs_held_here(self, last: bool) -> bool:
        """While the input is read: more batches held back than workers (they
        have enough), so the run's process signs the oldest one now. Not once
        ``last`` is in: then :meth:`sign_here_rather` decides (signing here as
        the last batch came in left the worker idle at the end of a
        100,000-record resume while this process wrote the batches it had
        kept waiting meanwhile, up to 0.4 s)."""
        return not last and self.held() > self.workers

    def oldest_held(self) -> _InFlight:
        return next(batch for batch in self.pending if batch.task is None)

    def feed(self, pool: ProcessPoolExecutor) -> None:
        """Hand held-back batches, oldest first, to the workers while they have
        fewer than :data:`TASKS_PER_WORKER` tasks each not yet done (a task
        of adopted records counting less: :func:`_weight`)."""
        # every task that ended, not only the oldest: with more than one
        # worker a later task may end first, and its worker then needs more
        fed = self._fed = collections.deque(item for item in self._fed if not item.task.done())
        load = sum(item.weight for item in fed)
        for batch in self.pending:
            if load >= self.target:
                return
            if batch.task is None:
                jobs = batch.admitted.ready
                weight = _weight(jobs)
                batch.task = _submit(pool, task_of(jobs))
                fed.append(_Fed(batch.task, weight, _units(jobs), time.monotonic()))
                batch.task.add_done_callback(self._seen_done)
                load += weight

    def _seen_done(self, task: Future[_WorkResult]) -> None:
        self._done_at = time.monotonic()

    def sign_here(self, signer: Signer, batch: _InFlight) -> None:
        # no longer held back first: :meth:`feed`, called while it is signed
        # (Signer.between), must not hand it to a worker as well
        batch.task = Future()
        units, started = _units(batch.admitted.ready), time.monotonic()
        batch.task = _sign_here(signer, task_of(batch.admitted.ready))
        batch.unflushed, signer.unflushed = signer.unflushed, None
        if units >= MEASURED_UNITS:
            took = (time.monotonic() - started) / units
            self.per_record = took if not self.per_record else 0.7 * self.per_record + 0.3 * took

    def worker_free_in(self, now: float) -> float:
        """Seconds until a worker is expected to be free for one more task:
        its tasks' records at this process's pace (:attr:`per_record`), each
        begun when handed over or when a task was last seen done, whichever is
        later (exact with one worker; with more, an estimate)."""
        fed = [item for item in self._fed if not item.task.done()]
        if len(fed) < self.workers:
            return 0.0
        ends = [max(item.handed, self._done_at) + item.units * self.per_record for item in fed[: self.workers]]
        heapq.heapify(ends)
        for item in fed[self.workers :]:  # queued behind: each begins when the first worker is free
            heapq.heapreplace(ends, ends[0] + item.units * self.per_record)
        return max(0.0, ends[0] - now)

    def sign_here_rather(self, batch: _InFlight, now: float) -> bool:
        """Once the input is read and the oldest batch in flight is a worker's
        not ended: whether this process signs the held-back ``batch`` now, or
        leaves it to the first worker free and writes the batches ahead
        meanwhile. With S its signing time here, F the time until a worker is
        free (:meth:`worker_free_in`) and W this process's time to write the
        batches ahead of it (its mean time outside signing per batch, each):
        signing here ends at S + W at the earliest, leaving it at F + max(S, W);
        so signing here is the later end only when F < S and F < W. Before
        anything is measured: signed here. (Always signing here, a
        100,000-record resume signed its last batch of 160 while its worker
        was ~20 ms from the end of its task, then wrote four batches with that
        worker idle, ~0.25 s.)"""
        if not self.per_record or not self.admitted:
            return True
        free = self.worker_free_in(now)
        ahead = next(i for i, item in enumerate(self.pending) if item is batch)
        sign, write = self.per_record * _units(batch.admitted.ready), ahead * self.spent / self.admitted
        return free >= sign or free >= write


def _units(jobs: Sequence[Job]) -> float:
    """A batch's records in records signed: one each, :data:`ADOPT_WEIGHT` each adopted."""
    return sum(1.0 if job.adopt is None else ADOPT_WEIGHT for job in jobs)


def _weight(jobs: Sequence[Job]) -> float:
    """A task in a worker's queue: 1 when it signs all its records, down to
    :data:`ADOPT_WEIGHT` when it adopts them all."""
    if not jobs:
        return 1.0
    return _units(jobs) / len(jobs)


def _with_last(batches: Iterator[list[Record | RowProblem]]) -> Iterator[tuple[list[Record | RowProblem], bool]]:
    """Each batch, and whether it is the last (the next one is read first)."""
    current = next(batches, None)
    while current is not None:
        following = next(batches, None)
        yield current, following is None
        current = following


def _sign_here(signer: Signer, task: Task) -> Future[_WorkResult]:
    """Step 2 of one batch in the run's own process, as a worker's :func:`_work`
    would do it, as a completed future (collected in input order with the
    workers' tasks): a run-stopping error comes back as (class name, message)
    and stops the run when this batch's turn to be written comes."""
    future: Future[_WorkResult] = Future()
    try:
        future.set_result(signer.sign(*task))
    except PassportError as exc:
        future.set_result((type(exc).__name__, str(exc)))
    return future


_BROKEN = "a signing process stopped unexpectedly; the run is incomplete"


def _result_or_broken(pool: ProcessPoolExecutor, task: Future[_WorkResult]) -> _WorkResult:
    """``task.result()``, or :class:`BrokenProcessPool` once a worker has died.

    A worker killed while it writes a large result to the pool's result pipe
    leaves the executor's manager thread blocked in ``recv`` for the rest of
    the message: the pool never notices the death and ``result()`` waits
    forever (seen in the kill test). So the wait polls the workers, and on a
    death fills the pipe with zero bytes until the manager thread's read
    completes, fails to unpickle and marks the pool broken, so that
    ``shutdown`` and interpreter exit do not hang on that thread either.
    """
    while True:
        try:
            return task.result(timeout=0.5)
        except FutureTimeout:
            processes = list((pool._processes or {}).values())  # no public API for this
            if any(p.exitcode is not None for p in processes):
                _unblock_manager(pool)
                raise BrokenProcessPool(_BROKEN) from None


def _unblock_manager(pool: ProcessPoolExecutor) -> None:
    manager: threading.Thread | None = getattr(pool, "_executor_manager_thread", None)
    writer = getattr(pool, "_result_queue")._writer  # noqa: B009 (private, as above)
    if manager is None or writer.closed:
        return
    # A copy of the descriptor, owned by the thread: once the pool closes its
    # own, the number may be reused by a file the run opens next, which the
    # zeros must never reach.
    fd = os.dup(writer.fileno())

    def fill() -> None:
        zeros = bytes(65536)
        try:
            with contextlib.suppress(OSError):  # EPIPE once the pool closed its reader
                while manager.is_alive():
                    os.write(fd, zeros)
        finally:
            os.close(fd)

    threading.Thread(target=fill, name="unblock-pool", daemon=True).start()


def _abort(pool: ProcessPoolExecutor) -> None:
    """Stop the workers of a run that ends early (an error, Ctrl-C, SIGTERM)
    so that ``pool.shutdown`` returns: a worker stopped while it writes its
    result leaves the pool's manager thread waiting for the rest of the
    message (seen in the SIGTERM test, 1 run in 30), so once the workers are
    gone the manager is unblocked as in :func:`_result_or_broken`."""
    processes = list((pool._processes or {}).values())  # no public API for this
    try:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(5)
            if process.exitcode is None:
                process.kill()
                process.join()
    finally:  # whatever interrupts the joins: interpreter exit would wait for the manager forever
        _unblock_manager(pool)


def _abort_and_shutdown(pool: ProcessPoolExecutor) -> None:
    """:func:`_abort` then ``pool.shutdown``, with Ctrl-C and SIGTERM held
    (:func:`stopping`): a second one during the wait for a worker slow to die
    used to skip the manager's unblocking and the shutdown, and the process
    then hung at exit."""
    with stopping():
        try:
            _abort(pool)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

_FATAL: dict[str, type[PassportError]] = {"ConfigError": ConfigError, "KeyBackendError": KeyBackendError}


def build_signer(key: SigningKey, ns: argparse.Namespace, options: Options) -> Signer:
    """The :class:`Signer` of a run's settings with ``key`` (raises ConfigError)."""
    issuer = Hc1Issuer(
        key,
        issuer_name=ns.issuer,
        country=ns.country,
        validity_days=ns.validity_days,
        deflate_level=ns.deflate_level,
    )
    issuer.check_time(options.now)
    pdf = None
    if ns.pdf:
        from signer.pdf.cli import PdfOutput

        pdf = PdfOutput.from_args(ns, key, now=options.now)
    return Signer(issuer, options, pdf, ns)


# --------------------------------------------------------------------------
# the run


class _Held:
    """Ctrl-C and SIGTERM held back by :meth:`SigningRun._write_one` (process-wide)."""

    depth = 0  # > 0 while a record is being written
    pending = False  # a signal came meanwhile


_held = _Held()


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Ctrl-C and SIGTERM (``kill``, a service manager) stop the run as
    KeyboardInterrupt, but never in the middle of one record's files and
    manifest line: the run's ``finally`` then stops the workers and commits a
    manifest that lists every certificate written. (Blocking the signals with
    ``pthread_sigmask`` is not enough: the kernel hands them to any other
    thread, such as the process pool's, and Python then raises in the main
    thread all the same.) Handlers can only be set from the main thread;
    elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        if _held.depth:
            _held.pending = True
            return
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Under :func:`stop_signals`: Ctrl-C and SIGTERM wait until the block is
    done, then stop the run (KeyboardInterrupt) right after it."""
    _held.depth += 1
    try:
        yield
    finally:
        _held.depth -= 1
    if _held.pending and not _held.depth:
        _held.pending = False
        raise KeyboardInterrupt


@contextlib.contextmanager
def stopping() -> Iterator[None]:
    """Under :func:`stop_signals`, while the run stops (it already is):
    Ctrl-C and SIGTERM are held back and dropped at the end, so that they
    neither cut the stopping short nor replace the exception that stops the
    run."""
    pending = _held.pending
    _held.depth += 1
    try:
        yield
    finally:
        _held.depth -= 1
        _held.pending = pending


class SeenIds:
    """The record ids a run has seen, in about 8 bytes each (a set of the ids
    themselves takes about 93 MB per million; this about 9 MB).

    Each id is kept as a 64-bit keyed hash (BLAKE2b, a random key per run):
    recent ones in a set, the others in one sorted ``array`` searched with
    :func:`bisect.bisect_left`, merged when the set reaches a quarter of it.
    Two different ids share a hash with probability about n²/2⁶⁵ per run
    (3 in 100 million for a million records); the second would then be
    refused as a duplicate, reported in the error report, and issued by the
    next run (another key).
    """

    MIN_RECENT = 1 << 16

    def __init__(self) -> None:
        self._key = os.urandom(16)
        self._recent: set[int] = set()
        self._sorted = array.array("q")
        #: When a list: the hashes added from now on are appended to it too
        #: (signer.batch_resume keeps them with its resume point).
        self.journal: list[int] | None = None

    def __len__(self) -> int:
        return len(self._recent) + len(self._sorted)

    @property
    def key(self) -> bytes:
        return self._key

    def load(self, key: bytes, values: Iterable[int]) -> None:
        """Start from the hashes of an interrupted run (made with ``key``)."""
        self._key = key
        self._recent.clear()
        self._sorted = array.array("q", sorted(values))

    def add(self, record_id: str) -> bool:
        """Remember ``record_id``; False if it was seen before."""
        digest = hashlib.blake2b(record_id.encode("utf-8", "surrogatepass"), digest_size=8, key=self._key).digest()
        value = int.from_bytes(digest, "little", signed=True)
        if value in self._recent:
            return False
        known = self._sorted
        i = bisect.bisect_left(known, value)
        if i < len(known) and known[i] == value:
            return False
        self._recent.add(value)
        if self.journal is not None:
            self.journal.append(value)
        if len(self._recent) >= max(self.MIN_RECENT, len(known) // 4):
            self._sorted = array.array("q", heapq.merge(known, sorted(self._recent)))
            self._recent.clear()
        return True


class SigningRun:
    """Steps 1 and 3: admission, ordering, files, manifest, messages and counts."""

    def __init__(
        self,
        out: Path,
        *,
        signer: Signer,
        override: Override | None,
        err: TextIO,
        workers: tuple[int, WorkerSetup] | None = None,
    ) -> None:
        self.out, self.signer, self.override, self.err = out, signer, override, err
        self.workers = workers
        self.manifest = Manifest(out)
        self.seen = SeenIds()  # memory: about 8 bytes per record (a million records: 9 MB)
        self.signed = self.failed = self.clamped = 0
        self._pool: ProcessPoolExecutor | None = None
        self._board: _FlushBoard | None = None
        #: once the input is read (with ``--jobs``): whether the next batch in
        #: flight can be written at once (signed, its files flushed), so that a
        #: subclass may write the batches ready at the end together
        self.next_ready: Callable[[], bool] = lambda: False

    def fail(self, line: int, record_id: str, reason: str) -> None:
        self.failed += 1
        rid = record_id if SAFE_ID.fullmatch(record_id) else "?"
        print(f"line {line}: record {rid}: {reason}", file=self.err)

    def sign_all(self, items: Iterable[Record | RowProblem]) -> None:
        """Sign everything ``items`` holds, :data:`BATCH_SIZE` at a time."""
        source = iter(items)
        batches = iter(lambda: list(itertools.islice(source, BATCH_SIZE)), [])
        if self.workers is None or self.workers[0] <= 1:
            for batch in batches:
                admitted = self._admit(batch)
                self._write(batch, admitted, self.signer.sign(*task_of(admitted.ready)))
            return
        global _board
        jobs, setup = self.workers
        workers = jobs - 1
        # this process signs too (see _sign_here), with the workers' options (their
        # staging and journal) and the key it already holds: ``jobs`` signing
        # processes are this one and jobs - 1 workers
        here = Signer(self.signer.issuer, setup.options, self.signer.pdf, self.signer.ns)
        here.flush_later = True
        flight = _Flight(workers)
        done = False
        try:
            pool = self.start_workers()
            here.between = lambda: flight.feed(pool)  # while this process signs a batch
            for batch, last in _with_last(batches):
                started = time.monotonic()
                admitted = self._admit(batch)
                flight.spent += time.monotonic() - started
                flight.admitted += 1
                flight.add(batch, admitted)
                if last:
                    flight.input_read()
                flight.feed(pool)
                if flight.signs_held_here(last):
                    flight.sign_here(here, flight.oldest_held())
                    flight.feed(pool)
                if len(flight.pending) >= flight.window:
                    self._collect_next(flight, here, lambda: flight.feed(pool))
            self.next_ready = lambda: bool(flight.pending) and self._ready(flight.pending[0])
            while flight.pending:  # the input is read: the batches in flight are left
                flight.feed(pool)
                if self._waiting(flight.pending[0]) and flight.held():
                    held = flight.oldest_held()
                    if flight.sign_here_rather(held, time.monotonic()):
                        flight.sign_here(here, held)  # rather than wait for the workers
                        continue
                # the held ones go to the first worker free, handed over as soon as one is
                self._collect_next(flight, here, lambda: flight.feed(pool))
            done = True
        except BrokenProcessPool:
            raise ConfigError(_BROKEN) from None
        finally:
            try:  # first: neither a pool that could not be made nor an error or Ctrl-C in its shutdown leaves it frozen
                gc.unfreeze()
                for left in flight.pending:  # a run that stops: the files staged here stay for the next run
                    if left.unflushed is not None:
                        with contextlib.suppress(Exception):
                            left.unflushed.close()
                with contextlib.suppress(Exception):
                    here.close()
            finally:
                self.next_ready = lambda: False
                if self._pool is not None and done:
                    pool.shutdown(wait=True, cancel_futures=True)
                elif self._pool is not None:  # an error or Ctrl-C: stop the batches in flight now
                    _abort_and_shutdown(pool)
                self._pool = self._board = _board = None

    def start_workers(self, first: Callable[..., Any] | None = None, *args: Any) -> ProcessPoolExecutor:
        """The workers' pool, made once: by :meth:`sign_all` at its start, or
        earlier by a subclass that has work for the workers before its first
        batch: ``first(*args)``, done by one of them as it starts
        (:func:`_run_first`; its result is not read; ``args`` reach the
        workers through the fork, not pickled: :data:`_first`). What this
        process holds is frozen for the fork (``gc.freeze``); :meth:`sign_all`
        ends the pool and gives it back. Only with ``--jobs``."""
        global _key_open_lock, _board, _first, _first_claim
        if self._pool is not None:
            return self._pool
        assert self.workers is not None
        jobs, setup = self.workers
        context = multiprocessing.get_context("fork")
        _key_open_lock = context.Lock()
        if setup.options.stage is not None:  # the workers' flushes, confirmed through shared memory
            self._board = _board = _FlushBoard(context, jobs - 1, Path(setup.options.stage).parent)
        # the workers are forked from this process: what it holds so far (the
        # modules, the key, the ledger) is put out of the collector's reach,
        # so that no process's full collections walk it again and again (nor
        # copy its pages into the workers by touching them); given back at the end
        gc.freeze()
        try:
            # ProcessPoolExecutor, not multiprocessing.Pool: a worker that dies
            # (killed, crashed key module) breaks the pool and the run stops with
            # an error; Pool would start a new worker and wait for the lost batch forever.
            self._pool = _process_pool(jobs - 1, context, setup)
            if first is not None:
                # the first submit forks the workers: they find the work in their copy of _first
                _first, _first_claim = (first, args), context.Value("b", 0)
                try:
                    _submit_call(self._pool, _forked)
                finally:
                    _first = _first_claim = None
        except BaseException:
            self.stop_workers()
            raise
        return self._pool

    def stop_workers(self) -> None:
        """End the workers started early (:meth:`start_workers`) when
        :meth:`sign_all` is not to run: an error in between. Their tasks are
        dropped. With none started, nothing is frozen: a no-op."""
        global _board
        pool, self._pool = self._pool, None
        gc.unfreeze()
        self._board = _board = None
        if pool is not None:
            _abort_and_shutdown(pool)

    def _waiting(self, head: _InFlight) -> bool:
        """The oldest batch in flight is a worker's that has not ended (signed, and its files flushed)."""
        task = head.task
        if task is None or head.unflushed is not None:
            return False
        if not task.done():
            return True
        return self._board is not None and task.exception() is None and not self._board.ended(task.result())

    def _ready(self, head: _InFlight) -> bool:
        """A batch in flight can be written without waiting: a worker's, signed
        and its files' flush confirmed (a batch signed here waits for its own
        flush thread: not counted)."""
        task = head.task
        return task is not None and head.unflushed is None and task.done() and not self._waiting(head)

    def _collect_next(self, flight: _Flight, here: Signer, idle: Callable[[], None] | None = None) -> None:
        """Step 3 of the oldest batch in flight (signed here first if it was held back);
        ``idle`` is called once a worker's task has ended and while it waits for its flushes."""
        head = flight.pending[0]
        if head.task is None:
            flight.sign_here(here, head)
        flight.pending.popleft()
        assert head.task is not None
        if head.unflushed is not None:  # signed here: its files on disk before they are renamed
            unflushed, head.unflushed = head.unflushed, None
            unflushed.flushed()
        self._collect(flight, (head.items, head.admitted, head.task), idle)

    def _collect(
        self,
        flight: _Flight,
        item: tuple[list[Record | RowProblem], Admitted, Future[_WorkResult]],
        idle: Callable[[], None] | None = None,
    ) -> None:
        batch, admitted, task = item
        result = task.result() if self._pool is None else _result_or_broken(self._pool, task)
        if idle is not None:  # a worker's task ended: it may have room for a held-back batch
            idle()
        if isinstance(result, _Unconfirmed):  # a worker's staged files: placed only once flushed
            assert self._board is not None
            self._board.wait(self._pool, result.worker, result.number, idle)
            result = result.results
        if isinstance(result, tuple):
            name, message = result
            raise _FATAL.get(name, PassportError)(message)
        started = time.monotonic()
        self._write(batch, admitted, result)
        flight.spent += time.monotonic() - started

    def _admit(self, batch: Sequence[Record | RowProblem]) -> Admitted:
        """Step 1 for one batch."""
        refused: dict[int, str] = {}
        ready: list[Job] = []
        for position, item in enumerate(batch):
            if isinstance(item, RowProblem):
                refused[position] = f"{item.reason}: {item.message}"
                continue
            verified = is_verified(item)
            reason = self._refusal(item, verified)
            if reason:
                refused[position] = reason
            else:
                ready.append(Job(position, item, verified))
        return Admitted(refused, ready)

    def _refusal(self, record: Record, verified: bool) -> str:
        """Why the record may not be signed in this run, or ""."""
        rid = record.record_id
        if not SAFE_ID.fullmatch(rid):
            return "record id missing or not usable as a file name"
        if not self.seen.add(rid):
            return "duplicate record id in this file"
        if not verified and self.override is None:
            return "not verified (run the checks, or --allow-unverified)"
        return ""

    def _write(
        self, batch: Sequence[Record | RowProblem], admitted: Admitted, results: Sequence[Result]
    ) -> None:
        """Step 3, in input order."""
        refused = admitted.refused
        signed = {job.position: (job.record, job.verified, result) for job, result in zip(admitted.ready, results, strict=True)}
        for position, item in enumerate(batch):
            if position in refused:
                self.fail(item.line, item.record_id, refused[position])
                continue
            record, verified, result = signed[position]
            if isinstance(result, str):
                self.fail(record.line, record.record_id, result)
            else:
                assert isinstance(result, Outputs)  # adopting a killed run's files is the ledger's (signer.batch)
                self._write_one(record, verified, result)

    def _write_one(self, record: Record, verified: bool, result: Outputs) -> None:
        """Write one record's files and its manifest line, as one step: under
        :func:`stop_signals`, Ctrl-C and SIGTERM are held back meanwhile and
        take effect right after (no signed file without its manifest line, no
        temporary file left)."""
        with signals_held():
            self._write_files(record, verified, result)

    def _write_files(self, record: Record, verified: bool, result: Outputs) -> None:
        written: list[Path] = []
        target = self.out
        try:
            for name, data in result.files.items():
                target = self.out / name
                write_atomic(target, data)
                written.append(target)
        except BaseException as exc:  # OSError (or an exception the signals did not hold back)
            # No signed file may exist without its manifest line: remove this
            # record's outputs and stop the run (the manifest keeps the others).
            for path in written:
                with contextlib.suppress(OSError):
                    path.unlink()
            if not isinstance(exc, OSError):
                raise
            raise ConfigError(
                f"line {record.line}: record {record.record_id}: cannot write {target}: {exc.strerror or exc}"
            ) from None
        issued = result.issued
        self.manifest.add(
            manifest_entry(
                issued,
                line=record.line,
                verified=verified,
                files=tuple(result.files),
                override=None if verified else self.override,
            )
        )
        self.signed += 1
        self.clamped += issued.exp_clamped

