"""Stream events: one row per identification, written with its webhook deliveries in one transaction."""

from sqlalchemy.orm import Session

from service.db.tables import StreamEvent
from service.streams.webhooks import enqueue_deliveries


def record_event(session: Session, event: StreamEvent) -> StreamEvent:
    """Add the event and a pending delivery for every webhook that wants it; the caller commits."""
    session.add(event)
    session.flush()
    enqueue_deliveries(session, event)
    return event
