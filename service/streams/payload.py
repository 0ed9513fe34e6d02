"""The JSON shape of a stream event: the same in ``GET /v1/events``, on Server-Sent Events and in
webhook bodies."""

from typing import Any

from sqlalchemy.orm import Session

from service.db.briefs import subject_brief
from service.db.tables import Stream, StreamEvent


def event_payload(session: Session, event: StreamEvent) -> dict[str, Any]:
    """The event as clients see it; subjects are looked up now, so a deleted subject shows as null."""
    stream = session.get(Stream, event.stream_id)
    return {
        "id": event.id,
        "type": "identification",
        "stream": {"id": event.stream_id, "name": stream.name if stream else ""},
        "track_id": event.track_id,
        "update": event.update,
        "started_at": event.started_at.isoformat(),
        "ended_at": event.ended_at.isoformat(),
        "decision": event.decision,
        "subject": subject_brief(session, event.subject_id),
        "score": event.score,
        "confidence": event.confidence,
        "threshold": event.threshold,
        "good_frames": event.good_frames,
        "candidates": [
            {"subject": subject_brief(session, c["subject_id"]), "score": c["score"], "confidence": c.get("confidence")}
            for c in event.candidates
        ],
        "model": event.model_key,
        "snapshot": f"/v1/events/{event.id}/snapshot" if event.snapshot_path else None,
        "created_at": event.created_at.isoformat(),
    }
