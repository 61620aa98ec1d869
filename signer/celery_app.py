"""``signer batch --celery URL``: one batch spread over Celery workers on several machines.

    $ python -m signer worker --celery redis://broker:6379/0 --ledger postgresql://... \\
          --key dsc.key.pem --cert dsc.pem            # on each signing machine
    $ python -m signer batch records.jsonl --out /srv/passports/b1 --ledger postgresql://... \\
          --centre "..." --celery redis://broker:6379/0   # once, anywhere (no key needed)

The coordinator (this module) reads the input, refuses what the whole file
must decide (row problems, duplicate ids, unverified records) exactly as
``signer batch`` does, writes each chunk of admitted records to
``DIR/.partial/chunks-RUN/N.jsonl`` (0600, on the shared output storage) and
enqueues a *descriptor* of it: the chunk's path, the records' input lines
and the run's settings (signing time, issuer, validity, PDF options). The
queue never carries a key, a PIN, a passphrase or a personal datum.

Each worker (:mod:`signer.worker`) signs a chunk with its own key through
the same :class:`signer.batch.LedgerRun` as ``signer batch``: reserve in the
ledger, sign, mark signed, write durably, mark written. Exactly-once comes
from the ledger, not from the broker: a chunk delivered twice (its worker
was killed mid-chunk, Redis restored an unacknowledged message) finds its
records reserved, signed or written and finishes them with the same UVCIs.
The broker settings only make redelivery prompt (docs/scale-out.md).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import itertools
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from signer.records import Record, RowProblem, read_records, write_jsonl
from verifier.errors import ConfigError, KeyBackendError, PassportError

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

TASK_NAME = "vndcc.sign_chunk"
#: The broker URL when ``--celery`` is given without one (a password in it stays out of ``ps``).
BROKER_ENV = "VNDCC_CELERY_URL"
FROM_ENV = "env"
#: Records per chunk (one task); a chunk is one ledger batch of LedgerRun.
CHUNK_SIZE = 256
#: Chunks enqueued and not yet collected (the rest of the input waits).
IN_FLIGHT = 64
#: Settings of the run that travel with each chunk (never a key option).
SETTINGS = (
    "issuer", "country", "validity_days", "deflate_level", "png", "svg", "pdf",
    "centre", "location", "tsa_url", "pades_level", "check_files",
)  # fmt: skip


def make_app(url: str) -> Celery:
    """The Celery app of coordinator and workers: ``url`` is broker and result backend.

    ``task_acks_late`` + ``task_reject_on_worker_lost``: a chunk is
    acknowledged when done, and put back in the queue when the process that
    signed it dies; ``worker_prefetch_multiplier=1``: a worker holds one
    chunk at a time (nothing waits behind a dead one)."""
    from celery import Celery

    visibility = int(os.environ.get("VNDCC_CELERY_VISIBILITY", "3600"))
    app = Celery("vndcc", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="vndcc.sign",
        result_expires=86400,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # a chunk held by a worker that vanished is given to another after the
        # visibility timeout; kombu looks every 10th restore interval
        broker_transport_options={
            "visibility_timeout": visibility,
            "unacked_restore_interval": max(0.2, min(10.0, visibility / 10)),
        },
    )
    return app


def broker_url(value: str) -> str:
    """``--celery``'s value, or the URL in :data:`BROKER_ENV` for a bare ``--celery``."""
    if value != FROM_ENV:
        return value
    url = os.environ.get(BROKER_ENV, "").strip()
    if not url:
        raise ConfigError(f"--celery without a URL reads it from {BROKER_ENV}, which is not set")
    return url


def add_celery_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scale-out (docs/scale-out.md)")
    g.add_argument(
        "--celery",
        nargs="?",
        const=FROM_ENV,
        metavar="URL",
        help="sign on 'signer worker' processes through this broker (redis://HOST:PORT/DB; without "
        f"URL: ${BROKER_ENV}, which keeps a password out of ps); "
        "this process only admits records and enqueues chunks; needs a postgresql:// ledger and "
        "an output folder the workers share",
    )
    g.add_argument(
        "--chunk-size",
        type=int,
        default=CHUNK_SIZE,
        metavar="N",
        help=f"with --celery: records per task (default {CHUNK_SIZE}; smaller spreads the end of a small batch better)",
    )


def run_settings(ns: argparse.Namespace, now: dt.datetime, reissue_before: int | None) -> dict[str, Any]:
    from signer.cli import _override

    settings: dict[str, Any] = {name: getattr(ns, name, None) for name in SETTINGS}
    settings["crl"] = [str(Path(p).resolve()) for p in ns.crl]
    settings["now"] = now.isoformat()
    override = _override(ns)
    settings["override"] = None if override is None else [override.operator, override.reason]
    settings["reissue_before"] = reissue_before
    settings["reissue_revoked"] = bool(ns.revoked)
    return settings


