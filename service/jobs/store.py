"""Job records: created before the request is acknowledged, updated as the work advances.

A job is ``queued`` → ``running`` → ``succeeded`` | ``failed`` | ``cancelled``. After a crash,
:func:`recover` puts interrupted jobs back in the queue (or fails them with the reason once they
have used their attempts), so no acknowledged job is ever lost.
"""

import logging
import shutil
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from service.db.faults import database_fault
from service.db.tables import Job, utcnow

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
TERMINAL = ("succeeded", "failed", "cancelled")


def active_jobs(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE))) or 0)


def claim(sessions: sessionmaker[Session], job_id: str, lease_s: float) -> bool:
    """Take a job: a queued one, or a running one whose worker stopped beating (it died).

    False when the job is gone, cancelled, finished, or alive in another worker — so a job
    delivered twice runs once at a time.
    """
    now = utcnow()
    stale = now - timedelta(seconds=lease_s)
    with sessions() as session, session.begin():
        changed = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    Job.status == "queued",
                    and_(Job.status == "running", or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < stale)),
                ),
            )
            .values(status="running", stage="starting", attempts=Job.attempts + 1, started_at=now, heartbeat_at=now)
        ).rowcount
    return bool(changed)


def finish_job(session: Session, job: Job, result: dict[str, Any]) -> None:
    """Mark success inside the caller's transaction, so the job's writes and its status commit together."""
    job.status, job.stage, job.progress, job.result, job.finished_at = "succeeded", "done", 1.0, result, utcnow()


def fail_job(
    sessions: sessionmaker[Session], job_id: str, code: str, message: str, details: dict[str, Any] | None = None
) -> None:
    with sessions() as session, session.begin():
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(ACTIVE))
            .values(
                status="failed",
                stage="failed",
                error_code=code,
                error_message=message,
                result={"details": details} if details else None,
                finished_at=utcnow(),
            )
        )


def cancel_job(session: Session, job: Job) -> bool:
    """Cancel a job that has not finished; a running one stops at its next frame."""
    if job.status not in ACTIVE:
        return False
    job.status, job.stage, job.finished_at = "cancelled", "cancelled", utcnow()
    return True


def is_cancelled(sessions: sessionmaker[Session], job_id: str) -> bool:
    with sessions() as session:
        return session.scalar(select(Job.status).where(Job.id == job_id)) == "cancelled"


def input_dir(data_dir: Path, job_id: str) -> Path:
    """Where a job's uploaded or downloaded input lives until the job ends."""
    return data_dir / "jobs" / job_id


def remove_input(job: Job) -> None:
    """Delete a job's uploaded input once the job has ended (it is never needed again)."""
    if job.input_path:
        shutil.rmtree(Path(job.input_path).parent, ignore_errors=True)


def recover(sessions: sessionmaker[Session], max_attempts: int, statuses: tuple[str, ...] = ACTIVE) -> list[str]:
    """After a restart: re-queue interrupted jobs that may run again; fail the rest with the reason.

    The in-process runner recovers queued and running jobs (it was the only one running them);
    with Celery the API recovers only queued jobs (their message may never have been sent) and
    the broker redelivers running ones.
    """
    requeued: list[str] = []
    with sessions() as session, session.begin():
        for job in session.scalars(select(Job).where(Job.status.in_(statuses)).order_by(Job.created_at)):
            if job.status == "running" and job.attempts >= max_attempts:
                job.status, job.stage, job.finished_at = "failed", "failed", utcnow()
                job.error_code = "interrupted"
                job.error_message = f"the service stopped while running this job {job.attempts} times"
                remove_input(job)
                continue
            job.status, job.stage, job.progress = "queued", "queued", 0.0
            requeued.append(job.id)
    return requeued


@dataclass
class ProgressWriter:
    """Writes a running job's stage and progress at most once per ``interval_s``.

    Progress and the cancel check are best effort: while the database is unreachable (a restart) or full
    the work goes on without them, and its result is written, with retries, once the database is back.
    """

    sessions: sessionmaker[Session]
    job_id: str
    interval_s: float = 1.0
    _last: float = field(default=0.0, init=False)
    _last_cancel_check: float = field(default=0.0, init=False)
    _cancelled: bool = field(default=False, init=False)

    def __call__(self, stage: str, progress: float, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return
        self._last = now
        try:
            with self.sessions() as session, session.begin():
                session.execute(
                    update(Job)
                    .where(Job.id == self.job_id, Job.status == "running")
                    .values(stage=stage, progress=progress, heartbeat_at=utcnow())
                )
        except DBAPIError as error:
            if not database_fault(error):
                raise
            log.warning("job %s: progress not recorded, the database is unreachable or full", self.job_id)

    def cancelled(self) -> bool:
        """Polled every frame; looks at the database at most once per ``interval_s``."""
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= self.interval_s:
            self._last_cancel_check = now
            try:
                self._cancelled = is_cancelled(self.sessions, self.job_id)
            except DBAPIError as error:  # unreachable: asked again at the next check
                if not database_fault(error):
                    raise
        return self._cancelled
