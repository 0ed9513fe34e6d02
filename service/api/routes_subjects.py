"""Subjects and their enrolled sequences."""

from collections.abc import Sequence
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.api.deps import Context, DbSession, Enroller, IdempotencyKey, Reader, WaitSeconds, get_or_404
from service.api.inputs import input_request_body
from service.api.pages import Limit, Offset, Page, page_of
from service.api.schemas import (
    ERROR_RESPONSES,
    JOB_RESPONSES,
    JobOut,
    SequenceOut,
    SubjectCreate,
    SubjectOut,
    SubjectUpdate,
)
from service.api.submit import job_response, submit_job, wait_for
from service.db import subjects
from service.db.tables import GaitSequence, Subject
from service.errors import NotFoundError
from service.jobs.artefacts import remove_sequence_sheets, sequence_sheet

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])
SubjectId = Annotated[str, Path(min_length=1, max_length=36, description="the subject's id")]
SequenceId = Annotated[int, Path(ge=1, le=2**62, description="the sequence's id")]


def _subject_out(subject: Subject, sequences: int) -> SubjectOut:
    return SubjectOut(
        id=subject.id,
        external_id=subject.external_id,
        name=subject.name,
        metadata=subject.attributes,
        sequences=sequences,
        created_at=subject.created_at,
        updated_at=subject.updated_at,
    )


def _one_out(session: Session, subject: Subject, model_key: str) -> SubjectOut:
    return _subject_out(subject, subjects.sequence_counts(session, [subject.id], model_key)[subject.id])


@router.post("", status_code=201, response_model=SubjectOut, responses=ERROR_RESPONSES)
def create_subject(
    body: SubjectCreate,
    principal: Enroller,
    session: DbSession,
    ctx: Context,
) -> SubjectOut:
    subject = subjects.create_subject(session, principal.key_id, body.external_id, body.name, body.metadata)
    return _one_out(session, subject, ctx.recognizer.model_key)


