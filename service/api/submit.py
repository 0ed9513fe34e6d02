"""Turning an enroll/identify request into a durable job, and answering it now or later.

The job row (and the staged input) are committed before anything is acknowledged; a job the
queue refuses (Redis down) is withdrawn and answered 503 ``queue_unavailable``. With
``?wait=SECONDS`` the request waits for the job: a finished job is answered with its result
(or its error, as the matching 4xx), an unfinished one with 202 and the job to poll.
"""

import asyncio
import hashlib
import json
import logging
import time
import uuid
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from service.api.errors import error_response
from service.api.inputs import StagedInput, stage_input
from service.api.schemas import JobOut
from service.auth import Principal
from service.context import ServiceContext
from service.db.tables import Job, JobAdmission
from service.errors import (
    ServiceError,
    TooManyJobsError,
    UnavailableError,
    UnprocessableError,
    job_failure_status,
)
from service.jobs.store import TERMINAL, active_jobs

log = logging.getLogger(__name__)

_POLL_S = 0.2


def job_out(job: Job) -> JobOut:
    error = None
    if job.error_code:
        details = (job.result or {}).get("details") or {}
        error = {"code": job.error_code, "message": job.error_message or "", "details": details}
    return JobOut.model_validate(
        {
            "id": job.id,
            "kind": job.kind,
            "status": job.status,
            "stage": job.stage,
            "progress": round(job.progress, 3),
            "subject_id": job.subject_id,
            "created_at": job.created_at,
            "started_at": job.started_at,
            "finished_at": job.finished_at,
            "result": job.result if job.status == "succeeded" else None,
            "error": error,
        }
    )


