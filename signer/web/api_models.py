"""The health-centre API's request and response bodies (pydantic: the HTTP
edge only; inside, jobs are :class:`signer.web.jobs.Job` dataclasses).

One model per direction; every field documented, so /api/v1/openapi.json is
the contract schemathesis checks responses against.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ErrorBody(BaseModel):
    """Every 4xx the API raises itself (FastAPI's own 422 lists the invalid fields)."""

    detail: str = Field(description="what was wrong, in one sentence")


class JobLinks(BaseModel):
    self: str
    reconciliation: str
    errors: str
    results: str


class JobCounts(BaseModel):
    records: int | None = Field(None, description="records (subjects) read by the checks")
    verified: int | None = Field(None, description="records that passed the registry checks")
    refused_by_checks: int | None = Field(None, description="records the checks refused (see reconciliation)")
    issued: int | None = Field(None, description="certificates issued by this job")
    skipped: int | None = Field(None, description="records skipped as already issued (same data)")
    superseded: int | None = Field(None, description="issued certificates that supersede an earlier one")
    refused_by_signer: int | None = Field(None, description="verified records the signer refused (see errors)")
    result_zips: int | None = Field(None, description="commune ZIPs in the results")


class JobProgress(BaseModel):
    step: Literal["check", "sign", "results", "done"]
    done: int = Field(description="records signed so far in this step")
    total: int = Field(description="records this step has to go through")


class JobView(BaseModel):
    job_id: str = Field(description="random 128-bit id, hex")
    state: Literal["queued", "running", "done", "failed"]
    created_at: str
    updated_at: str
    counts: JobCounts
    progress: JobProgress | None = None
    error: str | None = Field(None, description="why the job failed (state failed)")
    links: JobLinks


class FileInfo(BaseModel):
    name: str
    size: int
    sha256: str
    url: str | None = Field(None, description="where to download it (results)")


class ReconciliationList(BaseModel):
    job_id: str
    files: list[FileInfo] = Field(description="one CSV per commune: <province>/<commune>.csv")


class SignerError(BaseModel):
    line: str
    record_id: str
    reason: str


class ErrorsReport(BaseModel):
    job_id: str
    state: Literal["queued", "running", "done", "failed"]
    failure: str | None = Field(None, description="why the job failed, if it did")
    check_reasons: dict[str, int] = Field(description="reason code -> records the checks refused for it")
    unreadable_rows: int = Field(description="rows of the upload that could not be read at all")
    refused_by_signer: list[SignerError] = Field(description="the batch's errors.csv (at most 10,000 rows)")
    truncated: bool = Field(description="true when errors.csv has more rows than listed")


class ResultsList(BaseModel):
    job_id: str
    files: list[FileInfo] = Field(description="one ZIP per commune: PDFs, QR PNGs, index.csv")


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, description="why (recorded in the ledger's audit trail)")


class RevokeResponse(BaseModel):
    uvci: str
    state: Literal["revoked"]
    previous_state: str
    changed: bool = Field(description="false when it was already revoked (a retried request)")
