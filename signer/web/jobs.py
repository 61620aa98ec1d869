"""API jobs: a submitted records file checked and signed by the same command
lines an operator runs, in child processes, one job at a time per machine.

    runner = JobRunner(settings, clock=time.time)   # signer.web.centre.on_start
    runner.start(); runner.wake(); ...; runner.stop()

A job is a row of the ``jobs`` table and a folder ``DATA/jobs/<id>/``:

    records.csv|records.jsonl   the uploaded body, as received
    checks/                     python -m signer check RECORDS --registry R --out checks --at T
    out/                        python -m signer batch checks/verified.jsonl --out out --ledger L --centre C --pdf ...
    results/                    one ZIP per commune (signer.communes.write_commune_zips)
    logs/                       the children's stdout and stderr (0600; never the server's log)

Each server process starts a runner; on one machine only the one holding
the flock on DATA/jobs/.runner.lock takes jobs (:class:`MachineLock`; another
worker takes over when it dies). States: ``queued`` -> ``running`` ->
``done`` | ``failed``. A runner claims a
job with one UPDATE ... WHERE state = 'queued' (or a ``running`` job whose
runner is gone: a dead process on this machine, or no heartbeat for
:data:`STALE_SECONDS`), so with several uvicorn workers or machines each job
has one runner. After a crash the job runs again from its last finished
step; the batch is exactly-once through the ledger, so nothing is issued
twice (docs/ledger.md). Children die with the server (``PR_SET_PDEATHSIG``),
so a killed server leaves no orphan signing into the same folder.

Secrets: the signing passphrase or PIN is read from the environment
variable the centres config names and handed to the child in ITS
environment (``VNDCC_KEY_PASSPHRASE`` / ``VNDCC_PKCS11_PIN``), never on argv.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.ledger.db import Database, IntegrityConflict
from signer.pids import pid_alive
from signer.web.senders import PORTAL_ONLY_ENV
from signer.web.settings import PortalSettings
from verifier.errors import ConfigError

Clock = Callable[[], float]

STATES = ("queued", "running", "done", "failed")
#: A running job whose runner has not refreshed its heartbeat for this long is taken over.
STALE_SECONDS = 60
HEARTBEAT_SECONDS = 2.0
#: How long an idle runner sleeps between looks at the table (a submission wakes it at once).
POLL_SECONDS = 2.0
#: A child that runs longer than this is stopped and the job fails.
CHILD_TIMEOUT = 6 * 3600
MAX_ERROR = 2000
RESULTS_INDEX = "results.json"
FORMATS = {"text/csv": "csv", "application/x-ndjson": "jsonl"}

_COLUMNS = "id, centre, idempotency_key, body_sha256, format, state, counts, error, dir, created_at, updated_at"


@dataclass(frozen=True)
class Job:
    id: str
    centre: str
    idempotency_key: str
    body_sha256: str
    format: str
    state: str
    counts: dict[str, Any]
    error: str | None
    dir: Path
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Job:
        return cls(
            id=row[0], centre=row[1], idempotency_key=row[2], body_sha256=row[3], format=row[4], state=row[5],
            counts=json.loads(row[6] or "{}"), error=row[7], dir=Path(row[8]), created_at=row[9], updated_at=row[10],
        )  # fmt: skip

    @property
    def records_file(self) -> Path:
        return self.dir / f"records.{self.format}"


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_job_id() -> str:
    return secrets.token_hex(16)


# --------------------------------------------------------------------------
# the table


def get_job(db: Database, centre: str, job_id: str) -> Job | None:
    """The job ``job_id`` of ``centre`` (another centre's job is None, as an unknown one)."""
    row = db.fetchone(f"SELECT {_COLUMNS} FROM jobs WHERE id = ? AND centre = ?", (job_id, centre))
    return None if row is None else Job.from_row(row)


def job_by_key(db: Database, centre: str, idempotency_key: str) -> Job | None:
    row = db.fetchone(
        f"SELECT {_COLUMNS} FROM jobs WHERE centre = ? AND idempotency_key = ?", (centre, idempotency_key)
    )
    return None if row is None else Job.from_row(row)


def insert_job(db: Database, job: Job) -> bool:
    """Insert a queued job; False when the centre already used its idempotency key."""
    try:
        with db.transaction():
            db.execute(
                f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'queued', '{{}}', NULL, ?, ?, ?)",
                (job.id, job.centre, job.idempotency_key, job.body_sha256, job.format, str(job.dir),
                 job.created_at, job.updated_at),
            )  # fmt: skip
    except IntegrityConflict:
        return False
    return True


