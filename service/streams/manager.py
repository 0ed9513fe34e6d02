"""Which process reads which stream: database leases, so that each stream is read exactly once.

Every process that runs streams (the API with in-process jobs, or each Celery worker process)
runs one manager. About once a second it renews the leases of the streams it reads and writes
their status, notices streams deleted, disabled or edited through the API (stopping or
restarting their worker), and claims at most one stream that nobody holds (or whose holder
stopped renewing: it crashed), so streams spread over processes. Leases are conditional UPDATEs,
valid on SQLite and PostgreSQL alike.
"""

import logging
import os
import socket
import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from service.context import ServiceContext
from service.db.tables import Stream, utcnow
from service.metrics import STREAMS_RUNNING
from service.streams.worker import StreamDefinition, StreamWorker

log = logging.getLogger(__name__)


def process_owner_id() -> str:
    """Who holds a lease: host, process and a random part (a restarted process is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class StreamManager:
    def __init__(self, ctx: ServiceContext, owner: str, poll_seconds: float = 1.0) -> None:
        self.ctx, self.owner, self.poll_seconds = ctx, owner, poll_seconds
        self.workers: dict[str, StreamWorker] = {}
        self._stop = threading.Event()
        self._ticking = threading.Lock()  # stop() waits for a tick in progress before releasing leases
        self._thread = threading.Thread(target=self._loop, name="stream-manager", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop every worker and hand the leases back, so another process can take over at once."""
        self._stop.set()
        self._thread.join(10)
        with self._ticking:
            _stop_all(list(self.workers.values()))
            self._release(list(self.workers), state="stopped")
            self.workers.clear()
        STREAMS_RUNNING.set(0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self._ticking:
                    if not self._stop.is_set():
                        self.tick()
            except Exception:  # a database outage must not end stream supervision; the next tick retries
                log.exception("stream manager tick failed")
            self._stop.wait(self.poll_seconds)

    def tick(self) -> None:
        """One round: renew leases and write status, follow the definitions, claim a free stream."""
        self._renew(utcnow())
        with self.ctx.sessions() as session:
            rows = {row.id: row for row in session.scalars(select(Stream)).all()}
            session.expunge_all()
        self._follow_definitions(rows)
        self._claim_one(rows, utcnow())
        STREAMS_RUNNING.set(len(self.workers))

    def _follow_definitions(self, rows: dict[str, Stream]) -> None:
        """Stop the workers of streams deleted, disabled or taken over, and restart edited ones, all at once."""
        stopping, released, restarts = [], [], []
        for stream_id, worker in list(self.workers.items()):
            row = rows.get(stream_id)
            if row is None or not row.enabled or row.owner != self.owner:
                reason = "deleted" if row is None else "disabled" if not row.enabled else f"taken over by {row.owner}"
                log.info("stream %s: stopping (%s)", stream_id, reason)
                if row is not None and row.owner == self.owner:
                    released.append(stream_id)
            elif row.revision != worker.definition.revision:
                log.info("stream %s: definition changed, restarting", stream_id)
                restarts.append(row)
            else:
                continue
            stopping.append(self.workers.pop(stream_id))
        _stop_all(stopping)
        if released:
            self._release(released, state="disabled")
        for row in restarts:
            self._start(row)

    def _claim_one(self, rows: dict[str, Stream], now: datetime) -> None:
        if len(self.workers) >= self.ctx.settings.streams_per_process:
            return
        free = [
            row
            for row in rows.values()
            if row.enabled
            and row.id not in self.workers
            and (row.owner in (None, self.owner) or row.lease_until is None or row.lease_until < now)
        ]
        for row in sorted(free, key=lambda r: r.created_at):
            with self.ctx.sessions() as session, session.begin():
                claimed = session.execute(
                    update(Stream)
                    .where(
                        Stream.id == row.id,
                        Stream.enabled.is_(True),
                        or_(
                            Stream.owner.is_(None),
                            Stream.owner == self.owner,
                            Stream.lease_until.is_(None),
                            Stream.lease_until < now,
                        ),
                    )
                    .values(owner=self.owner, lease_until=self._lease_end(), state="connecting", status_at=now)
                ).rowcount
            if claimed:
                row.owner = self.owner
                log.info("stream %s: claimed by %s", row.id, self.owner)
                self._start(row)
                return

    def _start(self, row: Stream) -> None:
        worker = StreamWorker(self.ctx, StreamDefinition.of(row), self.owner)
        worker.start()
        self.workers[row.id] = worker

    def _release(self, stream_ids: list[str], state: str) -> None:
        with self.ctx.sessions() as session, session.begin():
            session.execute(
                update(Stream)
                .where(Stream.id.in_(stream_ids), Stream.owner == self.owner)
                .values(owner=None, lease_until=None, state=state, fps_in=0.0, fps_out=0.0, status_at=utcnow())
            )

    def _renew(self, now: datetime) -> None:
        for stream_id, worker in list(self.workers.items()):
            with self.ctx.sessions() as session, session.begin():
                kept = session.execute(
                    update(Stream)
                    .where(Stream.id == stream_id, Stream.owner == self.owner)
                    .values(lease_until=self._lease_end(), status_at=now, **worker.status())
                ).rowcount
            if not kept:  # our lease lapsed (a long stall) and another process took the stream
                log.warning("stream %s: lease lost, stopping", stream_id)
                _stop_all([self.workers.pop(stream_id)])

    def _lease_end(self) -> datetime:
        return utcnow() + timedelta(seconds=self.ctx.settings.stream_lease_seconds)


def _stop_all(workers: list[StreamWorker]) -> None:
    """Signal every worker first, then wait: stopping N streams takes one timeout, not N."""
    for worker in workers:
        worker.request_stop()
    for worker in workers:
        worker.stop(timeout=3.0)
