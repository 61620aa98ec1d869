"""Exactly-once signing runs against the issuance ledger (``python -m signer batch``).

    >>> # ledger = Ledger.open("ledger.sqlite", actor="operator")
    >>> # with BatchOutput(out_dir) as output:
    >>> #     run = LedgerRun(output, ledger=ledger, centre="Trạm Y tế ...", signer=signer, ...)
    >>> #     try: run.sign_all(read_records(path))
    >>> #     finally: run.finish()

The same three steps as :class:`signer.run.SigningRun` (admit, sign, write;
``--jobs`` workers included), with the ledger in steps 1 and 3. Per batch of
256 records:

1. **admit**: the ledger rows of the batch's records are read in one query;
   each record is skipped (already issued with this data, files in place),
   resumed (an interrupted run reserved a UVCI for it: signed again with that
   UVCI), re-written (its files are missing or damaged: signed again with the
   same UVCI at the same time, so the payload is the same), or gets a new
   UVCI; the new UVCIs are stored as ``reserved`` in one transaction
   *before* anything is signed;
2. **sign**: as ``signer sign``; the payload and file hashes are computed
   where the record is signed;
3. **write**: one transaction marks the certificates ``signed`` with their
   payload and file hashes; the files are written to ``DIR/.partial/``,
   flushed to disk (signer.durable: one syncfs), renamed into ``DIR`` and the
   directory flushed (with ``--jobs``, in a thread while the next batch is
   read and admitted). Ctrl-C and SIGTERM wait for the end of this step.
   The certificates are marked ``written`` (and the ones they replace
   ``superseded``) in the next batch's step-1 transaction, before its
   reservations, or in one of their own when no admission comes first (the
   last batches, a batch with nothing to reserve, the end of the run); a
   run stopped by Ctrl-C, SIGTERM or an error still commits it for the
   last batch placed (``LedgerRun.sign_all``).

A run killed at any point is finished by running it again (docs/ledger.md,
"Crash safety"). The manifest is the ledger's: appended to after each
batch while a run only adds certificates, made whole when one changed
(signer.batch_manifest).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signer.batch_adopt import JOURNAL, Adopted, Attempt, journal_key, scan, settings_tag
from signer.batch_manifest import ManifestFile, fsync_dir, manifest_of
from signer.batch_manifest import manifest_entry_of as manifest_entry_of  # re-exported
from signer.batch_manifest import write_manifest as write_manifest  # re-exported
from signer.batch_report import BatchCounts, ErrorReport, Progress, reason_kind
from signer.durable import Flusher, flush_written
from signer.ledger.store import (
    MANIFEST_STALE,
    PENDING,
    Certificate,
    Change,
    FileEntry,
    Ledger,
    Reservation,
)
from signer.manifest import Override
from signer.records import Record, RowProblem
from signer.run import (
    Admitted,
    Job,
    Outputs,
    Result,
    SigningRun,
    prove_ahead,
    signals_held,
    stopping,
    write_all,
)
from signer.uvci import new_uvcis
from signer.web.holders import register_holders
from verifier.errors import ConfigError

if TYPE_CHECKING:
    from signer.batch_resume import ResumePoint

#: Temporary files of a batch run, inside the output folder (same file system
#: as the final names, so the rename is atomic). Emptied when a run starts.
PARTIAL_DIR = ".partial"
#: Where a left-over ``.partial/`` is renamed before it is removed.
TRASH_DIR = ".partial-old"
_STALE = MANIFEST_STALE


@dataclass(frozen=True)
class Plan:
    """What step 1 decided for one record."""

    kind: str  # "new", "reissue", "resume", "rewrite" (sign again), "finalize" (files already there)
    # or "adopt" (a "resume" whose files a killed run's signing process had finished:
    # signer.batch_adopt; known once step 2 proved them)
    uvci: str
    record: Record
    verified: bool
    supersedes: str | None = None  # the written certificate this one replaces
    files: tuple[FileEntry, ...] = ()  # finalize: the files the ledger expects
    payload_hash: str | None = None  # finalize: the signed payload the ledger holds


@dataclass(frozen=True)
class _Unwritten:
    """A batch whose files are placed, before its step 5 ('written') is committed."""

    batch: Sequence[Record | RowProblem]
    done: Sequence[tuple[Plan, dict[str, Any], str | None]]
    seen: list[int]  # the batch's seen-id hashes (resume point)
    refused: list[tuple[int, str, str]]  # its refused records (resume point)


@dataclass
class _Unplaced:
    """A batch signed (its files staged), before its step 3 ('signed') is
    committed: what it changes in the ledger, its files, and its messages
    and counts (applied once placed, after the step 5 of the batch before)."""

    batch: Sequence[Record | RowProblem]
    seen: list[int]  # the batch's seen-id hashes (resume point)
    signed: list[Change] = dataclasses.field(default_factory=list)
    released: list[Change] = dataclasses.field(default_factory=list)
    done: list[tuple[Plan, dict[str, Any], str | None]] = dataclasses.field(default_factory=list)
    files: list[tuple[str, bytes]] = dataclasses.field(default_factory=list)
    staged: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (name, staged path)
    unsynced: list[str] = dataclasses.field(default_factory=list)  # adopted from a killed run: maybe not on disk yet
    #: with the folder locked: those files' flushes (BatchOutput.flush_adopted), started in a thread
    #: as the batch comes back from step 2; waited for before they are renamed
    adopted_flushes: list[Future[None]] = dataclasses.field(default_factory=list)
    fails: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)  # (line, record id, reason)
    skipped: int = 0
    clamped: int = 0

    def merge(self, later: _Unplaced) -> None:
        """Take in the batch that follows this one in the input: both are then
        committed, placed and marked written together (every field: the lists
        joined, the counts added)."""
        for name in (f.name for f in dataclasses.fields(self)):
            mine, theirs = getattr(self, name), getattr(later, name)
            setattr(self, name, mine + theirs if isinstance(mine, int) else [*mine, *theirs])


#: Descriptors of the folders locked by this process (closed in forked children).
_locked_folders: set[int] = set()


def _close_locked_folders() -> None:
    for fd in _locked_folders:
        with contextlib.suppress(OSError):
            os.close(fd)
    _locked_folders.clear()


os.register_at_fork(after_in_child=_close_locked_folders)


class BatchOutput:
    """The output folder of a batch run, locked for the run (``flock`` on the
    folder itself: no lock file is left behind).

    Entering it moves the temporary files an interrupted run left in
    ``DIR/.partial/`` to ``DIR/.partial-old/`` (only this run may write in
    ``.partial`` now): the run may adopt finished files from there
    (signer.batch_adopt, :attr:`leftovers`); the rest is removed at the end.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial = path / PARTIAL_DIR
        self._fd: int | None = None
        self._key: str | None = None
        #: the folder's manifest as this run keeps it (signer.batch_manifest.manifest_of)
        self.manifest: ManifestFile | None = None
        #: the staging folders' parents that interrupted runs left (in ``.partial-old``)
        self.leftovers: list[Path] = []
        #: flushes what :meth:`write_durably` writes (one for the run: made before its first file)
        self._flusher: Flusher | None = None
        #: the centre :func:`check_folder_centre` found alone in the folder (while it is entered)
        self.centre_checked: str | None = None

    def __enter__(self) -> BatchOutput:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as err:
            raise ConfigError(f"cannot use the output folder {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            raise ConfigError(f"another run is writing into {self.path}; wait for it to end") from None
        # The signing workers are forked with this descriptor: they close their
        # copy, or a run killed with -9 would keep the folder locked until its
        # orphaned workers notice and end.
        _locked_folders.add(self._fd)
        if self.partial.exists():
            # renamed away first: a process of an earlier run still writing
            # there (an orphaned Celery chunk) then finds its paths gone and
            # fails, instead of racing the removal ("Directory not empty").
            # Into one trash folder of a fixed name: finding leftovers of an
            # interrupted removal must not scan the whole folder (100,000
            # certificates are 200,000 names: a glob took about 0.5 s)
            trash = self.path / TRASH_DIR
            trash.mkdir(mode=0o700, exist_ok=True)
            os.rename(self.partial, trash / secrets.token_hex(4))
        # kept until the end of the run (and through a kill of this one): its
        # staging folders may hold finished files of reserved certificates
        with contextlib.suppress(OSError):
            self.leftovers = [Path(e.path) for e in os.scandir(self.path / TRASH_DIR) if e.is_dir(follow_symlinks=False)]
        # exist_ok: such a process may have made it again meanwhile (its chunk is gone: it does nothing)
        self.partial.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.partial, 0o700)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_flusher()
        if self.manifest is not None:
            self.manifest.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.partial)
        shutil.rmtree(self.path / TRASH_DIR, ignore_errors=True)  # what no run adopted
        self.leftovers = []
        self.centre_checked = None
        if self._fd is not None:
            _locked_folders.discard(self._fd)
            os.close(self._fd)  # releases the lock
            self._fd = None

    @property
    def locked(self) -> bool:
        """This process holds the folder's lock (not a Celery worker's view of it)."""
        return self._fd is not None

    @property
    def key(self) -> str:
        """How the ledger names this folder (its absolute path)."""
        if self._key is None:
            self._key = str(self.path.resolve())
        return self._key

    def write_durably(self, files: Sequence[tuple[str, bytes]]) -> None:
        """Write the files under temporary names, flush them to disk (one
        flush for all: signer.durable), rename them into place and flush the
        folder: afterwards every file is whole and on disk, whatever happens
        next. Raises ``OSError``."""
        temps: list[tuple[Path, Path]] = []
        try:
            if self._flusher is None:  # before the files: it sees their write-back errors
                self._flusher = Flusher(self.partial)
            written: list[tuple[str, int]] = []
            for name, data in files:
                tmp = self.partial / name
                temps.append((tmp, self.path / name))
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
                try:
                    write_all(fd, data)
                finally:
                    os.close(fd)
                written.append((str(tmp), len(data)))
            self._flusher.flush(written)
            for tmp, final in temps:
                os.replace(tmp, final)
            temps = []
            fsync_dir(self.path)
        finally:
            for tmp, _ in temps:
                with contextlib.suppress(OSError):
                    tmp.unlink()

    def close_flusher(self) -> None:
        if self._flusher is not None:
            self._flusher.close()
            self._flusher = None

    def place_staged(
        self, staged: Sequence[tuple[str, str]], unsynced: Sequence[str] = (), *, sync_folder: bool = True
    ) -> None:
        """Rename files a signing process wrote and flushed under ``DIR/.partial``
        (:class:`signer.run.Stager`) into place, then flush the folder (unless
        ``sync_folder`` is false: the caller then calls :meth:`sync_folder`
        before anything may count on the renames); ``unsynced`` (paths among
        them: adopted from a killed run) are flushed first
        (:meth:`flush_adopted`). Raises ``OSError``."""
        self.flush_adopted(unsynced)
        # by directory descriptors: no walk of the two paths for each rename
        target = self._fd if self._fd is not None else os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        sources: dict[str, int] = {}
        try:
            for name, path in staged:
                folder, base = os.path.split(path)
                source = sources.get(folder)
                if source is None:
                    source = sources[folder] = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                os.replace(base, name, src_dir_fd=source, dst_dir_fd=target)
            if sync_folder or target != self._fd:
                os.fsync(target)
        finally:
            for source in sources.values():
                os.close(source)
            if target != self._fd:
                os.close(target)
        own = str(self.partial)
        for folder in sources:
            if os.path.dirname(folder) != own:
                continue  # a killed run's folder (adopted files): its journal may name files of later batches
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, JOURNAL))
            with contextlib.suppress(OSError):
                os.rmdir(folder)

    def flush_adopted(self, paths: Sequence[str]) -> None:
        """Files adopted from a killed run to disk (signer.durable.flush_written).
        If that fails, their staging folders' journals go first: no later run
        may adopt them (the error was reported here, and a later fdatasync of
        the same file returns 0: review11-followup F1). Raises ``OSError``."""
        try:
            flush_written(paths)
        except OSError:
            for folder in {os.path.dirname(path) for path in paths}:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, JOURNAL))
            raise

    def sync_folder(self) -> None:
        """Flush the folder itself (the renames into it). Raises ``OSError``."""
        if self._fd is not None:
            os.fsync(self._fd)
        else:
            fsync_dir(self.path)

    def files_ok(self, files: Sequence[FileEntry], *, full: bool) -> bool:
        """Every file is there with the ledger's size (and SHA-256 when ``full``)."""
        if not files:
            return False
        for entry in files:
            if "/" in entry.name or entry.name.startswith("."):
                return False
            path = self.path / entry.name
            try:
                if path.stat().st_size != entry.size:
                    return False
                if full and sha256_file(path) != entry.sha256:
                    return False
            except OSError:
                return False
        return True


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_folder_centre(ledger: Ledger, output: BatchOutput, centre: str) -> None:
    """One centre per folder: file names are record ids, which are unique per
    centre only (another centre's run would overwrite the files). Once per
    entry of the folder (it is locked meanwhile): the folder's lowest and
    highest centre, two look-ups in the index on (out_dir, centre)."""
    if output.centre_checked == centre:
        return
    ends = ledger.db.fetchone(
        "SELECT (SELECT MIN(centre) FROM certificates WHERE out_dir = ?),"
        " (SELECT MAX(centre) FROM certificates WHERE out_dir = ?)",
        (output.key, output.key),
    )
    other = next((c for c in ends or () if c is not None and c != centre), None)
    if other is not None:
        raise ConfigError(
            f"{output.path} holds the certificates of another centre ({other}); "
            "give each centre its own output folder"
        )
    output.centre_checked = centre


