"""Event retention: stream events older than a cut-off go, with their webhook deliveries and snapshots.

Events accumulate without bound (one per identification on every camera), so operators set
``GAITID_EVENT_RETENTION_DAYS`` (every process that runs streams then sweeps hourly) or run
``gaitid events prune`` from cron. Deletion runs in small transactions so it never holds long
locks against the stream workers writing new events, and a snapshot file is removed only after
the row that names it is gone: a crash in between leaves an orphaned file, never an event whose
snapshot is missing.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db import audit
from service.db.tables import StreamEvent, WebhookDelivery, utcnow
from service.sweeps import PeriodicSweep

BATCH = 1000


@dataclass(frozen=True)
class PruneResult:
    events: int
    deliveries: int
    snapshots: int


def count_prunable(sessions: sessionmaker[Session], before: datetime) -> PruneResult:
    """What :func:`prune_events` would delete now, counted without deleting (``--dry-run``)."""
    with sessions() as session:
        old = select(StreamEvent.id).where(StreamEvent.created_at < before)
        events = session.scalar(select(func.count()).select_from(old.subquery()))
        deliveries = session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.event_id.in_(old))
        )
        snapshots = session.scalar(
            select(func.count()).select_from(old.where(StreamEvent.snapshot_path.is_not(None)).subquery())
        )
    return PruneResult(int(events or 0), int(deliveries or 0), int(snapshots or 0))


def prune_events(sessions: sessionmaker[Session], before: datetime) -> PruneResult:
    """Delete events created before ``before``, with their deliveries and snapshot files; returns the counts."""
    events = deliveries = snapshots = 0
    while True:
        with sessions() as session, session.begin():
            rows = session.execute(
                select(StreamEvent.id, StreamEvent.snapshot_path)
                .where(StreamEvent.created_at < before)
                .order_by(StreamEvent.id)
                .limit(BATCH)
            ).all()
            if not rows:
                break
            ids = [row.id for row in rows]
            deliveries += session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(ids))).rowcount
            events += session.execute(delete(StreamEvent).where(StreamEvent.id.in_(ids))).rowcount
        for row in rows:  # after the commit: no stored event can point at a removed file
            if row.snapshot_path:
                Path(row.snapshot_path).unlink(missing_ok=True)
                snapshots += 1
    if events:
        with sessions() as session, session.begin():
            audit.record(session, None, "events.prune", before=before.isoformat(), events=events, deliveries=deliveries)
    return PruneResult(events, deliveries, snapshots)


def event_retention(sessions: sessionmaker[Session], days: float) -> PeriodicSweep:
    """The background sweep of ``GAITID_EVENT_RETENTION_DAYS``."""

    def sweep() -> str | None:
        result = prune_events(sessions, utcnow() - timedelta(days=days))
        if not result.events:
            return None
        return (
            f"deleted {result.events} events older than {days} days "
            f"({result.deliveries} deliveries, {result.snapshots} snapshots)"
        )

    return PeriodicSweep("event-retention", sweep)
