"""``python -m signer worker``: a Celery worker that signs the chunks of ``signer batch --celery``.

    $ export VNDCC_KEY_PASSPHRASE=... VNDCC_LEDGER_KEY=...   # never on the command line
    $ python -m signer worker --celery redis://10.0.0.5:6379/0 \\
          --ledger postgresql://signer@10.0.0.6/ledger --key dsc.key.pem --cert dsc.pem

Each pool process opens the key itself after the fork (a PKCS#11 session
does not survive fork; the PIN or passphrase is read once, by the worker's
main process, from the environment or a prompt) and the ledger. A chunk
is signed by :class:`signer.batch.LedgerRun`, the machinery of ``signer
batch``, into the shared output folder the descriptor names; the task is
idempotent through the ledger (:mod:`signer.celery_app`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keys.loader import add_key_arguments, key_secret, key_spec_from_args, open_key
from signer.batch import BatchOutput
from signer.celery_app import (
    BROKER_ENV,
    FROM_ENV,
    TASK_NAME,
    _override_of,
    broker_url,
    fatal,
    make_app,
)
from signer.records import Record, RowProblem, read_records
from verifier.errors import ConfigError, PassportError


@dataclasses.dataclass(frozen=True)
class _Setup:
    """What the pool processes inherit through fork (never pickled, never queued)."""

    spec: Any
    secret: str | None
    ledger: str

    def __repr__(self) -> str:  # never shows the secret
        return f"_Setup(spec={self.spec!r})"


_setup: _Setup | None = None
_state: dict[str, Any] = {}  # per pool process: key, ledger, signers by settings
_stack = contextlib.ExitStack()


def worker_actor(pid: int) -> str:
    """Who the ledger says issued a chunk's certificates: this signing process on this machine."""
    return f"worker {pid}@{socket.gethostname()}"


def _start_process(**_: Any) -> None:
    """worker_process_init: open the key and the ledger in this pool process."""
    from signer.ledger import Ledger

    assert _setup is not None
    try:
        _state["key"] = _stack.enter_context(open_key(_setup.spec, secret=_setup.secret))
        actor = worker_actor(os.getpid())
        _state["ledger"] = Ledger.open(_setup.ledger, actor=actor, create=False)
        _state["locks"] = _lock_connection(_setup.ledger)
    except PassportError as exc:  # reported by each task: stops the coordinator's run
        _state["error"] = fatal(exc)


def _lock_connection(url: str) -> Any:
    """A connection of its own for the chunk locks (PostgreSQL advisory locks,
    held by the session: released by the server when this process dies)."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.Error as err:
        raise ConfigError(f"cannot connect to the ledger for the chunk locks: {err}") from None


@contextlib.contextmanager
def chunk_lock(conn: Any, chunk: str) -> Iterator[None]:
    """One delivery of a chunk at a time, on all machines. Redis gives an
    unacknowledged chunk to a second worker after the visibility timeout even
    if the first is still signing it; both would re-sign the same reserved
    UVCIs and write the same file names. The second waits here, then finds
    the chunk written in the ledger (skipped)."""
    key = int.from_bytes(hashlib.sha256(chunk.encode()).digest()[:8], "big", signed=True)
    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _stop_process(**_: Any) -> None:
    locks = _state.pop("locks", None)
    if locks is not None:
        locks.close()
    ledger = _state.pop("ledger", None)
    if ledger is not None:
        ledger.close()
    _stack.close()


class _Refused:
    """The error report of one chunk, sent back to the coordinator."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str]] = []

    def add(self, line: int, record_id: str, reason: str) -> None:
        self.rows.append((line, record_id, reason))