class LedgerRun(SigningRun):
    """A signing run whose admission and output go through the ledger."""

    def __init__(
        self,
        output: BatchOutput,
        *,
        ledger: Ledger,
        centre: str,
        report: ErrorReport,
        progress: Progress | None = None,
        check_files: str = "size",
        reissue_before: int | None = None,
        reissue_revoked: bool = False,
        resume: ResumePoint | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(output.path, **kwargs)
        self.output, self.ledger, self.centre = output, ledger, centre
        # signer reissue: current certificates expiring before this time (epoch
        # seconds), and records whose certificate was revoked, get a new one
        self.reissue_before, self.reissue_revoked = reissue_before, reissue_revoked
        self.report, self.progress = report, progress
        self.full_check = check_files == "hash"
        self.counts = BatchCounts()
        self.country = self.signer.issuer.country
        check_folder_centre(ledger, output, centre)
        # the manifest is appended to by the process that holds the folder's lock
        self.manifest_file = manifest_of(ledger, output) if output.locked else None
        # signer.batch_resume: where an interrupted run over this input got to
        self.resume = resume
        self._refused_now: list[tuple[int, str, str]] = []  # this batch's, for the resume point
        self._unwritten: _Unwritten | None = None  # placed, step 5 not committed yet
        self._unplaced: _Unplaced | None = None  # written (signed, staged), step 3 not committed yet
        self._input_read = False
        # with --jobs: the folder's flush after a batch's renames, in a thread while
        # this process reads and admits the next batch; waited for before step 5
        self._folder_flush: Future[None] | None = None
        self._flusher: ThreadPoolExecutor | None = None
        # the adopted files' flushes, started as their batch comes back from step 2
        self._adopted_flusher: ThreadPoolExecutor | None = None
        # signer.batch_adopt: finished files of a killed run's signing processes, by UVCI;
        # this run's workers (forked later) journal theirs under this run's tag and key
        self._leftovers: dict[str, Any] = {}
        ns = self.signer.ns
        if output.locked and ns is not None and (output.leftovers or self.workers is not None):
            tag = settings_tag(self.signer, ns)
            key = journal_key(ledger.key.adopt, tag)
            if output.leftovers:
                self._leftovers = scan(output.leftovers, tag, key)
            if self.workers is not None:
                jobs, setup = self.workers
                options = dataclasses.replace(setup.options, journal_tag=tag, journal_key=key)
                self.workers = (jobs, dataclasses.replace(setup, options=options))
                if self._leftovers and jobs > 1:
                    # the workers are started now, and first check the HC1s of the killed
                    # run's finished files, while this process sets up and admits the first
                    # batch: most of what adopting them costs is done by then. Forked before
                    # the input's prefix is checked (its thread starts next: no thread of
                    # the run runs at the fork)
                    candidates = [item for items in self._leftovers.values() for item in items]
                    self.start_workers(prove_ahead, candidates)
        try:
            if resume is not None:  # the prefix's counts and ids (its bytes are checked in a thread
                # meanwhile: ResumePoint.verified() before the first change to the ledger)
                resume.start_check()
                self.signed, self.failed, self.clamped = resume.restore(self.counts, self.seen)
                for row in resume.errors:
                    report.add(*row)
        except BaseException:
            self.stop_workers()
            raise
        options = self.signer.options
        self._names = (".hc1.txt", *((".pdf",) if self.signer.pdf is not None else ()),
                       *((".png",) if options.png else ()), *((".svg",) if options.svg else ()))  # fmt: skip

    # -- step 1 -------------------------------------------------------------
    def fail(self, line: int, record_id: str, reason: str) -> None:
        self.failed += 1
        self.counts.refused += 1
        self.counts.reasons[reason_kind(reason)] += 1
        self.report.add(line, record_id, reason)
        if self.resume is not None:
            self._refused_now.append((line, record_id, reason))

    def _admit(self, batch: Sequence[Record | RowProblem]) -> Admitted:
        self.seen.journal = [] if self.resume is not None else None
        admitted = super()._admit(batch)
        seen_now, self.seen.journal = self.seen.journal or [], None  # this batch's ids (resume point)
        jobs = admitted.ready
        plans: dict[int, Plan] = {}
        skipped: set[int] = set()
        admitted.extra = (plans, skipped, seen_now)
        if not jobs:
            self._settle()
            return admitted
        # read and reserve in one transaction: on SQLite it holds the write lock
        # (BEGIN IMMEDIATE), so a concurrent run cannot reserve the same records
        # between the two (on PostgreSQL the unique indexes refuse the second).
        # The previous batch's step 5 ('written') comes first in it: one commit
        # (and one wait for the disk) less per batch; its files are in place
        # and flushed since that batch's step 4.
        # The step 3 ('signed') of the batch written last comes with them too,
        # and its files are placed once the transaction is committed.
        self._folder_on_disk()
        if self.resume is not None:  # the input's prefix checked before the ledger changes (every
            # change follows an admission's transaction: nothing is pending to settle before the first)
            self.resume.verified()
        with signals_held():
            unwritten, unplaced = self._unwritten, self._unplaced
            changes, meta = self._mark_written(unwritten.done) if unwritten is not None else ([], None)
            if unplaced is not None:
                changes += [*unplaced.signed, *unplaced.released]
            with self.ledger.db.transaction():
                if changes:
                    self.ledger.apply(changes=changes, meta=meta)
                ready = self._reserve(admitted, jobs, plans, skipped)
            self._committed(unwritten, meta, unplaced)
        admitted.ready = ready
        return admitted

    def _reserve(self, admitted: Admitted, jobs: Sequence[Job], plans: dict[int, Plan], skipped: set[int]) -> list[Job]:
        """Step 1 in the ledger (in the caller's transaction): each record's plan; the jobs to sign
        (or, for a killed run's reservation, to adopt its finished files: signer.batch_adopt)."""
        history = self.ledger.for_records(self.centre, [j.record.record_id for j in jobs])
        key, out_key = self.ledger.key, self.output.key
        fresh = iter(new_uvcis(len(jobs), self.country, made_at=time.time()))  # stamp: the ledger's indexes stay local
        reservations: list[Reservation] = []
        releases: list[Change] = []
        ready = []
        for job in jobs:
            record, position = job.record, job.position
            record_hash = key.record_hash(record)
            rows = history.get(record.record_id, [])
            # journal lines of a killed run's finished files for this record
            leftovers = self._leftovers.pop(record.record_id, None) if self._leftovers else None
            pending = next((c for c in rows if c.state in PENDING), None)
            written = next((c for c in rows if c.state == "written"), None)
            replaces = written.uvci if written is not None else None
            if pending is not None and pending.record_hash == record_hash:
                if pending.out_dir != out_key:
                    admitted.refused[position] = (
                        f"being issued into another folder ({pending.out_dir}); run the batch there"
                    )
                elif pending.state == "signed" and self.output.files_ok(pending.files, full=True):
                    plans[position] = Plan(
                        "finalize", pending.uvci, record, job.verified, replaces, pending.files, pending.payload_hash
                    )
                else:  # step 2 adopts the killed run's files if they prove to be this issue, or signs again
                    plans[position] = Plan("resume", pending.uvci, record, job.verified, replaces)
                    names = tuple(record.record_id + suffix for suffix in self._names)
                    attempt = Attempt(tuple(leftovers), record_hash, names, pending) if leftovers else None
                    ready.append(job._replace(uvci=pending.uvci, record_hash=record_hash, adopt=attempt))
                continue
            if pending is not None:  # reserved for data that has changed since
                releases.append(Change(pending.uvci, "released", note="the record changed before it was written"))
            kind = "new"
            if written is not None and written.record_hash == record_hash:
                if self._due(written):
                    kind = "reissue"
                elif written.out_dir != out_key or self.output.files_ok(written.files, full=self.full_check):
                    skipped.add(position)
                    continue
                else:
                    plans[position] = Plan("rewrite", written.uvci, record, job.verified)
                    ready.append(job._replace(uvci=written.uvci, iat=written.iat, record_hash=record_hash))
                    continue
            if written is None and any(c.state == "revoked" and c.record_hash == record_hash for c in rows):
                if not self.reissue_revoked:
                    admitted.refused[position] = (
                        "its certificate was revoked; not issued again (signer reissue --revoked)"
                    )
                    continue
                kind = "reissue"
            generation = 1 + max((c.generation for c in rows if c.record_hash == record_hash), default=-1)
            uvci = next(fresh)
            reservations.append(self._reservation(uvci, record, record_hash, generation, job.verified))
            plans[position] = Plan(kind, uvci, record, job.verified, replaces)
            ready.append(job._replace(uvci=uvci, record_hash=record_hash))
        self.ledger.apply(reservations, releases)
        register_holders(self.ledger, self.centre, [job.record for job in jobs])  # the portal's look-up
        self.counts.released += len(releases)
        return ready

    def _due(self, written: Certificate) -> bool:
        """A current certificate that ``signer reissue --expiring-within`` replaces."""
        return self.reissue_before is not None and written.exp is not None and written.exp < self.reissue_before

    def _reservation(self, uvci: str, record: Record, record_hash: str, generation: int, verified: bool) -> Reservation:
        override: Override | None = None if verified else self.override
        return Reservation(
            uvci=uvci,
            centre=self.centre,
            record_id=record.record_id,
            record_hash=record_hash,
            generation=generation,
            citizen_hash=self.ledger.key.citizen_hash(record.id_number),
            out_dir=self.output.key,
            line=record.line,
            verified=verified,
            override_operator=override.operator if override else None,
            override_reason=override.reason if override else None,
            province=record.province or None,
            commune=record.commune or None,
        )

    # -- step 3 -------------------------------------------------------------
    def _write(self, batch: Sequence[Record | RowProblem], admitted: Admitted, results: Sequence[Result]) -> None:
        # SQLite's WAL copied back by a thread, not in this thread's commits;
        # started only once the --jobs workers are forked (a fork while the
        # thread is inside SQLite would leave its locks held in the child):
        # the pool forks them at its first task, which batches with nothing
        # to sign never gave it
        if self._pool is None or self._pool._processes:
            self.ledger.db.checkpoint_in_background()
        plans, skipped, seen_now = admitted.extra
        by_position = {job.position: result for job, result in zip(admitted.ready, results, strict=True)}
        ready = _Unplaced(batch, seen_now)
        for position, item in enumerate(batch):
            if position in admitted.refused:
                ready.fails.append((item.line, item.record_id, admitted.refused[position]))
                continue
            if position in skipped:
                ready.skipped += 1
                continue
            plan = plans[position]
            if plan.kind == "finalize":
                ready.done.append((plan, {}, plan.payload_hash))
                continue
            result = by_position[position]
            if isinstance(result, Adopted):  # signed by the killed run, files proven whole (step 2)
                if not result.already_signed:
                    ready.signed.append(Change(plan.uvci, "signed", result.values))
                ready.clamped += result.values["exp_clamped"]
                ready.done.append((dataclasses.replace(plan, kind="adopt"), {}, result.values["payload_hash"]))
                ready.staged += result.staged
                ready.unsynced += (path for _, path in result.staged)
                continue
            if isinstance(result, str):
                ready.fails.append((item.line, item.record_id, result))
                if plan.kind != "rewrite":  # a reserved UVCI that will not be signed now
                    ready.released.append(Change(plan.uvci, "released", note="the record could not be signed"))
                continue
            values = _signed_values(result)
            ready.clamped += result.issued.exp_clamped
            if plan.kind == "rewrite":
                ready.done.append((plan, values, values["payload_hash"]))
            else:
                ready.signed.append(Change(plan.uvci, "signed", values))
                ready.done.append((plan, {}, values["payload_hash"]))
            ready.files += result.files.items()
            ready.staged += ((name, path) for name, (path, _) in result.staged.items())
        if ready.unsynced and self.output.locked:  # to disk while this process goes on; _place waits
            if self._adopted_flusher is None:  # made here: after the workers are forked
                self._adopted_flusher = ThreadPoolExecutor(1, thread_name_prefix="adopted-flush")
            ready.adopted_flushes.append(self._adopted_flusher.submit(self.output.flush_adopted, ready.unsynced))
            ready.unsynced = []
        # its step 3 ('signed') is committed with the next batch's reservations
        # (_admit: one commit a batch, not two) and its files placed right after;
        # at once when at most one admission is to come (the input is read,
        # one batch ahead) or another batch is ready first (_settle). Once the
        # input is read, the batches that are ready one after the other (at the
        # end, those the workers finished while this process signed its own)
        # go in together: one commit and one flush of the folder, not one each
        if self._unplaced is not None and self._input_read:
            with signals_held():  # a stop inside would leave a half-merged batch for finish_written
                self._unplaced.merge(ready)
        else:
            if self._unplaced is not None:
                self._settle()
            self._unplaced = ready
        if self._input_read and not self.next_ready():
            self._settle()

    def _settle(self) -> None:
        """Commit what waits for a transaction: step 5 of the batch placed
        last, and step 3 of the batch ready to be placed, whose files are
        then placed; in one transaction."""
        self._folder_on_disk()
        unwritten, unplaced = self._unwritten, self._unplaced
        if unwritten is None and unplaced is None:
            return
        with signals_held():
            changes, meta = self._mark_written(unwritten.done) if unwritten is not None else ([], None)
            if unplaced is not None:
                changes += [*unplaced.signed, *unplaced.released]
            if changes:
                self.ledger.apply(changes=changes, meta=meta)  # one transaction
            self._committed(unwritten, meta, unplaced)

    def _committed(self, unwritten: _Unwritten | None, meta: dict[str, str] | None, unplaced: _Unplaced | None) -> None:
        """After the transaction that held ``unwritten``'s step 5 and
        ``unplaced``'s step 3: the first's manifest lines, counts and resume
        point, then the second's messages, counts and files (in that order:
        the resume point holds the counts up to the batch it names)."""
        self._unwritten = None
        if unplaced is not None:
            self._unplaced = None
        if unwritten is not None:
            self._after_written(unwritten, meta)
        if unplaced is not None:
            self._place(unplaced)

    def _place(self, ready: _Unplaced) -> None:
        """A batch's files into place once its step 3 is committed (the ledger
        knows every file's hash before the file can appear), then its
        messages and counts."""
        for line, record_id, reason in ready.fails:
            self.fail(line, record_id, reason)
        self.counts.skipped += ready.skipped
        self.clamped += ready.clamped
        self.counts.released += len(ready.released)
        try:
            for flushing in ready.adopted_flushes:
                flushing.result()
            if ready.files:
                self.output.write_durably(ready.files)
            if ready.staged:
                later = self.output.locked  # the folder's descriptor is held: flushed in a thread
                self.output.place_staged(ready.staged, ready.unsynced, sync_folder=not later)
                if later:
                    if self._flusher is None:  # made here: after the workers are forked
                        self._flusher = ThreadPoolExecutor(1, thread_name_prefix="folder-flush")
                    self._folder_flush = self._flusher.submit(self.output.sync_folder)
        except OSError as err:
            raise ConfigError(f"cannot write into {self.output.path}: {err.strerror or err}") from None
        # step 5 is committed with the next batch's reservations (_admit) or
        # at the end (finish_written); until then these are 'signed' with
        # their files in place, which a run after a kill completes
        refused, self._refused_now = self._refused_now, []
        self._unwritten = _Unwritten(ready.batch, ready.done, ready.seen, refused)

    def sign_all(self, items: Iterable[Record | RowProblem]) -> None:
        def read() -> Iterator[Record | RowProblem]:
            yield from items
            # read one batch ahead (signer.run._with_last): at most one admission is to come,
            # so each batch is placed as soon as written
            self._input_read = True
            # the input is read, the batches in flight are left: the ledger is
            # checkpointed after each of their commits from now on, so that its
            # close at the end (in this thread, after the last batch) has little to copy
            self.ledger.db.checkpoint_every(1)

        try:
            try:
                super().sign_all(read())
            except BaseException:
                # Ctrl-C, SIGTERM, a worker's error: the last batch placed is still
                # marked written (its files are in place and on disk), unless the
                # ledger or the disk fails again (a run after it completes the batch)
                with stopping(), contextlib.suppress(Exception):
                    self.finish_written()
                raise
            self.finish_written()
        finally:
            # their threads end before the folder's lock is released, whatever
            # arrives meanwhile (a second Ctrl-C: the work is done or stopping)
            executors, self._flusher, self._adopted_flusher = (self._flusher, self._adopted_flusher), None, None
            with stopping():
                for executor in executors:
                    try:
                        if executor is not None:
                            executor.shutdown(wait=True)
                    except BaseException:  # one that fails (Ctrl-C held back: nothing expected) does not skip the other
                        continue

    def _folder_on_disk(self) -> None:
        """Wait for the folder's flush after the last batch's renames: step 5
        may say 'written' only once they are on disk. If it failed, that batch
        is left 'signed' with its files in place (the next run completes it)
        and the run stops: nothing more is placed (a batch signed after it
        stays 'reserved' with its staged files, adopted by the next run),
        so the resume point never passes the batch left 'signed'. A stop
        (Ctrl-C, SIGTERM) while it waits leaves the flush pending: the stop path
        waits for it again before any step 5."""
        pending = self._folder_flush
        if pending is None:
            return
        try:
            pending.result()
        except OSError as err:
            self._folder_flush = None
            self._unwritten = self._unplaced = None
            raise ConfigError(f"cannot write into {self.output.path}: {err.strerror or err}") from None
        self._folder_flush = None

    def finish_written(self) -> None:
        """The end of the run (or a stop): the batch ready to be placed is
        placed, and step 5 of the last batch placed committed."""
        self._settle()
        self._settle()

    def _after_written(self, unwritten: _Unwritten, meta: dict[str, str] | None) -> None:
        """What follows a batch's committed step 5: the manifest's lines, the
        counts, the resume point and the progress."""
        batch, done = unwritten.batch, unwritten.done
        if done:
            assert meta is not None
            self._count_written(done, meta)
        if self.resume is not None and batch:  # this batch is committed: the point moves past it
            run = {"signed": self.signed, "failed": self.failed, "clamped": self.clamped}
            last = max(item.line for item in batch)
            self.resume.save(last, self.counts, run, unwritten.refused, self.seen.key, unwritten.seen)
        if self.progress is not None:
            self.progress.update(len(batch))

    def _mark_written(
        self, done: Sequence[tuple[Plan, dict[str, Any], str | None]]
    ) -> tuple[list[Change], dict[str, str] | None]:
        """Step 5's changes, and the manifest entries to set with them (in the
        caller's transaction; None: nothing to mark)."""
        if not done:
            return [], None
        supersede = [
            Change(p.supersedes, "superseded", {"superseded_by": p.uvci}) for p, _, _ in done if p.supersedes
        ]
        # only if the row still holds the payload whose files this process wrote: with
        # Celery, a chunk of a killed coordinator still being signed and the next run's
        # chunk can re-sign one reservation at once (docs/scale-out.md, "Limits")
        written = [
            Change(p.uvci, "written", values, note="files written again" if p.kind == "rewrite" else "",
                   expect_payload=payload)
            for p, values, payload in done
        ]  # fmt: skip
        meta: dict[str, str] = {}
        manifest = self.manifest_file
        if supersede or manifest is None or any(p.kind == "rewrite" for p, _, _ in done):
            # a line of the manifest changes or goes: made whole at the end (flag in the same transaction)
            meta[_STALE + self.output.key] = self.ledger.clock()
            if manifest is not None:
                manifest.whole = True
        elif manifest is not None:
            meta.update(manifest.tail_meta())  # what the appends so far wrote (one batch behind)
        return [*supersede, *written], meta

    def _count_written(self, done: Sequence[tuple[Plan, dict[str, Any], str | None]], meta: dict[str, str]) -> None:
        manifest = self.manifest_file
        if manifest is not None:
            manifest.stored(meta)
            manifest.append_new()
        for plan, _, _ in done:
            c = self.counts
            if plan.kind == "rewrite":
                c.rewritten += 1
                continue
            c.issued += 1
            c.superseding += plan.supersedes is not None
            c.resumed += plan.kind in ("resume", "finalize", "adopt")
            c.adopted += plan.kind == "adopt"
            c.reissued += plan.kind == "reissue"
            self.signed += 1

    # -- the end ------------------------------------------------------------
    def pending_elsewhere(self) -> int:
        """Reservations in this folder that this run did not finish (their
        records were not in its input)."""
        return pending_in(self.ledger, self.output)


def pending_in(ledger: Ledger, output: BatchOutput) -> int:
    """Certificates of the folder reserved or signed but not written yet."""
    row = ledger.db.fetchone(
        "SELECT COUNT(*) FROM certificates WHERE out_dir = ? AND state IN ('reserved', 'signed')",
        (output.key,),
    )
    return int(row[0]) if row else 0


def _signed_values(result: Outputs) -> dict[str, Any]:
    issued = result.issued
    return {
        "kid": base64.b64encode(issued.kid).decode("ascii"),
        "iat": issued.iat,
        "exp": issued.exp,
        "exp_clamped": issued.exp_clamped,
        "payload_hash": result.payload_sha256,
        "files": tuple(FileEntry(name, result.digests[name], len(data)) for name, data in result.files.items())
        + tuple(FileEntry(name, result.digests[name], size) for name, (_, size) in result.staged.items()),
    }
