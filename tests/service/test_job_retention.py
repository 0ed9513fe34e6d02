"""Finished jobs older than the retention go with their artefacts; active and recent jobs, and the
sequences jobs enrolled, stay."""

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.db.subjects import add_sequence
from service.db.tables import AuditEntry, GaitSequence, Job, Subject, utcnow
from service.jobs.artefacts import artefact_dir
from service.jobs.retention import job_retention, prune_jobs
from tests.service.conftest import eventually


@pytest.fixture()
def sessions(database_url: str):
    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def _job(sessions, data_dir: Path, status: str, ended_days_ago: float | None) -> str:
    with sessions() as session, session.begin():
        job = Job(kind="identify", status=status, params={})
        if ended_days_ago is not None:
            job.finished_at = utcnow() - timedelta(days=ended_days_ago)
        session.add(job)
        session.flush()
        job_id = job.id
    folder = artefact_dir(data_dir, job_id)
    folder.mkdir(parents=True)
    (folder / "track-1.jpg").write_bytes(b"\xff\xd8 a picture")
    return job_id


def _ids(sessions) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(Job.id)))


def test_old_finished_jobs_go_with_their_artefacts(sessions, tmp_path: Path):
    old = {_job(sessions, tmp_path, status, 9) for status in ("succeeded", "failed", "cancelled")}
    recent = _job(sessions, tmp_path, "succeeded", 1)
    running = _job(sessions, tmp_path, "running", None)
    with sessions() as session, session.begin():  # a sequence the old job enrolled belongs to its subject
        session.add(Subject(id="ann", name="Ann"))
        session.flush()
        add_sequence(
            session, None, "ann", "m@1", np.zeros((256, 16), np.float32),
            frames=30, quality=1.0, source="x", track_id=1, job_id=sorted(old)[0],
        )  # fmt: skip
    assert prune_jobs(sessions, tmp_path, utcnow() - timedelta(days=7)) == 3
    assert _ids(sessions) == {recent, running}
    assert not any(artefact_dir(tmp_path, job_id).exists() for job_id in old)
    assert artefact_dir(tmp_path, recent).is_dir() and artefact_dir(tmp_path, running).is_dir()
    with sessions() as session:
        assert session.scalar(select(GaitSequence.subject_id)) == "ann"
        entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "jobs.prune")).one()
        assert entry.details["jobs"] == 3


def test_the_retention_setting_sweeps_in_the_background(sessions, tmp_path: Path):
    old, recent = _job(sessions, tmp_path, "succeeded", 8), _job(sessions, tmp_path, "succeeded", 0)
    sweep = job_retention(sessions, tmp_path, days=7)
    sweep.start()
    try:
        eventually(lambda: _ids(sessions) == {recent}, 30, "the sweep at start")
    finally:
        sweep.stop()
    assert not artefact_dir(tmp_path, old).exists()
