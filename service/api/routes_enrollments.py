"""Enrolling a group from one video: preview its tracks (with pictures), then enroll any of them as
people in one job. The video is processed once; the enrollment reuses the preview's silhouettes."""

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from service.answers import PreviewResult
from service.api.deps import Context, DbSession, Enroller, IdempotencyKey, WaitSeconds
from service.api.inputs import input_request_body
from service.api.schemas import JOB_RESPONSES, JobOut
from service.api.schemas_enrollments import GroupEnrollment
from service.api.submit import job_response, replayed_work, submit_job, submit_work, wait_for
from service.db.tables import Job, Subject
from service.errors import ConflictError, NotFoundError, UnprocessableError

router = APIRouter(prefix="/v1", tags=["subjects"])


@router.post(
    "/previews",
    response_model=JobOut,
    responses=JOB_RESPONSES,
    openapi_extra={"requestBody": input_request_body(enrollment=False)},
)
async def preview(
    *,
    request: Request,
    wait: WaitSeconds = 0,
    idempotency_key: IdempotencyKey = None,
    principal: Enroller,
    ctx: Context,
) -> JSONResponse:
    """Find everyone walking in a video, with a thumbnail and contact sheet per track, to pick whom to enroll.

    The result lists every track (usable or not, with the reason); POST /v1/enrollments then enrolls
    any usable ones by ``track_id`` without processing the video again, until job retention removes
    the preview."""
    job = await submit_job(request, ctx, principal, "preview", {}, None, idempotency_key)
    if wait > 0:
        job = await wait_for(ctx, job.id, wait)
    return job_response(job, 200)


@router.post(
    "/enrollments",
    status_code=201,
    response_model=JobOut,
    responses=JOB_RESPONSES,
)
async def enroll_group(
    *,
    request: Request,
    body: GroupEnrollment,
    wait: WaitSeconds = 0,
    idempotency_key: IdempotencyKey = None,
    principal: Enroller,
    session: DbSession,
    ctx: Context,
) -> JSONResponse:
    """Enroll several of a preview's tracks, each as an existing or a new subject, in one job: all or none."""
    params = {"preview_job_id": body.preview_job_id, "people": [p.model_dump() for p in body.people]}
    job = await run_in_threadpool(replayed_work, ctx, principal, "enroll_group", params, idempotency_key)
    if job is None:
        await run_in_threadpool(_check, session, body)
        job = await submit_work(request, ctx, principal, "enroll_group", params, idempotency_key)
    if wait > 0:
        job = await wait_for(ctx, job.id, wait)
    return job_response(job, 201)


def _check(session: Session, body: GroupEnrollment) -> None:
    """Refuse now what the job would fail on: a missing or unfinished preview, unusable tracks, unknown
    subjects, taken external ids."""
    preview_job = session.get(Job, body.preview_job_id)
    if preview_job is None or preview_job.kind != "preview":
        raise NotFoundError(f"no preview {body.preview_job_id}", code="preview_not_found")
    if preview_job.status != "succeeded":
        raise ConflictError(
            f"preview {body.preview_job_id} is {preview_job.status}; enroll once it has succeeded",
            code="preview_not_ready",
        )
    tracks = {t.track_id: t for t in PreviewResult.model_validate(preview_job.result).tracks}
    for person in body.people:
        track = tracks.get(person.track_id)
        if track is None:
            raise UnprocessableError(f"the preview has no track {person.track_id}", code="track_not_found")
        if not track.usable:
            raise UnprocessableError(f"track {person.track_id} is not usable: {track.reason}", code="track_unusable")
        if person.subject_id is not None and session.get(Subject, person.subject_id) is None:
            raise NotFoundError(f"no subject {person.subject_id}", code="subject_not_found")
        if person.external_id is not None and session.scalar(
            select(Subject.id).where(Subject.external_id == person.external_id)
        ):
            raise ConflictError(f"external_id {person.external_id!r} is taken", code="external_id_taken")