@router.get("", response_model=Page[SubjectOut], responses=ERROR_RESPONSES)
def list_subjects(
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    external_id: str | None = Query(None, max_length=200, description="exact external id"),
    name: str | None = Query(None, max_length=200, description="part of the name, case-insensitive"),
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> Page[SubjectOut]:
    query = select(Subject)
    if external_id is not None:
        query = query.where(Subject.external_id == external_id)
    if name:
        query = query.where(func.lower(Subject.name).contains(name.lower(), autoescape=True))

    def out(rows: Sequence[Subject]) -> list[SubjectOut]:
        counts = subjects.sequence_counts(session, [s.id for s in rows], ctx.recognizer.model_key)
        return [_subject_out(s, counts[s.id]) for s in rows]

    return page_of(session, query, (Subject.created_at, Subject.id), limit, offset, out)


@router.get("/{subject_id}", response_model=SubjectOut, responses=ERROR_RESPONSES)
def get_subject(
    subject_id: SubjectId,
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> SubjectOut:
    return _one_out(session, get_or_404(session, Subject, subject_id, "subject"), ctx.recognizer.model_key)


@router.patch("/{subject_id}", response_model=SubjectOut, responses=ERROR_RESPONSES)
def update_subject(
    subject_id: SubjectId,
    body: SubjectUpdate,
    principal: Enroller,
    session: DbSession,
    ctx: Context,
) -> SubjectOut:
    subject = get_or_404(session, Subject, subject_id, "subject")
    subjects.update_subject(session, principal.key_id, subject, body.model_dump(exclude_unset=True))
    return _one_out(session, subject, ctx.recognizer.model_key)


@router.delete("/{subject_id}", status_code=204, responses=ERROR_RESPONSES)
def delete_subject(
    subject_id: SubjectId,
    principal: Enroller,
    session: DbSession,
    ctx: Context,
) -> Response:
    """Delete the subject and every one of its embeddings, under every model version."""
    removed = subjects.delete_subject(session, principal.key_id, get_or_404(session, Subject, subject_id, "subject"))
    ctx.gallery.sync()
    remove_sequence_sheets(ctx.settings.data_dir, removed)
    return Response(status_code=204)


@router.get("/{subject_id}/sequences", response_model=Page[SequenceOut], responses=ERROR_RESPONSES)
def list_sequences(
    *,
    subject_id: SubjectId,
    limit: Limit = 50,
    offset: Offset = 0,
    _: Reader,
    session: DbSession,
    ctx: Context,
) -> Page[SequenceOut]:
    """The subject's enrolled walks under every model version, oldest first."""
    get_or_404(session, Subject, subject_id, "subject")
    query = select(GaitSequence).where(GaitSequence.subject_id == subject_id)
    data_dir = ctx.settings.data_dir
    return page_of(
        session, query, (GaitSequence.id,), limit, offset, lambda rows: [_sequence_out(r, data_dir) for r in rows]
    )


def _sequence_out(row: GaitSequence, data_dir: FilePath) -> SequenceOut:
    sheet = sequence_sheet(data_dir, row.id).is_file()
    return SequenceOut(
        id=row.id,
        model=row.model_key,
        frames=row.frames,
        quality=row.quality,
        source=row.source,
        track_id=row.track_id,
        created_at=row.created_at,
        contact_sheet=f"/v1/subjects/{row.subject_id}/sequences/{row.id}/sheet" if sheet else None,
    )


@router.get(
    "/{subject_id}/sequences/{sequence_id}/sheet",
    response_class=FileResponse,
    responses={**ERROR_RESPONSES, 200: {"description": "the walk's contact sheet", "content": {"image/png": {}}}},
)
def get_sequence_sheet(
    subject_id: SubjectId, sequence_id: SequenceId, _: Reader, session: DbSession, ctx: Context
) -> FileResponse:
    """The enrolled walk's silhouettes in a grid, as the gait model saw them."""
    sequence = session.get(GaitSequence, sequence_id)
    path = sequence_sheet(ctx.settings.data_dir, sequence_id)
    if sequence is None or sequence.subject_id != subject_id or not path.is_file():
        raise NotFoundError(
            f"subject {subject_id} has no sequence {sequence_id} with a contact sheet", code="sheet_not_found"
        )
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


@router.delete("/{subject_id}/sequences/{sequence_id}", status_code=204, responses=ERROR_RESPONSES)
def delete_sequence(
    subject_id: SubjectId,
    sequence_id: SequenceId,
    principal: Enroller,
    session: DbSession,
    ctx: Context,
) -> Response:
    subjects.delete_sequence(session, principal.key_id, subject_id, sequence_id)
    ctx.gallery.sync()
    remove_sequence_sheets(ctx.settings.data_dir, [sequence_id])
    return Response(status_code=204)


@router.post(
    "/{subject_id}/enrollments",
    status_code=201,
    response_model=JobOut,
    responses=JOB_RESPONSES,
    openapi_extra={"requestBody": input_request_body(enrollment=True)},
)
async def enroll(
    *,
    request: Request,
    subject_id: SubjectId,
    wait: WaitSeconds = 0,
    idempotency_key: IdempotencyKey = None,
    principal: Enroller,
    ctx: Context,
) -> JSONResponse:
    """Enroll one walk of the subject from a video (upload or URL) or a silhouette sequence.

    A video with several walking people is refused (409 ``multiple_tracks``, listing the tracks)
    unless ``track_id`` picks one. Repeating a request with the same ``Idempotency-Key`` returns
    the original job instead of enrolling twice.
    """
    with ctx.sessions() as session:
        get_or_404(session, Subject, subject_id, "subject")
    job = await submit_job(request, ctx, principal, "enroll", {}, subject_id, idempotency_key)
    if wait > 0:
        job = await wait_for(ctx, job.id, wait)
    return job_response(job, 201)