def queue_job(db: Database, jobs_dir: Path, *, centre: str, idempotency_key: str, fmt: str,
              upload: Path, body_sha256: str, at: str) -> tuple[Job, bool]:  # fmt: skip
    """The job of ``centre``'s ``idempotency_key``: a new queued one made from
    ``upload`` (moved into its folder), or the existing one (``upload`` left
    as it is). Returns (job, created). The caller compares the body hash."""
    existing = job_by_key(db, centre, idempotency_key)
    if existing is not None:
        return existing, False
    job_id = new_job_id()
    job = Job(
        id=job_id, centre=centre, idempotency_key=idempotency_key, body_sha256=body_sha256, format=fmt,
        state="queued", counts={}, error=None, dir=(jobs_dir / job_id).resolve(), created_at=at, updated_at=at,
    )  # fmt: skip
    job.dir.mkdir(parents=True, mode=0o700)
    os.replace(upload, job.records_file)
    if insert_job(db, job):
        return job, True
    os.replace(job.records_file, upload)  # a concurrent request with the same key won
    job.dir.rmdir()
    existing = job_by_key(db, centre, idempotency_key)
    if existing is None:  # pragma: no cover - the winner's row is committed
        raise ConfigError("a concurrent request with this Idempotency-Key is in progress; retry")
    return existing, False


def _runner_alive(runner: str | None, host: str) -> bool:
    """Whether ``host:pid:token`` may still be running (another machine: assumed so)."""
    if not runner:
        return False
    parts = runner.split(":")
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return True
    return pid_alive(int(parts[1]))


