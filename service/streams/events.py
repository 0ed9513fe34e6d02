"""Stream events: one row per identification, written with its webhook deliveries in one transaction."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from service.db.tables import Stream, StreamEvent
from service.streams.webhooks import enqueue_deliveries


def record_event(
    session: Session,
    *,
    stream: Stream,
    track_id: int,
    update: int,
    started_at: datetime,
    ended_at: datetime,
    decision: str,
    subject_id: str | None,
    score: float | None,
    threshold: float,
    good_frames: int,
    candidates: list[dict[str, Any]],
    model_key: str,
    snapshot_path: str | None,
) -> StreamEvent:
    """Add the event and a pending delivery for every webhook that wants it; the caller commits."""
    event = StreamEvent(
        stream_id=stream.id,
        track_id=track_id,
        update=update,
        started_at=started_at,
        ended_at=ended_at,
        decision=decision,
        subject_id=subject_id,
        score=score,
        threshold=threshold,
        good_frames=good_frames,
        candidates=candidates,
        model_key=model_key,
        snapshot_path=snapshot_path,
    )
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event)
    return event
