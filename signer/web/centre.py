"""The health-centre API (JSON, OpenAPI at /api/v1/openapi.json; docs/centre-api.md).

    curl -H "Authorization: Bearer $(cat centre-api-key)" -H "Idempotency-Key: 2026-06-01-a" \\
         -H "Content-Type: text/csv" --data-binary @records.csv http://127.0.0.1:8000/api/v1/jobs

Every route takes the caller from its API key (:mod:`signer.web.apikeys`) and
every query filters by the caller's centre: another centre's job or UVCI is
a 404, exactly like one that does not exist. Routes only translate; jobs run
in :class:`signer.web.jobs.JobRunner`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import secrets
import zipfile
from pathlib import Path
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signer.web import jobs as jobstore
from signer.web.api_models import (
    ErrorBody,
    ErrorsReport,
    FileInfo,
    JobCounts,
    JobLinks,
    JobProgress,
    JobView,
    ReconciliationList,
    ResultsList,
    RevokeRequest,
    RevokeResponse,
    SignerError,
)
from signer.web.apikeys import ApiCaller, authenticate
from signer.web.app import Portal, portal_of
from signer.web.security import SafeJSONResponse
from verifier.errors import ConfigError

router = APIRouter(prefix="/api/v1", tags=["health-centre API"])

_bearer = HTTPBearer(auto_error=False, description="a centre's API key: vndcc_<43 characters>")
JOB_ID = r"^[0-9a-f]{32}$"
MAX_SIGNER_ERRORS = 10_000

_E401 = {"model": ErrorBody, "description": "missing, invalid or revoked API key"}
_E404 = {"model": ErrorBody, "description": "no such job (or UVCI) of this centre"}
_E409 = {"model": ErrorBody, "description": "not available in the job's current state"}


def caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiCaller:
    portal = portal_of(request)
    header = f"Bearer {credentials.credentials}" if credentials is not None else None
    who = authenticate(portal.ledger.db, portal.keys, header)
    if who is None:
        raise HTTPException(401, "a valid API key is needed: Authorization: Bearer vndcc_...",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return who


Caller = Annotated[ApiCaller, Depends(caller)]
PortalDep = Annotated[Portal, Depends(portal_of)]
JobId = Annotated[str, PathParam(pattern=JOB_ID, description="the job id (32 hex digits)")]


def _job(portal: Portal, who: ApiCaller, job_id: str) -> jobstore.Job:
    job = jobstore.get_job(portal.ledger.db, who.centre, job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job


def _view(job: jobstore.Job) -> JobView:
    base = f"/api/v1/jobs/{job.id}"
    counts = {k: v for k, v in job.counts.items() if k in JobCounts.model_fields}
    progress = job.counts.get("progress")
    if job.state == "queued":
        progress = None
    elif job.state == "running" and progress is None:
        progress = {"step": "check", "done": 0, "total": 0}
    return JobView(
        job_id=job.id, state=job.state, created_at=job.created_at, updated_at=job.updated_at,  # type: ignore[arg-type]
        counts=JobCounts(**counts), progress=JobProgress(**progress) if progress else None,
        error=job.error if job.state == "failed" else None,
        links=JobLinks(self=base, reconciliation=f"{base}/reconciliation", errors=f"{base}/errors",
                       results=f"{base}/results"),
    )  # fmt: skip


# --------------------------------------------------------------------------
# jobs


@router.post(
    "/jobs",
    status_code=202,
    response_model=JobView,
    summary="submit a records file (CSV or JSON Lines) as a new job",
    responses={
        200: {"model": JobView, "description": "this Idempotency-Key was used with the same body: the same job"},
        202: {"description": "accepted: the job is queued", "headers": {"Location": {"schema": {"type": "string"}}}},
        400: {"model": ErrorBody, "description": "empty body"},
        401: _E401,
        409: {"model": ErrorBody, "description": "this Idempotency-Key was used with another body"},
        413: {"model": ErrorBody, "description": "the file is larger than the server accepts"},
        415: {"model": ErrorBody, "description": "not text/csv or application/x-ndjson"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def submit_job(
    request: Request,
    who: Caller,
    portal: PortalDep,
    idempotency_key: Annotated[str, Header(
        alias="Idempotency-Key", min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$",
        description="1-200 visible ASCII characters, unique per submission: a retry with the same key "
        "and body gives the same job",
    )],
) -> Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = jobstore.FORMATS.get(media)
    if fmt is None:
        raise HTTPException(415, "send the records as text/csv or application/x-ndjson")
    limit = portal.settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"the file is larger than {limit} bytes")
    jobs_dir = portal.settings.data_dir / "jobs"
    incoming = jobs_dir / ".incoming"
    jobs_dir.mkdir(exist_ok=True, mode=0o700)
    incoming.mkdir(exist_ok=True, mode=0o700)
    tmp = incoming / f"{secrets.token_hex(8)}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"the file is larger than {limit} bytes")
                digest.update(chunk)
                fh.write(chunk)
        if size == 0:
            raise HTTPException(400, "the records file is empty")
        db = portal.ledger.db
        body_sha = digest.hexdigest()
        try:
            existing, created = jobstore.queue_job(
                db, jobs_dir, centre=who.centre, idempotency_key=idempotency_key, fmt=fmt, upload=tmp,
                body_sha256=body_sha, at=jobstore.iso(portal.clock()),
            )  # fmt: skip
        except ConfigError as err:
            raise HTTPException(409, str(err)) from None
        if created:
            runner = portal.extra.get("jobs")
            if runner is not None:
                runner.wake()
            return SafeJSONResponse(_view(existing).model_dump(), status_code=202,
                                headers={"Location": f"/api/v1/jobs/{existing.id}"})  # fmt: skip
        if existing.body_sha256 != body_sha or existing.format != fmt:
            raise HTTPException(409, "this Idempotency-Key was already used with a different records file; "
                                "use a new key for a new file")  # fmt: skip
        return SafeJSONResponse(_view(existing).model_dump(), status_code=200,
                            headers={"Location": f"/api/v1/jobs/{existing.id}"})  # fmt: skip
    finally:
        tmp.unlink(missing_ok=True)


@router.get("/jobs/{job_id}", response_model=JobView, summary="a job's state, counts and progress",
            responses={401: _E401, 404: _E404})  # fmt: skip
async def get_job(job_id: JobId, who: Caller, portal: PortalDep) -> JobView:
    return _view(_job(portal, who, job_id))


def _checked(job: jobstore.Job) -> Path:
    checks = job.dir / "checks"
    if not (checks / ".done").exists():
        raise HTTPException(409, f"the job is {job.state} and its checks have not finished yet")
    return checks


def _reconciliation_zip(checks: Path) -> Path:
    """checks/reconciliation.zip of every list (made once; the checks do not change)."""
    target = checks / "reconciliation.zip"
    if target.exists():
        return target
    tmp = checks / f".reconciliation-{secrets.token_hex(4)}.zip"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((checks / "reconciliation").rglob("*.csv")):
            zf.write(path, path.relative_to(checks / "reconciliation").as_posix())
    os.replace(tmp, target)
    return target


@router.get(
    "/jobs/{job_id}/reconciliation",
    summary="the checks' reconciliation lists (one CSV per commune): a ZIP, or ?format=json for the listing",
    responses={
        200: {"model": ReconciliationList,
              "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
              "description": "the ZIP of the CSVs, or (format=json) their listing"},
        401: _E401, 404: _E404, 409: _E409,
    },
    response_model=None,
)
async def reconciliation(
    job_id: JobId, who: Caller, portal: PortalDep,
    format: Annotated[str, Query(pattern="^(zip|json)$", description="zip (default) or json")] = "zip",
) -> Response:  # fmt: skip
    checks = _checked(_job(portal, who, job_id))
    if format == "json":
        root = checks / "reconciliation"

        def listing() -> list[FileInfo]:
            return [FileInfo(name=p.relative_to(root).as_posix(), size=p.stat().st_size, sha256=jobstore.sha256_file(p), url=None)
                    for p in sorted(root.rglob("*.csv"))]  # fmt: skip

        files = await anyio.to_thread.run_sync(listing)
        return SafeJSONResponse(ReconciliationList(job_id=job_id, files=files).model_dump())
    path = await anyio.to_thread.run_sync(_reconciliation_zip, checks)
    return FileResponse(path, media_type="application/zip", filename=f"reconciliation-{job_id}.zip")


def _errors(job: jobstore.Job) -> ErrorsReport:
    checks = job.dir / "checks"
    reasons: dict[str, int] = {}
    unreadable = 0
    if (checks / ".done").exists():
        try:
            summary = json.loads((checks / "summary.json").read_text("utf-8"))
            reasons = {str(k): int(v) for k, v in summary.get("reasons", {}).items()}
            unreadable = int(summary.get("files", {}).get("unreadable_rows", 0))
        except (OSError, ValueError, TypeError, AttributeError):
            pass
    rows: list[SignerError] = []
    truncated = False
    errors_csv = job.dir / "out" / "errors.csv"
    if errors_csv.is_file() and job.state in ("done", "failed"):
        with errors_csv.open(encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for row in reader:
                if len(rows) >= MAX_SIGNER_ERRORS:
                    truncated = True
                    break
                if len(row) >= 3:
                    rows.append(SignerError(line=row[0], record_id=row[1], reason=row[2]))
    return ErrorsReport(
        job_id=job.id, state=job.state,  # type: ignore[arg-type]
        failure=job.error if job.state == "failed" else None,
        check_reasons=reasons, unreadable_rows=unreadable, refused_by_signer=rows, truncated=truncated,
    )  # fmt: skip


@router.get("/jobs/{job_id}/errors", response_model=ErrorsReport,
            summary="what was refused: the checks' reasons and the signer's errors.csv; why a job failed",
            responses={401: _E401, 404: _E404})  # fmt: skip
async def errors(job_id: JobId, who: Caller, portal: PortalDep) -> ErrorsReport:
    job = _job(portal, who, job_id)
    return await anyio.to_thread.run_sync(_errors, job)


def _done(job: jobstore.Job) -> None:
    if job.state != "done":
        raise HTTPException(409, f"the job is {job.state}: results exist once it is done")


@router.get("/jobs/{job_id}/results", response_model=ResultsList,
            summary="the job's results: one ZIP per commune (PDFs, QR PNGs, index.csv)",
            responses={401: _E401, 404: _E404, 409: _E409})  # fmt: skip
async def results(job_id: JobId, who: Caller, portal: PortalDep) -> ResultsList:
    job = _job(portal, who, job_id)
    _done(job)
    files = [FileInfo(name=e["name"], size=e["size"], sha256=e["sha256"],
                      url=f"/api/v1/jobs/{job.id}/results/{e['name']}") for e in jobstore.results_index(job.dir)]  # fmt: skip
    return ResultsList(job_id=job.id, files=files)


@router.get(
    "/jobs/{job_id}/results/{name}",
    summary="one commune ZIP of the job's results",
    response_model=None,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "the ZIP"},
               401: _E401, 404: _E404, 409: _E409},
)
async def result_file(
    job_id: JobId, who: Caller, portal: PortalDep,
    name: Annotated[str, PathParam(max_length=200, description="a name from the results listing")],
) -> Response:  # fmt: skip
    job = _job(portal, who, job_id)
    _done(job)
    # only a name the listing holds; never joined to a path before that (no traversal)
    entry = next((e for e in jobstore.results_index(job.dir) if e.get("name") == name), None)
    if entry is None:
        raise HTTPException(404, "no such result file in this job")
    path = job.dir / "results" / str(entry["name"])
    if not path.is_file():
        raise HTTPException(404, "no such result file in this job")
    return FileResponse(path, media_type="application/zip", filename=str(entry["name"]))


# --------------------------------------------------------------------------
# revocation


@router.post(
    "/certificates/{uvci:path}/revoke",
    response_model=RevokeResponse,
    summary="revoke one of this centre's certificates (published by the next trust list)",
    responses={400: {"model": ErrorBody, "description": "the reason holds control characters"}, 401: _E401,
               404: _E404, 409: {"model": ErrorBody, "description": "not an issued certificate"}},
)
async def revoke(
    who: Caller, portal: PortalDep, body: RevokeRequest,
    uvci: Annotated[str, PathParam(max_length=200, description="the UVCI (percent-encode '#' as %23; its check character may be '/')")],
) -> RevokeResponse:  # fmt: skip
    from signer.ledger import Ledger
    from signer.ledger.store import LedgerConflict

    reason = body.reason.strip()
    if not reason or any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in reason):
        raise HTTPException(400, "the reason must be printable text")
    ledger = portal.ledger
    cert = ledger.by_uvci(uvci.strip())
    if cert is None or cert.centre != who.centre:
        raise HTTPException(404, "no such certificate of this centre")
    if cert.state == "revoked":
        return RevokeResponse(uvci=cert.uvci, state="revoked", previous_state="revoked", changed=False)
    if cert.state not in ("written", "superseded"):
        raise HTTPException(409, f"the certificate is {cert.state}: only issued certificates can be revoked")
    acting = Ledger(ledger.db, ledger.key, actor=f"api:{who.centre}:{who.key_id}")
    try:
        acting.revoke([cert], reason)
    except LedgerConflict:
        raise HTTPException(409, "the certificate changed meanwhile; ask again") from None
    await anyio.to_thread.run_sync(_refresh_folder, portal, cert.out_dir)
    return RevokeResponse(uvci=cert.uvci, state="revoked", previous_state=cert.state, changed=True)


def _refresh_folder(portal: Portal, out_dir: str) -> None:
    """After a revocation: the batch folder's manifest and, for an API job,
    its commune ZIPs made again, so the results no longer hand it out. Best
    effort (a folder in use by a batch keeps its stale flag; docs/ledger.md)."""
    from signer.ledger import Ledger
    from signer.ledger.cli import refresh_manifests

    ledger = Ledger.open(portal.settings.ledger, actor="portal")
    try:
        refresh_manifests(ledger, {out_dir}, io.StringIO())
    except (ConfigError, OSError):
        return
    finally:
        ledger.close()
    out = Path(out_dir)
    job_dir = out.parent
    if out.name != "out" or not re.fullmatch(r"[0-9a-f]{32}", job_dir.name) or not (job_dir / jobstore.RESULTS_INDEX).exists():
        return
    try:
        from signer.communes import write_commune_zips

        jobstore.write_results_index(job_dir, write_commune_zips(out, job_dir / "results"))
    except (ImportError, ConfigError, OSError):
        return


# --------------------------------------------------------------------------
# start and stop


def on_start(portal: Portal) -> None:
    if portal.settings.centres_config is not None:
        jobstore.load_centres(portal.settings.centres_config)  # a broken config stops the start, clearly
    runner = jobstore.JobRunner(portal.settings, clock=portal.clock)
    portal.extra["jobs"] = runner
    runner.start()


async def on_stop(portal: Portal) -> None:
    runner = portal.extra.pop("jobs", None)
    if runner is not None:
        await anyio.to_thread.run_sync(runner.stop)