def _digest(kind: str, subject_id: str | None, input_digest: str, params: dict[str, Any]) -> str:
    payload = json.dumps([kind, subject_id, input_digest, params], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _existing(ctx: ServiceContext, principal: Principal, key: str) -> Job | None:
    with ctx.sessions() as session:
        return session.scalars(
            select(Job).where(Job.api_key_id == principal.key_id, Job.idempotency_key == key)
        ).first()


def _replay(existing: Job, digest: str) -> Job:
    if existing.request_digest != digest:
        raise UnprocessableError("this Idempotency-Key was used for a different request", code="idempotency_key_reused")
    return existing


async def submit_job(
    request: Request,
    ctx: ServiceContext,
    principal: Principal,
    kind: str,
    params: dict[str, Any],
    subject_id: str | None = None,
    idempotency_key: str | None = None,
) -> Job:
    """Stage the request's input (a video or silhouettes) and commit the job; an idempotent replay
    returns the original job.

    The job limit is checked twice: before the upload is read (a cheap early refusal) and again
    in the transaction that adds the job, after taking the admission lock, which is what makes it
    hold when many requests arrive at once."""
    with ctx.sessions() as session:  # refuse before reading a large upload
        _check_room(ctx, session)
    staged = await stage_input(request, ctx.settings, enrollment=kind == "enroll")
    try:
        if staged.track_id is not None:
            params = {**params, "track_id": staged.track_id}
        params = {**params, "input_kind": staged.kind}
        job, created = _admit(ctx, principal, kind, params, subject_id, idempotency_key, staged)
    except BaseException:
        staged.discard()
        raise
    if not created:  # an idempotent replay: the original job has its own input
        staged.discard()
        return job
    await _queue(request, ctx, job, staged)
    return job


def replayed_work(
    ctx: ServiceContext, principal: Principal, kind: str, params: dict[str, Any], idempotency_key: str | None
) -> Job | None:
    """The original job of a repeated upload-free request (same key, same body), or None: a replay must not be
    refused by checks that only a first request can pass (its preview gone, its new subject now taken)."""
    if not idempotency_key or (existing := _existing(ctx, principal, idempotency_key)) is None:
        return None
    return _replay(existing, _digest(kind, None, "", params))


async def submit_work(
    request: Request,
    ctx: ServiceContext,
    principal: Principal,
    kind: str,
    params: dict[str, Any],
    idempotency_key: str | None,
) -> Job:
    """Commit a job that needs no upload (its input is earlier work, e.g. a preview's tracks)."""
    job, created = _admit(ctx, principal, kind, params, None, idempotency_key, None)
    if created:
        await _queue(request, ctx, job, None)
    return job


def _admit(
    ctx: ServiceContext,
    principal: Principal,
    kind: str,
    params: dict[str, Any],
    subject_id: str | None,
    idempotency_key: str | None,
    staged: StagedInput | None,
) -> tuple[Job, bool]:
    """The new job, committed under the admission lock (True); or the original job of an idempotent replay."""
    digest = _digest(kind, subject_id, staged.digest if staged else "", params)
    if idempotency_key and (existing := _existing(ctx, principal, idempotency_key)):
        return _replay(existing, digest), False
    try:
        with ctx.sessions() as session, session.begin():
            session.execute(update(JobAdmission).where(JobAdmission.id == 1).values(admitted=JobAdmission.admitted + 1))
            _check_room(ctx, session)
            job = Job(
                id=staged.job_id if staged else str(uuid.uuid4()),
                kind=kind,
                params=params,
                input_path=str(staged.path) if staged else None,
                source=staged.source if staged else "",
                subject_id=subject_id,
                api_key_id=principal.key_id,
                idempotency_key=idempotency_key,
                request_digest=digest,
            )
            session.add(job)
        return job, True
    except IntegrityError:  # the same Idempotency-Key raced in from a parallel request
        existing = _existing(ctx, principal, idempotency_key or "")
        if existing is None:
            raise
        return _replay(existing, digest), False


async def _queue(request: Request, ctx: ServiceContext, job: Job, staged: StagedInput | None) -> None:
    try:
        await run_in_threadpool(request.app.state.jobs.submit, job.id)
    except UnavailableError:  # the queue (Redis) refused it: take the job back, nothing would ever run it
        await run_in_threadpool(_withdraw, ctx, job.id)
        if staged is not None:
            staged.discard()
        raise


def _withdraw(ctx: ServiceContext, job_id: str) -> None:
    """Delete a job the queue refused before it was acknowledged: the client got a 503 and may send
    it again (with the same Idempotency-Key). If the database is unreachable too, the job stays
    queued and is sent at the API's next start (:func:`service.jobs.store.recover`)."""
    try:
        with ctx.sessions() as session, session.begin():
            session.execute(delete(Job).where(Job.id == job_id, Job.status == "queued"))
    except DBAPIError:
        log.exception("job %s: the queue refused it and it could not be withdrawn", job_id)


def _check_room(ctx: ServiceContext, session: Session) -> None:
    if active_jobs(session) >= ctx.settings.max_active_jobs:
        raise TooManyJobsError(
            f"{ctx.settings.max_active_jobs} jobs are already queued or running; retry later", retry_after_s=10
        )


def _load_job(ctx: ServiceContext, job_id: str) -> Job | None:
    with ctx.sessions() as session:
        return session.get(Job, job_id)


async def wait_for(ctx: ServiceContext, job_id: str, wait_s: float) -> Job:
    """The job after at most ``wait_s`` seconds, or as soon as it has ended (the event loop stays free)."""
    deadline = time.monotonic() + min(wait_s, ctx.settings.max_wait_seconds)
    while True:
        job = await run_in_threadpool(_load_job, ctx, job_id)
        assert job is not None
        if job.status in TERMINAL or time.monotonic() >= deadline:
            return job
        await asyncio.sleep(_POLL_S)


def job_response(job: Job, done_status: int) -> JSONResponse:
    """``done_status`` with the job when it succeeded, 202 while it runs, the error's 4xx when it failed."""
    body = job_out(job).model_dump(mode="json")
    if job.status == "succeeded":
        return JSONResponse(body, status_code=done_status, headers={"Location": f"/v1/jobs/{job.id}"})
    if job.status == "failed":
        error = ServiceError(
            job.error_message or "the job failed",
            code=job.error_code or "job_failed",
            status=job_failure_status(job.error_code),
            details=(job.result or {}).get("details") or {},
        )
        return error_response(error, {"job": body})
    if job.status == "cancelled":
        return error_response(ServiceError("the job was cancelled", code="job_cancelled", status=409), {"job": body})
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})
