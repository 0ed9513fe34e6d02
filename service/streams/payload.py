"""The JSON of a stream event: the same in ``GET /v1/events``, on Server-Sent Events and in webhook bodies."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.matching import Candidate
from service.answers import IdentificationEvent, StreamBrief
from service.db.briefs import candidate_answer, subject_brief
from service.db.tables import Stream, StreamEvent, Subject


def event_answer(session: Session, event: StreamEvent) -> IdentificationEvent:
    """The event as clients see it; subjects are looked up now, so a deleted subject shows as null."""
    stream = session.get(Stream, event.stream_id)
    return IdentificationEvent(
        id=event.id,
        type="identification",
        stream=StreamBrief(id=event.stream_id, name=stream.name if stream else ""),
        track_id=event.track_id,
        update=event.update,
        started_at=event.started_at,
        ended_at=event.ended_at,
        decision=event.decision,  # type: ignore[arg-type]
        subject=subject_brief(session, event.subject_id),
        score=event.score,
        confidence=event.confidence,
        threshold=event.threshold,
        good_frames=event.good_frames,
        candidates=[
            candidate_answer(
                session,
                Candidate(c["subject_id"], c["score"], c.get("confidence"), window_similarity=c.get("window_score")),
            )
            for c in event.candidates
        ],
        model=event.model_key,
        snapshot=f"/v1/events/{event.id}/snapshot" if event.snapshot_path else None,
        created_at=event.created_at,
    )


@contextmanager
def preloaded(session: Session, events: Sequence[StreamEvent]) -> Iterator[None]:
    """While the block runs, the streams and subjects a page of events names are in the session, loaded
    in two statements: answering each event finds them there instead of asking the database once per
    event and candidate (the session keeps a row only while something refers to it: here, this frame)."""
    subjects = {e.subject_id for e in events if e.subject_id} | {c["subject_id"] for e in events for c in e.candidates}
    streams = {e.stream_id for e in events}
    loaded: list[Subject | Stream] = []
    if subjects:
        loaded += session.scalars(select(Subject).where(Subject.id.in_(subjects))).all()
    if streams:
        loaded += session.scalars(select(Stream).where(Stream.id.in_(streams))).all()
    yield


def event_payload(session: Session, event: StreamEvent) -> dict[str, Any]:
    """The event as the JSON object Server-Sent Events and webhooks send."""
    return event_answer(session, event).model_dump(mode="json")
