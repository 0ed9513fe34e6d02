"""Identification and the jobs behind enrollments and identifications."""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import select

from service.api.deps import Context, DbSession, IdempotencyKey, Identifier, Reader, WaitSeconds, get_or_404
from service.api.inputs import input_request_body
from service.api.pages import Limit, Offset, Page, page_of
from service.api.schemas import ERROR_RESPONSES, JOB_RESPONSES, JobOut
from service.api.submit import job_out, job_response, submit_job, wait_for
from service.auth import Permission
from service.db import audit
from service.db.tables import Job
from service.errors import ConflictError, ForbiddenError, NotFoundError
from service.jobs.artefacts import MEDIA_TYPES, SERVED_NAME, artefact_dir
from service.jobs.store import cancel_job, remove_input

# who may cancel a job: whoever may start one of its kind
CANCEL_PERMISSION: dict[str, Permission] = {
    "enroll": "enroll",
    "preview": "enroll",
    "enroll_group": "enroll",
    "identify": "identify",
}
router = APIRouter(prefix="/v1", tags=["identify", "jobs"])
JobId = Annotated[str, Path(min_length=1, max_length=36)]


@router.post(
    "/identify",
    response_model=JobOut,
    responses=JOB_RESPONSES,
    openapi_extra={"requestBody": input_request_body(enrollment=False)},
)
async def identify(
    *,
    request: Request,
    wait: WaitSeconds = 0,
    top_k: int | None = Query(None, ge=1, le=100, description="candidates per track (default from settings)"),
    threshold: float | None = Query(
        None,
        ge=-1,
        le=1,
        description="confidence needed for a match, 0..1 (similarity for uncalibrated models); default: the card's",
    ),
    annotate: bool = Query(
        False,
        description="also make the video with each person's box and answer drawn on it (the result's "
        "annotated_video): one more decoding and encoding pass, about 15 ms per processed frame on 2 cores",
    ),
    idempotency_key: IdempotencyKey = None,
    principal: Identifier,
    ctx: Context,
) -> JSONResponse:
    """Who walks in this video? Per track: ``match`` (with the subject), ``unknown`` or ``insufficient``."""
    params = {"top_k": top_k, "threshold": threshold, **({"annotate": True} if annotate else {})}
    job = await submit_job(request, ctx, principal, "identify", params, None, idempotency_key)
    if wait > 0:
        job = await wait_for(ctx, job.id, wait)
    return job_response(job, 200)


@router.get("/jobs/{job_id}", response_model=JobOut, responses=ERROR_RESPONSES)
def get_job(job_id: JobId, _: Reader, session: DbSession) -> JobOut:
    return job_out(get_or_404(session, Job, job_id, "job"))


@router.get(
    "/jobs/{job_id}/artefacts/{name}",
    response_class=FileResponse,
    responses={
        **ERROR_RESPONSES,
        200: {
            "description": "a track's thumbnail (JPEG) or contact sheet (PNG), or the annotated video (WebM)",
            "content": {media: {} for media in MEDIA_TYPES.values()},
        },
    },
)
def get_artefact(
    job_id: JobId,
    name: Annotated[str, Path(max_length=40, description="as the job's result names it, e.g. track-3.jpg")],
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> FileResponse:
    """A picture or video the job left (its result links each one), until job retention removes it."""
    get_or_404(session, Job, job_id, "job")
    path = artefact_dir(ctx.settings.data_dir, job_id) / name
    if not SERVED_NAME.fullmatch(name) or not path.is_file():
        raise NotFoundError(f"job {job_id} has no artefact {name}", code="artefact_not_found")
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers={"Cache-Control": "private, max-age=3600"})


@router.delete("/jobs/{job_id}", response_model=JobOut, responses=ERROR_RESPONSES)
def cancel(
    job_id: JobId,
    principal: Reader,
    session: DbSession,
) -> JobOut:
    """Cancel a queued or running job (a running one stops within about a second)."""
    job = get_or_404(session, Job, job_id, "job")
    if not principal.can(CANCEL_PERMISSION[job.kind]):
        raise ForbiddenError(f"role {principal.role!r} may not cancel {job.kind} jobs")
    if not cancel_job(session, job):
        raise ConflictError(f"job {job_id} has already ended ({job.status})", code="job_finished")
    audit.record(session, principal.key_id, "job.cancel", f"job:{job_id}")
    session.commit()
    if job.input_path and job.started_at is None:
        remove_input(job)
    return job_out(job)


@router.get("/jobs", response_model=Page[JobOut], responses=ERROR_RESPONSES)
def list_jobs(
    *,
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None = Query(
        None, description="only jobs in this state"
    ),
    limit: Limit = 50,
    offset: Offset = 0,
    _: Reader,
    session: DbSession,
) -> Page[JobOut]:
    """The most recent jobs first."""
    query = select(Job)
    if status:
        query = query.where(Job.status == status)
    order = (Job.created_at.desc(), Job.id)
    return page_of(session, query, order, limit, offset, lambda rows: [job_out(j) for j in rows])
