"""Live streams: register cameras, change or remove them, and see how each one is doing.

Cameras live on private networks, so only admin keys write streams, and a stream may point
anywhere they say, within ``GAITID_STREAM_ALLOW_NETWORKS`` when the operator sets it.

Writes only change the database; the process that owns a stream notices within about a second
(its manager compares the stream's revision) and starts, restarts or stops reading it.
"""

import shutil
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from service.addresses import AddressPolicy, check_url_host
from service.api.deps import Admin, Context, DbSession, Reader, get_or_404
from service.api.pages import Limit, Offset, Page, page_of
from service.api.schemas import ERROR_RESPONSES
from service.api.schemas_streams import StreamCreate, StreamOut, StreamStatus, StreamUpdate
from service.db import audit
from service.db.tables import Stream, new_id, utcnow
from service.errors import NotFoundError
from service.settings import Settings
from service.streams.urls import redact_url
from service.streams.worker import snapshot_dir

router = APIRouter(prefix="/v1/streams", tags=["streams"])
StreamId = Annotated[str, Path(min_length=1, max_length=36, description="the stream's id")]
DEFINITION_FIELDS = ("url", "max_fps", "roi", "match_threshold", "enabled")


def effective_state(stream: Stream, now: datetime) -> str:
    """The state to show: what the owner last wrote, unless no live process stands behind it."""
    lapsed = stream.owner is None or stream.lease_until is None or stream.lease_until < now
    if not stream.enabled and lapsed:
        return "disabled"
    if stream.enabled and stream.owner is not None and lapsed:
        return "unowned"  # its process died; another takes it over when it has room
    return stream.state


def _check_camera(url: str, settings: Settings) -> None:
    """422 ``url_not_allowed`` for a camera outside ``GAITID_STREAM_ALLOW_NETWORKS``, when that is set."""
    if settings.stream_allow_networks:
        policy = AddressPolicy(settings.stream_allow_networks, public=False, setting="GAITID_STREAM_ALLOW_NETWORKS")
        check_url_host(url, policy, redact_url(url))


def stream_out(stream: Stream) -> StreamOut:
    state = effective_state(stream, utcnow())
    return StreamOut(
        id=stream.id,
        name=stream.name,
        url=redact_url(stream.url),
        max_fps=stream.max_fps,
        roi=stream.roi,
        match_threshold=stream.match_threshold,
        enabled=stream.enabled,
        created_at=stream.created_at,
        updated_at=stream.updated_at,
        status=StreamStatus(
            state=state,  # type: ignore[arg-type]
            connected=state == "connected",
            fps_in=stream.fps_in,
            fps_out=stream.fps_out,
            frames_dropped=stream.frames_dropped,
            last_frame_at=stream.last_frame_at,
            last_error=stream.last_error,
            owner=stream.owner,
            updated_at=stream.status_at,
        ),
    )


@router.post("", status_code=201, response_model=StreamOut, responses=ERROR_RESPONSES)
def create_stream(
    body: StreamCreate,
    principal: Admin,
    session: DbSession,
    ctx: Context,
) -> StreamOut:
    """Register a camera; reading starts within about a second when it is enabled."""
    _check_camera(body.url, ctx.settings)
    stream = Stream(
        id=new_id(),
        name=body.name,
        url=body.url,
        max_fps=body.max_fps,
        roi=body.roi,
        match_threshold=body.match_threshold,
        enabled=body.enabled,
        state="starting" if body.enabled else "disabled",
    )
    session.add(stream)
    audit.record(session, principal.key_id, "stream.create", f"stream:{stream.id}", url=redact_url(body.url))
    session.commit()
    return stream_out(stream)


@router.get("", response_model=Page[StreamOut], responses=ERROR_RESPONSES)
def list_streams(
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    enabled: bool | None = Query(None, description="only enabled (true) or disabled (false) streams"),
    _: Reader,
    session: DbSession,
) -> Page[StreamOut]:
    query = select(Stream)
    if enabled is not None:
        query = query.where(Stream.enabled.is_(enabled))
    return page_of(
        session, query, (Stream.created_at, Stream.id), limit, offset, lambda rows: [stream_out(s) for s in rows]
    )


@router.get("/{stream_id}", response_model=StreamOut, responses=ERROR_RESPONSES)
def get_stream(stream_id: StreamId, _: Reader, session: DbSession) -> StreamOut:
    """The stream and its status: state, frame rates in and out, dropped frames, last frame, last error."""
    return stream_out(get_or_404(session, Stream, stream_id, "stream"))


@router.patch("/{stream_id}", response_model=StreamOut, responses=ERROR_RESPONSES)
def update_stream(
    stream_id: StreamId,
    body: StreamUpdate,
    principal: Admin,
    session: DbSession,
    ctx: Context,
) -> StreamOut:
    """Change a stream; a changed URL, rate, ROI, threshold or enabled flag restarts its reading."""
    stream = get_or_404(session, Stream, stream_id, "stream")
    changes = body.model_dump(exclude_unset=True)
    if "url" in changes:
        _check_camera(changes["url"], ctx.settings)
    for name, value in changes.items():
        setattr(stream, name, value)
    if any(name in changes for name in DEFINITION_FIELDS):
        stream.revision = Stream.revision + 1  # in SQL: two concurrent edits both count
        if "enabled" in changes and stream.owner is None:
            stream.state = "starting" if stream.enabled else "disabled"
    stream.updated_at = utcnow()
    audit.record(session, principal.key_id, "stream.update", f"stream:{stream_id}", fields=sorted(changes))
    try:
        session.commit()
    except StaleDataError:  # deleted by another request meanwhile
        session.rollback()
        raise NotFoundError(f"no stream {stream_id}", code="stream_not_found") from None
    return stream_out(stream)


@router.delete("/{stream_id}", status_code=204, responses=ERROR_RESPONSES)
def delete_stream(
    stream_id: StreamId,
    principal: Admin,
    session: DbSession,
    ctx: Context,
) -> Response:
    """Stop reading the stream and delete it with its events, their snapshots and its webhooks."""
    stream = get_or_404(session, Stream, stream_id, "stream")
    session.delete(stream)
    audit.record(session, principal.key_id, "stream.delete", f"stream:{stream_id}")
    session.commit()
    shutil.rmtree(snapshot_dir(ctx.settings.data_dir, stream_id), ignore_errors=True)
    return Response(status_code=204)