def run_distributed(
    ns: argparse.Namespace, *, now: dt.datetime, reissue_before: int | None, actor: str, out: TextIO, err: TextIO
) -> int:
    """``signer batch --celery``: admit, enqueue, collect; the same summary as ``signer batch``."""
    from signer.batch import BatchOutput, check_folder_centre, pending_in, write_manifest
    from signer.batch_report import (
        BatchCounts,
        ErrorReport,
        Progress,
        estimate_records,
        reason_kind,
    )
    from signer.ledger import Ledger
    from signer.ledger.db import is_postgres_url
    from signer.run import Signer, SigningRun, stop_signals

    if not is_postgres_url(ns.ledger):
        raise ConfigError("--celery needs a postgresql:// ledger that every worker reaches")
    if not 1 <= ns.chunk_size <= 100_000:
        raise ConfigError("--chunk-size must be 1 to 100000")
    settings = run_settings(ns, now, reissue_before)
    override = _override_of(settings)
    counts = BatchCounts()
    clamped = 0
    app = make_app(broker_url(ns.celery))
    ledger = Ledger.open(ns.ledger, actor=actor)
    try:
        with stop_signals(), BatchOutput(ns.out) as output:
            check_folder_centre(ledger, output, ns.centre)
            chunks = output.partial / f"chunks-{secrets.token_hex(4)}"
            chunks.mkdir(mode=0o700)
            errors_path = ns.errors or ns.out / "errors.csv"
            report = ErrorReport(errors_path, tmp_dir=output.partial if ns.errors is None else None)
            progress = Progress(err, total=estimate_records(ns.records), mode=ns.progress)
            # step 1 of SigningRun without a key: what needs the whole file
            admission = SigningRun(output.path, signer=cast(Signer, None), override=override, err=err)

            def fail(line: int, record_id: str, reason: str) -> None:
                counts.refused += 1
                counts.reasons[reason_kind(reason)] += 1
                report.add(line, record_id, reason)

            def collect(item: tuple[int, AsyncResult]) -> None:
                nonlocal clamped
                size, result = item
                got = result.get(timeout=None, propagate=True)
                result.forget()
                if got.get("error"):
                    name, message = got["error"]
                    raise {"KeyBackendError": KeyBackendError}.get(name, ConfigError)(message)
                for key, value in got["counts"].items():
                    if key == "reasons":
                        counts.reasons.update(value)
                    else:
                        setattr(counts, key, getattr(counts, key) + value)
                for line, record_id, reason in got["refused"]:
                    report.add(line, record_id, reason)
                clamped += got["clamped"]
                progress.update(size)

            inflight: collections.deque[tuple[int, AsyncResult]] = collections.deque()
            completed = False
            try:
                source = read_records(ns.records, column_map=ns.columns)
                for n, batch in enumerate(_batches(source, ns.chunk_size)):
                    admitted = admission._admit(batch)
                    for position, reason in sorted(admitted.refused.items()):
                        fail(batch[position].line, batch[position].record_id, reason)
                    if not admitted.ready:
                        progress.update(len(batch))
                        continue
                    path = chunks / f"{n:07d}.jsonl"
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        write_jsonl((j.record for j in admitted.ready), fh)
                    descriptor = {
                        "chunk": str(path.resolve()),
                        "out": output.key,
                        "lines": [j.record.line for j in admitted.ready],
                        "settings": settings,
                    }
                    task = app.send_task(TASK_NAME, args=[descriptor])
                    inflight.append((len(batch), task))
                    if len(inflight) >= IN_FLIGHT:
                        collect(inflight.popleft())
                while inflight:
                    collect(inflight.popleft())
                completed = True
            finally:
                for _, task in inflight:  # an error or Ctrl-C: what is still queued is not wanted
                    task.revoke()
                progress.close()
                report.close()
                try:
                    listed = write_manifest(ledger, output)
                except Exception:
                    if completed:
                        raise
                    listed = None
        pending = pending_in(ledger, output)
    finally:
        ledger.close()
    if clamped:
        print(f"warning: {clamped} certificate(s) expire with the DSC, before {ns.validity_days} days", file=err)
    print(f"batch: {counts.summary_line()}", end="", file=out)
    if counts.refused:
        for line in counts.reason_lines():
            print(line, file=out)
        print(f"refused records: {errors_path} ({report.rows} row(s))", file=out)
    if listed is not None:
        print(f"manifest: {ns.out / 'manifest.jsonl'} ({listed} certificate(s))", file=out)
    if pending:
        print(f"warning: {pending} certificate(s) reserved in {ns.out} are not finished", file=err)
    return 1 if counts.refused or pending else 0


def _override_of(settings: dict[str, Any]) -> Any:
    from signer.manifest import Override

    pair = settings["override"]
    return None if pair is None else Override(operator=pair[0], reason=pair[1])


def _batches(items: Iterator[Record | RowProblem], size: int) -> Iterator[list[Record | RowProblem]]:
    source = iter(items)
    return iter(lambda: list(itertools.islice(source, size)), [])


def fatal(exc: PassportError) -> list[str]:
    """How a worker reports an error that must stop the run (JSON: class name, message)."""
    return [type(exc).__name__, str(exc)]


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m signer batch --celery URL / python -m signer worker")
