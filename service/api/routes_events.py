"""Stream events: query them, fetch a snapshot, or follow them live over Server-Sent Events.

The SSE endpoint reads new rows from the database (not from memory), so it shows events from
every process, including Celery workers, and a client that reconnects with ``Last-Event-ID``
gets exactly the events it missed.
"""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path as FilePath
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import Select, func, select

from service.answers import IdentificationEvent
from service.api.deps import Context, DbSession, Reader, get_or_404
from service.api.pages import Limit, Offset, Page, page_of
from service.api.schemas import ERROR_RESPONSES
from service.auth import key_is_active
from service.context import ServiceContext
from service.db.tables import StreamEvent, utcnow
from service.errors import NotFoundError
from service.streams.payload import event_answer, event_payload, preloaded

router = APIRouter(prefix="/v1/events", tags=["streams"])
EventId = Annotated[int, Path(ge=1, le=2**62, description="the event's id")]
MAX_EVENT_ID = 2**62
POLL_SECONDS = 0.25
SETTLE_SECONDS = 5.0  # longer than any event transaction takes from insert to commit
HEARTBEAT_SECONDS = 15.0
BATCH = 100
KEY_REVOKED = {"code": "key_revoked", "message": "the API key was revoked; the event stream ends"}


def _filtered(
    query: Select[tuple[StreamEvent]], stream_id: str | None, subject_id: str | None, decision: str | None
) -> Select[tuple[StreamEvent]]:
    if stream_id is not None:
        query = query.where(StreamEvent.stream_id == stream_id)
    if subject_id is not None:
        query = query.where(StreamEvent.subject_id == subject_id)
    if decision is not None:
        query = query.where(StreamEvent.decision == decision)
    return query


StreamFilter = Query(None, max_length=36, description="only this stream's events")
SubjectFilter = Query(None, max_length=36, description="only events that matched this subject")
DecisionFilter = Query(None, description="only this decision")


@router.get("", response_model=Page[IdentificationEvent], responses=ERROR_RESPONSES)
def list_events(
    *,
    limit: Limit = 50,
    offset: Offset = 0,
    stream_id: str | None = StreamFilter,
    subject_id: str | None = SubjectFilter,
    decision: Literal["match", "unknown"] | None = DecisionFilter,
    since: datetime | None = Query(None, description="created at or after (ISO 8601)"),
    until: datetime | None = Query(None, description="created before (ISO 8601)"),
    _: Reader,
    session: DbSession,
) -> Page[IdentificationEvent]:
    """Events, newest first."""
    query = _filtered(select(StreamEvent), stream_id, subject_id, decision)
    if since is not None:
        query = query.where(StreamEvent.created_at >= since)
    if until is not None:
        query = query.where(StreamEvent.created_at < until)

    def out(rows: Sequence[StreamEvent]) -> list[IdentificationEvent]:
        with preloaded(session, rows):
            return [event_answer(session, e) for e in rows]

    return page_of(session, query, (StreamEvent.id.desc(),), limit, offset, out)


@router.get(
    "/stream",
    responses={**ERROR_RESPONSES, 200: {"content": {"text/event-stream": {}}, "description": "an endless SSE stream"}},
)
async def follow_events(
    *,
    request: Request,
    stream_id: str | None = StreamFilter,
    subject_id: str | None = SubjectFilter,
    decision: Literal["match", "unknown"] | None = DecisionFilter,
    after: int | None = Query(None, ge=0, le=2**62, description="start after this event id (default: only new)"),
    last_event_id: str | None = Header(None, alias="Last-Event-ID", max_length=20),
    principal: Reader,
    ctx: Context,
) -> StreamingResponse:
    """Server-Sent Events: one `identification` event per message, `id:` = event id, JSON `data:`
    as in `GET /v1/events`. Reconnect with `Last-Event-ID` (browsers do) to miss nothing; it wins
    over `after`, which only says where a new client starts. When the key is revoked, the stream
    sends one `error` event (`{"code": "key_revoked"}`) and ends; a reconnect then gets 401. When the
    server stops, the stream ends and the client reconnects (to another replica, or when it is back)."""
    start = _event_id(last_event_id)
    if start is None:
        start = after if after is not None else await run_in_threadpool(_newest_id, ctx)

    def fetch(floor: int, sent: set[int]) -> list[tuple[int, datetime, str]] | None:
        """The next events, or None once the caller's key has been revoked."""
        with ctx.sessions() as session:
            if not key_is_active(session, principal.key_id):
                return None
            query = _filtered(select(StreamEvent).where(StreamEvent.id > floor), stream_id, subject_id, decision)
            if sent:
                query = query.where(StreamEvent.id.not_in(sent))
            rows = session.scalars(query.order_by(StreamEvent.id).limit(BATCH)).all()
            with preloaded(session, rows):
                return [(e.id, e.created_at, json.dumps(event_payload(session, e))) for e in rows]

    async def messages() -> AsyncIterator[str]:
        # Ids are handed out when a row is inserted, not when it commits: with several writers
        # (PostgreSQL), id 10 may become visible after id 11. So the floor only moves past events
        # older than SETTLE_SECONDS, and the ids sent above it are remembered, not sent twice.
        floor, sent, quiet_since = start, set[int](), time.monotonic()
        stopping = request.app.state.stopping  # the server is stopping: end, and the client reconnects
        yield "retry: 2000\n: following events\n\n"
        while not stopping.is_set() and not await request.is_disconnected():
            batch = await run_in_threadpool(fetch, floor, sent)
            if batch is None:
                yield f"event: error\ndata: {json.dumps(KEY_REVOKED)}\n\n"
                return
            for event_id, _, data in batch:
                yield f"id: {event_id}\nevent: identification\ndata: {data}\n\n"
                sent.add(event_id)
            settled = utcnow() - timedelta(seconds=SETTLE_SECONDS)
            for event_id, created_at, _ in batch:
                if created_at > settled:
                    break
                floor = event_id
            sent = {i for i in sent if i > floor}
            if batch:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since > HEARTBEAT_SECONDS:
                yield ": keep-alive\n\n"  # keeps proxies from closing an idle connection
                quiet_since = time.monotonic()
            await asyncio.sleep(POLL_SECONDS)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(messages(), media_type="text/event-stream", headers=headers)


def _event_id(header: str | None) -> int | None:
    """A Last-Event-ID header as an event id; anything else (a stray or forged value) counts as absent."""
    if header is None or not (header.isascii() and header.isdecimal()):
        return None
    value = int(header)
    return value if value <= MAX_EVENT_ID else None


def _newest_id(ctx: ServiceContext) -> int:
    with ctx.sessions() as session:
        return int(session.scalar(select(func.max(StreamEvent.id))) or 0)


@router.get("/{event_id}", response_model=IdentificationEvent, responses=ERROR_RESPONSES)
def get_event(event_id: EventId, _: Reader, session: DbSession) -> IdentificationEvent:
    return event_answer(session, get_or_404(session, StreamEvent, event_id, "event"))


@router.get(
    "/{event_id}/snapshot",
    response_class=FileResponse,
    responses={**ERROR_RESPONSES, 200: {"content": {"image/jpeg": {}}, "description": "the person, cropped"}},
)
def get_snapshot(event_id: EventId, _: Reader, session: DbSession) -> FileResponse:
    event = get_or_404(session, StreamEvent, event_id, "event")
    if not event.snapshot_path or not FilePath(event.snapshot_path).is_file():
        raise NotFoundError(f"event {event_id} has no snapshot", code="snapshot_not_found")
    return FileResponse(event.snapshot_path, media_type="image/jpeg")
