"""Subjects and their enrolled sequences."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.api.deps import get_context, get_or_404, get_session, require
from service.api.inputs import INPUT_REQUEST_BODY
from service.api.schemas import (
    ERROR_RESPONSES,
    JobOut,
    SequenceOut,
    SubjectCreate,
    SubjectOut,
    SubjectPage,
    SubjectUpdate,
)
from service.api.submit import job_response, submit_job, wait_for
from service.auth import Principal
from service.context import ServiceContext
from service.db import audit
from service.db.tables import GaitSequence, Subject, new_id
from service.errors import ConflictError, NotFoundError
from service.gallery.sync import record_change

router = APIRouter(prefix="/v1/subjects", tags=["subjects"])
SubjectId = Annotated[str, Path(min_length=1, max_length=36, description="the subject's id")]


def _subject_out(session: Session, subject: Subject, model_key: str) -> SubjectOut:
    count = session.scalar(
        select(func.count()).where(GaitSequence.subject_id == subject.id, GaitSequence.model_key == model_key)
    )
    return SubjectOut(
        id=subject.id,
        external_id=subject.external_id,
        name=subject.name,
        metadata=subject.attributes,
        sequences=int(count or 0),
        created_at=subject.created_at,
        updated_at=subject.updated_at,
    )


def _commit_unique(session: Session, external_id: str | None) -> None:
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"external_id {external_id!r} is taken", code="external_id_taken") from None


@router.post("", status_code=201, response_model=SubjectOut, responses=ERROR_RESPONSES)
def create_subject(
    body: SubjectCreate,
    principal: Principal = Depends(require("enroll")),
    session: Session = Depends(get_session),
    ctx: ServiceContext = Depends(get_context),
) -> SubjectOut:
    subject = Subject(id=new_id(), external_id=body.external_id, name=body.name, attributes=body.metadata)
    session.add(subject)
    audit.record(session, principal.key_id, "subject.create", f"subject:{subject.id}", external_id=body.external_id)
    _commit_unique(session, body.external_id)
    return _subject_out(session, subject, ctx.recognizer.model_key)


@router.get("", response_model=SubjectPage, responses=ERROR_RESPONSES)
def list_subjects(
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10**9),
    external_id: str | None = Query(None, max_length=200, description="exact external id"),
    name: str | None = Query(None, max_length=200, description="part of the name, case-insensitive"),
    _: Principal = Depends(require("read")),
    session: Session = Depends(get_session),
    ctx: ServiceContext = Depends(get_context),
) -> SubjectPage:
    query = select(Subject)
    if external_id is not None:
        query = query.where(Subject.external_id == external_id)
    if name:
        query = query.where(func.lower(Subject.name).contains(name.lower(), autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Subject.created_at, Subject.id).limit(limit).offset(offset)).all()
    items = [_subject_out(session, s, ctx.recognizer.model_key) for s in rows]
    return SubjectPage(items=items, total=int(total), limit=limit, offset=offset)


@router.get("/{subject_id}", response_model=SubjectOut, responses=ERROR_RESPONSES)
def get_subject(
    subject_id: SubjectId,
    _: Principal = Depends(require("read")),
    session: Session = Depends(get_session),
    ctx: ServiceContext = Depends(get_context),
) -> SubjectOut:
    return _subject_out(session, get_or_404(session, Subject, subject_id, "subject"), ctx.recognizer.model_key)


@router.patch("/{subject_id}", response_model=SubjectOut, responses=ERROR_RESPONSES)
def update_subject(
    subject_id: SubjectId,
    body: SubjectUpdate,
    principal: Principal = Depends(require("enroll")),
    session: Session = Depends(get_session),
    ctx: ServiceContext = Depends(get_context),
) -> SubjectOut:
    subject = get_or_404(session, Subject, subject_id, "subject")
    changes = body.model_dump(exclude_unset=True)
    if "external_id" in changes:
        subject.external_id = body.external_id
    if body.name is not None:
        subject.name = body.name
    if body.metadata is not None:
        subject.attributes = body.metadata
    audit.record(session, principal.key_id, "subject.update", f"subject:{subject.id}", fields=sorted(changes))
    _commit_unique(session, subject.external_id)
    return _subject_out(session, subject, ctx.recognizer.model_key)


@router.delete("/{subject_id}", status_code=204, responses=ERROR_RESPONSES)
def delete_subject(
    subject_id: SubjectId,
    principal: Principal = Depends(require("enroll")),
    session: Session = Depends(get_session),
    ctx: ServiceContext = Depends(get_context),
) -> Response:
    """Delete the subject and every one of its embeddings, under every model version."""
    subject = get_or_404(session, Subject, subject_id, "subject")
    sequences = session.execute(
        select(GaitSequence.id, GaitSequence.model_key).where(GaitSequence.subject_id == subject.id)
    ).all()
    for sequence_id, model_key in sequences:
        record_change(session, model_key, sequence_id, "remove")
    session.delete(subject)
    audit.record(session, principal.key_id, "subject.delete", f"subject:{subject_id}", sequences=len(sequences))
    session.commit()
    ctx.gallery.sync()
    return Response(status_code=204)


@router.get("/{subject_id}/sequences", response_model=list[SequenceOut], responses=ERROR_RESPONSES)
def list_sequences(
    subject_id: SubjectId,
    _: Principal = Depends(require("read")),
    session: Session = Depends(get_session),
) -> list[SequenceOut]:
    get_or_404(session, Subject, subject_id, "subject")
    rows = session.scalars(
        select(GaitSequence).where(GaitSequence.subject_id == subject_id).order_by(GaitSequence.id)
    ).all()
    return [
        SequenceOut(
            id=r.id,
            model=r.model_key,
            frames=r.frames,
            quality=r.quality,
            source=r.source,
            track_id=r.track_id,
            created_at=r.created_at,
        )
        for r in rows
    ]


@router.delete("/{subject_id}/sequences/{sequence_id}", status_code=204, responses=ERROR_RESPONSES)
def delete_sequence(
    subject_id: SubjectId,
    sequence_id: Annotated[int, Path(ge=1, le=2**62)],
    principal: Principal = Depends(require("enroll")),
    session: Session = Depends(get_session),
    ctx: ServiceContext = Depends(get_context),
) -> Response:
    sequence = session.get(GaitSequence, sequence_id)
    if sequence is None or sequence.subject_id != subject_id:
        raise NotFoundError(f"subject {subject_id} has no sequence {sequence_id}", code="sequence_not_found")
    record_change(session, sequence.model_key, sequence.id, "remove")
    session.delete(sequence)
    audit.record(session, principal.key_id, "sequence.delete", f"subject:{subject_id}", sequence_id=sequence_id)
    session.commit()
    ctx.gallery.sync()
    return Response(status_code=204)


@router.post(
    "/{subject_id}/enrollments",
    status_code=201,
    response_model=JobOut,
    responses={**ERROR_RESPONSES, 202: {"model": JobOut, "description": "accepted; poll the job"}},
    openapi_extra={"requestBody": INPUT_REQUEST_BODY},
)
async def enroll(
    request: Request,
    subject_id: SubjectId,
    wait: float = Query(0, ge=0, le=3600, description="seconds to wait for the result before answering 202"),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", min_length=1, max_length=200),
    principal: Principal = Depends(require("enroll")),
    ctx: ServiceContext = Depends(get_context),
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