class _ChunkOutput(BatchOutput):
    """The shared output folder, as a worker uses it: the coordinator holds
    the folder's lock; this process writes under its own ``.partial/w-HOST-PID``."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.partial = path / ".partial" / f"w-{socket.gethostname()}-{os.getpid()}"

    def __enter__(self) -> _ChunkOutput:
        if self.partial.exists():  # left by a chunk this process gave up
            shutil.rmtree(self.partial)
        self.partial.mkdir(mode=0o700, parents=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_flusher()
        with contextlib.suppress(OSError):
            shutil.rmtree(self.partial)


def _signer(settings: dict[str, Any]) -> Any:
    """The Signer of a run's settings with this process's key (one per run)."""
    from signer.run import Options, build_signer

    cache_key = json.dumps(settings, sort_keys=True)
    signers: dict[str, Any] = _state.setdefault("signers", {})
    if cache_key not in signers:
        ns = argparse.Namespace(**{k: v for k, v in settings.items() if k not in ("now", "override")})
        ns.crl = [Path(p) for p in settings["crl"]]
        now = dt.datetime.fromisoformat(settings["now"])
        options = Options(
            now=now, allow_unverified=settings["override"] is not None, png=ns.png, svg=ns.svg, hash_outputs=True
        )
        signers.clear()
        signers[cache_key] = build_signer(_state["key"], ns, options)
    return signers[cache_key]


def _chunk_records(path: Path, lines: list[int]) -> Iterator[Record | RowProblem]:
    """The chunk's records with their line numbers in the run's input."""
    for item, line in zip(read_records(path), lines, strict=True):
        yield dataclasses.replace(item, line=line)


def sign_chunk(descriptor: dict[str, Any]) -> dict[str, Any]:
    """The task: sign one chunk through the ledger (idempotent; see signer.celery_app)."""
    from signer.batch import LedgerRun

    if "error" in _state:
        return {"error": _state["error"]}
    chunk, settings = Path(descriptor["chunk"]), descriptor["settings"]
    empty = {"counts": {}, "refused": [], "clamped": 0}
    if not chunk.is_file():  # a run that ended or was started again meanwhile: not ours to do
        return empty
    try:
        signer = _signer(settings)
        refused = _Refused()
        with chunk_lock(_state["locks"], str(chunk)), _ChunkOutput(Path(descriptor["out"])) as output:
            run = LedgerRun(
                output, ledger=_state["ledger"], centre=settings["centre"], report=refused,  # type: ignore[arg-type]
                check_files=settings["check_files"], signer=signer, override=_override_of(settings),
                err=io.StringIO(), reissue_before=settings["reissue_before"],
                reissue_revoked=settings["reissue_revoked"],
            )  # fmt: skip
            run.sign_all(_chunk_records(chunk, descriptor["lines"]))
    except PassportError as exc:
        return {"error": fatal(exc)}
    counts = dataclasses.asdict(run.counts)
    counts["reasons"] = dict(run.counts.reasons)
    return {"counts": counts, "refused": refused.rows, "clamped": run.clamped}


# --------------------------------------------------------------------------
# command line


def register(subparsers: Any) -> None:
    p: argparse.ArgumentParser = subparsers.add_parser(
        "worker",
        help="sign the chunks of 'batch --celery' runs (one Celery worker; docs/scale-out.md)",
        description="A Celery worker for 'signer batch --celery URL': takes chunk descriptors from the "
        "broker, signs them with this machine's key through the PostgreSQL ledger into the shared "
        "output folder. Passphrase/PIN and ledger key from the environment.",
    )
    p.add_argument(
        "--celery",
        default=FROM_ENV,
        metavar="URL",
        help=f"the broker (redis://HOST:PORT/DB); default ${BROKER_ENV} (keeps a password out of ps)",
    )
    p.add_argument("--ledger", required=True, metavar="URL", help="the postgresql:// ledger (key in $VNDCC_LEDGER_KEY)")
    p.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="signing processes of this worker (default 1)"
    )
    p.add_argument("--name", default=None, help="worker name (default signer-PID@HOST)")
    add_key_arguments(p)
    p.set_defaults(func=run_worker)


def run_worker(ns: argparse.Namespace) -> int:
    global _setup
    from celery.signals import worker_process_init, worker_process_shutdown

    from signer.ledger.db import is_postgres_url

    if not is_postgres_url(ns.ledger):
        raise ConfigError("signer worker needs a postgresql:// ledger (the one the coordinator uses)")
    if not 1 <= ns.concurrency <= 64:
        raise ConfigError("--concurrency must be 1 to 64")
    spec = key_spec_from_args(ns)
    secret = key_secret(spec)
    with open_key(spec, secret=secret):  # a wrong passphrase or PIN fails here, once
        pass
    _setup = _Setup(spec=spec, secret=secret, ledger=ns.ledger)
    app = make_app(broker_url(ns.celery))
    app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)(sign_chunk)
    worker_process_init.connect(_start_process, weak=False)
    worker_process_shutdown.connect(_stop_process, weak=False)
    name = ns.name or f"signer-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker", "--pool=prefork", f"--concurrency={ns.concurrency}", "--loglevel=WARNING",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", name,
        ]
    )  # fmt: skip
    return 0
