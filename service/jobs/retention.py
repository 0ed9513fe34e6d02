"""Job retention: finished jobs older than ``GAITID_JOB_RETENTION_DAYS`` go, with what they left.

A job's result names people and links pictures of them; a preview keeps silhouettes for a later
enrollment. None of it is needed once the job has been read, so the API sweeps hourly. Rows go first
(in small transactions), files after their row: a crash in between leaves an orphaned folder, never
a result linking a missing picture. Enrolled sequences stay: they belong to their subject.
"""

import shutil
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from service.db import audit
from service.db.tables import Job, utcnow
from service.jobs.artefacts import remove_artefacts
from service.jobs.store import TERMINAL, input_dir
from service.sweeps import PeriodicSweep

BATCH = 500


def prune_jobs(sessions: sessionmaker[Session], data_dir: Path, before: datetime) -> int:
    """Delete jobs that ended before ``before``, with their artefacts and any input left behind."""
    deleted = 0
    while True:
        with sessions() as session, session.begin():
            ids = list(
                session.scalars(
                    select(Job.id)
                    .where(Job.status.in_(TERMINAL), Job.finished_at < before)
                    .order_by(Job.finished_at)
                    .limit(BATCH)
                )
            )
            if not ids:
                break
            deleted += session.execute(delete(Job).where(Job.id.in_(ids))).rowcount
        for job_id in ids:  # after the commit: no stored job can link a removed file
            remove_artefacts(data_dir, job_id)
            shutil.rmtree(input_dir(data_dir, job_id), ignore_errors=True)
    if deleted:
        with sessions() as session, session.begin():
            audit.record(session, None, "jobs.prune", before=before.isoformat(), jobs=deleted)
    return deleted


def job_retention(sessions: sessionmaker[Session], data_dir: Path, days: float) -> PeriodicSweep:
    """The background sweep of ``GAITID_JOB_RETENTION_DAYS``."""

    def sweep() -> str | None:
        deleted = prune_jobs(sessions, data_dir, utcnow() - timedelta(days=days))
        return f"deleted {deleted} jobs that ended over {days} days ago" if deleted else None

    return PeriodicSweep("job-retention", sweep)