def claim_job(db: Database, runner: str, now: float) -> Job | None:
    """Take the oldest queued job, or a running one whose runner is gone."""
    host = runner.split(":")[0]
    stale_before = int(now) - STALE_SECONDS
    candidates = db.fetchall(
        "SELECT id, state, runner, heartbeat FROM jobs WHERE state IN ('queued', 'running') "
        "ORDER BY created_at, id LIMIT 50"
    )
    for job_id, state, old_runner, heartbeat in candidates:
        if state == "running" and old_runner == runner:
            continue  # ours, being run by this process
        if state == "running" and _runner_alive(old_runner, host) and (heartbeat or 0) >= stale_before:
            continue
        with db.transaction():
            if state == "queued":
                taken = db.execute(
                    "UPDATE jobs SET state = 'running', runner = ?, heartbeat = ?, attempts = attempts + 1, "
                    "updated_at = ? WHERE id = ? AND state = 'queued'",
                    (runner, int(now), iso(now), job_id),
                )
            else:
                taken = db.execute(
                    "UPDATE jobs SET runner = ?, heartbeat = ?, attempts = attempts + 1, updated_at = ? "
                    "WHERE id = ? AND state = 'running' AND runner IS NOT DISTINCT FROM ? "
                    "AND heartbeat IS NOT DISTINCT FROM ?",
                    (runner, int(now), iso(now), job_id, old_runner, heartbeat),
                )
        if taken == 1:
            row = db.fetchone(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
            if row is not None:
                return Job.from_row(row)
    return None


def update_job(db: Database, job_id: str, runner: str, now: float, *, counts: Mapping[str, Any] | None = None,
               state: str | None = None, error: str | None = None) -> bool:  # fmt: skip
    """Refresh the heartbeat (and counts, state, error) of a job this runner holds."""
    sets = ["heartbeat = ?", "updated_at = ?"]
    params: list[Any] = [int(now), iso(now)]
    if counts is not None:
        sets.append("counts = ?")
        params.append(json.dumps(dict(counts), sort_keys=True))
    if state is not None:
        sets.append("state = ?")
        params.append(state)
    if error is not None:
        sets.append("error = ?")
        params.append(error[:MAX_ERROR])
    with db.transaction():
        changed = db.execute(
            f"UPDATE jobs SET {', '.join(sets)} WHERE id = ? AND runner = ? AND state = 'running'",
            (*params, job_id, runner),
        )
    return changed == 1


# --------------------------------------------------------------------------
# the centres config


@dataclass(frozen=True)
class CentreSetup:
    """How one centre's jobs sign: the batch's key options, CRLs, TSA and the
    names of the environment variables holding its secret."""

    name: str
    key_args: tuple[str, ...]
    crls: tuple[Path, ...]
    tsa_url: str | None = None
    secret_env: dict[str, str] = field(default_factory=dict)  # child's variable -> server's variable


def load_centres(path: Path) -> dict[str, CentreSetup]:
    """Read the centres config (docs/centre-api.md "Centres config"); paths
    relative to the file's folder. Checked when loaded: unknown fields, missing
    files and a secret given as a value are refused."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as err:
        raise ConfigError(f"centres config {path}: {err.strerror}") from None
    except ValueError as err:
        raise ConfigError(f"centres config {path} is not JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("centres"), dict):
        raise ConfigError(f"centres config {path}: expected {{\"centres\": {{NAME: {{...}}}}}}")
    base = path.parent
    out = {}
    for name, entry in data["centres"].items():
        out[name] = _centre(name, entry, base, path)
    return out


_KEY_FIELDS = {"key", "cert", "chain", "passphrase_env", "pkcs11_module", "token_label", "key_label", "key_id", "pin_env"}


def _centre(name: str, entry: Any, base: Path, path: Path) -> CentreSetup:
    where = f"centres config {path}, centre {name!r}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected an object")
    unknown = set(entry) - _KEY_FIELDS - {"crl", "tsa_url"}
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)} (secrets go in the environment: *_env names)")

    def file(value: Any, what: str) -> Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: {what} must be a file name")
        p = Path(value) if Path(value).is_absolute() else base / value
        if not p.is_file():
            raise ConfigError(f"{where}: {what} {p} not found")
        return p

    def env_name(value: Any, what: str) -> str:
        if not isinstance(value, str) or not re.fullmatch(r"[A-Z_][A-Z0-9_]{0,100}", value):
            raise ConfigError(f"{where}: {what} must be the NAME of an environment variable")
        return value

    args: list[str] = []
    secret_env: dict[str, str] = {}
    if "key" in entry:
        args += ["--key", str(file(entry["key"], "key")), "--cert", str(file(entry.get("cert"), "cert"))]
        chain = entry.get("chain", [])
        for c in [chain] if isinstance(chain, str) else chain:
            args += ["--chain", str(file(c, "chain"))]
        if "passphrase_env" in entry:
            secret_env["VNDCC_KEY_PASSPHRASE"] = env_name(entry["passphrase_env"], "passphrase_env")
    elif "token_label" in entry:
        if "pkcs11_module" in entry:
            args += ["--pkcs11-module", str(file(entry["pkcs11_module"], "pkcs11_module"))]
        args += ["--token-label", str(entry["token_label"])]
        for opt in ("key_label", "key_id"):
            if opt in entry:
                args += ["--" + opt.replace("_", "-"), str(entry[opt])]
        if "cert" in entry:
            args += ["--cert", str(file(entry["cert"], "cert"))]
        chain = entry.get("chain", [])
        for c in [chain] if isinstance(chain, str) else chain:
            args += ["--chain", str(file(c, "chain"))]
        if "pin_env" in entry:
            secret_env["VNDCC_PKCS11_PIN"] = env_name(entry["pin_env"], "pin_env")
    else:
        raise ConfigError(f"{where}: needs a software key (key, cert) or a PKCS#11 token (token_label)")
    crl = entry.get("crl")
    crls = tuple(file(c, "crl") for c in ([crl] if isinstance(crl, str) else crl or []))
    if not crls:
        raise ConfigError(f"{where}: needs crl (the CSCA's current CRL, embedded in the PDFs)")
    tsa = entry.get("tsa_url")
    if tsa is not None and (not isinstance(tsa, str) or not tsa.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}: tsa_url must be an http(s) URL")
    return CentreSetup(name=name, key_args=tuple(args), crls=crls, tsa_url=tsa, secret_env=secret_env)


# --------------------------------------------------------------------------
# running a job


class JobFailed(Exception):
    """A step of the job failed; the message is the job's error (no secret, shown to the centre)."""


_SUMMARY = re.compile(r"batch: (\d+) record\(s\): (\d+) issued(?: \(([^)]*)\))?.*?(\d+) skipped as already issued, (\d+) refused")
_PROGRESS = re.compile(r"progress: (\d+)(?:/(\d+))?")


def parse_batch_summary(text: str) -> dict[str, int]:
    """Counts from ``signer batch``'s summary line."""
    m = _SUMMARY.search(text)
    if m is None:
        raise JobFailed("the signing step ended without its summary (see the job's logs on the server)")
    extra = m.group(3) or ""
    superseding = re.search(r"(\d+) superseding", extra)
    return {
        "batch_records": int(m.group(1)),
        "issued": int(m.group(2)),
        "superseded": int(superseding.group(1)) if superseding else 0,
        "skipped": int(m.group(4)),
        "refused_by_signer": int(m.group(5)),
    }


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class MachineLock:
    """One job runner per machine (per data folder): an ``flock`` on
    DATA/jobs/.runner.lock held by one uvicorn worker; when that worker dies,
    the kernel frees it and another worker's runner takes it at its next look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquired(self) -> bool:
        if self._fd is not None:
            return True
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def child_env(environ: Mapping[str, str], secrets_env: Mapping[str, str]) -> dict[str, str]:
    """A job's child process environment: the portal's, without the portal's own
    secrets (``PORTAL_ONLY_ENV``: a child parses uploaded files), plus the job's
    signing secrets.

        >>> child_env({"PATH": "/bin", "VNDCC_SMS_GATEWAY_TOKEN": "t"}, {"VNDCC_KEY_PASSPHRASE": "p"})
        {'PATH': '/bin', 'VNDCC_KEY_PASSPHRASE': 'p', 'PYTHONUNBUFFERED': '1'}
    """
    env = {k: v for k, v in environ.items() if k not in PORTAL_ONLY_ENV}
    env.update(secrets_env)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class JobRunner:
    """One thread per server process taking jobs one at a time."""

    def __init__(self, settings: PortalSettings, *, clock: Clock = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self.db: Database | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="vndcc-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; a running child is stopped and its job left
        ``running`` for the next start (it resumes: this runner's pid is gone)."""
        self._stop.set()
        self._wake.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_until_idle(self) -> int:
        """Run queued jobs in the calling thread until none is left (the demo
        set-up, before the server starts). Returns the jobs run."""
        from signer.ledger import Ledger

        ledger = Ledger.open(self.settings.ledger, actor=f"portal-jobs:{self.id}")
        ran = 0
        try:
            while (job := claim_job(ledger.db, self.id, self.clock())) is not None:
                self._run(ledger.db, job)
                ran += 1
        finally:
            ledger.close()
        return ran

    # -- the loop ------------------------------------------------------------
    def _loop(self) -> None:
        from signer.ledger import Ledger

        while True:  # the database may be briefly unreachable at start: retry, never die
            try:
                ledger = Ledger.open(self.settings.ledger, actor=f"portal-jobs:{self.id}")
                break
            except Exception as err:
                print(f"job runner: cannot open the ledger ({type(err).__name__}); retrying", file=sys.stderr)
                if self._stop.wait(10):
                    return
        self.db = ledger.db
        lock = self._machine_lock()
        try:
            while not self._stop.is_set():
                if not lock.acquired():  # another worker of this machine runs the jobs
                    self._wake.wait(POLL_SECONDS)
                    self._wake.clear()
                    continue
                try:
                    job = claim_job(ledger.db, self.id, self.clock())
                except Exception as err:  # a database hiccup: try again later, never die
                    print(f"job runner: cannot claim a job: {type(err).__name__}", file=sys.stderr)
                    job = None
                if job is None:
                    self._wake.wait(POLL_SECONDS)
                    self._wake.clear()
                    continue
                self._run(ledger.db, job)
        finally:
            lock.release()
            ledger.close()

    def _machine_lock(self) -> MachineLock:
        jobs_dir = self.settings.data_dir / "jobs"
        jobs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return MachineLock(jobs_dir / ".runner.lock")

    def _run(self, db: Database, job: Job) -> None:
        counts: dict[str, Any] = dict(job.counts)
        try:
            self._steps(db, job, counts)
        except JobFailed as err:
            if self._stop.is_set():
                return  # stopped by a shutdown: resumed at the next start
            update_job(db, job.id, self.id, self.clock(), counts=counts, state="failed", error=str(err))
            print(f"job {job.id}: failed", file=sys.stderr)
            return
        except Exception as err:  # a bug: the job fails with the exception's kind, the server lives
            update_job(db, job.id, self.id, self.clock(), counts=counts, state="failed",
                       error=f"internal error ({type(err).__name__}); see the server's log")  # fmt: skip
            print(f"job {job.id}: internal error {type(err).__name__}", file=sys.stderr)
            return
        update_job(db, job.id, self.id, self.clock(), counts=counts, state="done")
        print(f"job {job.id}: done", file=sys.stderr)

    def _steps(self, db: Database, job: Job, counts: dict[str, Any]) -> None:
        settings = self.settings
        if settings.registry is None:
            raise JobFailed("the server has no registry extract configured (serve --registry): nothing can be checked")
        if settings.centres_config is None:
            raise JobFailed("the server has no centres config (serve --centres): nothing can be signed")
        centres = load_centres(settings.centres_config)
        setup = centres.get(job.centre)
        if setup is None:
            raise JobFailed("this health centre has no signing set-up in the server's centres config")
        logs = job.dir / "logs"
        logs.mkdir(mode=0o700, exist_ok=True)
        now = self.clock()
        at = iso(now)
        checks = job.dir / "checks"
        py = sys.executable
        if not (checks / ".done").exists():
            code = self._child_run(db, job, counts, "check", [
                py, "-m", "signer", "check", str(job.records_file), "--registry", str(settings.registry),
                "--out", str(checks), "--at", at, "--formats", "csv",
            ], {})  # fmt: skip
            if code != 0:
                raise JobFailed("checking the records failed: " + _last_error(logs / "check.stderr", job))
            (checks / ".done").write_text(at + "\n")
        counts.update(check_counts(checks / "summary.json"))
        counts["progress"] = {"step": "sign", "done": 0, "total": counts.get("verified", 0)}
        update_job(db, job.id, self.id, self.clock(), counts=counts)
        out = job.dir / "out"
        env = {}
        for child_name, server_name in setup.secret_env.items():
            value = os.environ.get(server_name)
            if value is None:
                raise JobFailed(f"the server's environment lacks {server_name} (this centre's signing secret)")
            env[child_name] = value
        argv = [
            py, "-m", "signer", "batch", str(checks / "verified.jsonl"), "--out", str(out),
            "--ledger", settings.ledger, "--centre", job.centre, "--pdf", "--progress", "lines",
            "--at", at, "--operator", f"api:{job.id[:8]}", *setup.key_args,
        ]  # fmt: skip
        for crl in setup.crls:
            argv += ["--crl", str(crl)]
        if setup.tsa_url:
            argv += ["--tsa-url", setup.tsa_url]
        code = self._child_run(db, job, counts, "batch", argv, env)
        if code not in (0, 1):  # 1: some records refused (listed in errors.csv)
            raise JobFailed("signing failed: " + _last_error(logs / "batch.stderr", job))
        counts.update(parse_batch_summary((logs / "batch.stdout").read_text("utf-8", "replace")))
        counts["progress"] = {"step": "results", "done": counts["batch_records"], "total": counts["batch_records"]}
        update_job(db, job.id, self.id, self.clock(), counts=counts)
        try:
            from signer.communes import write_commune_zips
        except ImportError as err:  # TODO: remove once signer.communes has landed
            raise JobFailed("the commune ZIPs cannot be made on this server (signer.communes missing)") from err
        try:
            zips = write_commune_zips(out, job.dir / "results")
        except ConfigError as err:
            raise JobFailed(f"making the commune ZIPs failed: {err}") from None
        write_results_index(job.dir, zips)
        counts["result_zips"] = len(zips)
        counts["progress"] = {"step": "done", "done": counts["batch_records"], "total": counts["batch_records"]}

    def _child_run(self, db: Database, job: Job, counts: dict[str, Any], step: str, argv: list[str],
                   secrets_env: Mapping[str, str]) -> int:  # fmt: skip
        logs = job.dir / "logs"
        env = child_env(os.environ, secrets_env)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        with open(os.open(logs / f"{step}.stdout", flags, 0o600), "wb") as out, \
             open(os.open(logs / f"{step}.stderr", flags, 0o600), "wb") as err:  # fmt: skip
            child = subprocess.Popen(  # our own interpreter, fixed arguments
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                preexec_fn=_die_with_parent, close_fds=True,
            )  # fmt: skip
            self._child = child
            started = time.monotonic()
            try:
                while True:
                    try:
                        return child.wait(HEARTBEAT_SECONDS)
                    except subprocess.TimeoutExpired:
                        pass
                    if self._stop.is_set():
                        child.terminate()
                        child.wait(10)
                        raise JobFailed("stopped with the server")
                    if time.monotonic() - started > CHILD_TIMEOUT:
                        child.kill()
                        child.wait()
                        raise JobFailed(f"the {step} step took more than {CHILD_TIMEOUT // 3600} hours and was stopped")
                    if step == "batch":
                        done = _last_progress(logs / "batch.stderr")
                        if done is not None:
                            counts["progress"] = {"step": "sign", "done": done, "total": counts.get("verified", 0)}
                    if not update_job(db, job.id, self.id, self.clock(), counts=counts):
                        child.kill()
                        child.wait()
                        raise JobFailed("taken over by another runner")
            finally:
                self._child = None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def results_index(job_dir: Path) -> list[dict[str, Any]]:
    """The job's ``results.json`` (name, size, SHA-256 of each commune ZIP)."""
    try:
        data = json.loads((job_dir / RESULTS_INDEX).read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []


def write_results_index(job_dir: Path, zips: list[Path]) -> None:
    """Write ``results.json`` for these ZIPs (their hashes computed once, here)."""
    entries = [{"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p)} for p in sorted(zips)]
    tmp = job_dir / f".{RESULTS_INDEX}.{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(entries, indent=1), "utf-8")
    os.replace(tmp, job_dir / RESULTS_INDEX)


def check_counts(summary_path: Path) -> dict[str, int]:
    try:
        summary = json.loads(summary_path.read_text("utf-8"))
        subjects = summary["totals"]["subjects"]
    except (OSError, ValueError, KeyError, TypeError):
        raise JobFailed("the check step left no readable summary.json") from None
    checked = int(subjects.get("checked", 0))
    verified = int(subjects.get("verified", 0))
    return {
        "records": checked,
        "verified": verified,
        "refused_by_checks": checked - verified,
        "unreadable_rows": int(summary.get("files", {}).get("unreadable_rows", 0)),
    }


def _last_progress(path: Path) -> int | None:
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = _PROGRESS.findall(tail)
    return int(found[-1][0]) if found else None


def _last_error(path: Path, job: Job) -> str:
    """The child's last non-empty stderr line (its one-line error), bounded,
    with the server's paths replaced by the job's own names."""
    try:
        lines = [ln.strip() for ln in path.read_text("utf-8", "replace").splitlines() if ln.strip()]
    except OSError:
        lines = []
    if not lines:
        return "no message (see the job's logs on the server)"
    text = lines[-1].replace(str(job.records_file), job.records_file.name).replace(str(job.dir) + "/", "")
    return text if len(text) <= 500 else text[:500] + "..."
