"""Steps every kind of job shares: the pipeline run, the artefacts, and the failure a client is shown."""

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select

from pipeline.extract import PipelineResult
from pipeline.tracks import Track
from service.context import ServiceContext
from service.db.faults import retry_database
from service.db.tables import GaitSequence, Job
from service.errors import ServiceError, job_failure_status
from service.jobs.artefacts import (
    Artefacts,
    Label,
    artefact_dir,
    remove_sequence_sheets,
    render,
    write_sequence_sheets,
)
from service.jobs.store import ProgressWriter, finish_job
from service.metrics import JOB_STAGE_SECONDS
from service.recognition import JobCancelledError

log = logging.getLogger(__name__)


class JobFailedError(ServiceError):
    """A job that cannot succeed, with the details a client needs (e.g. the tracks to pick from).

    Its HTTP status, when a client waited for the job, comes from :func:`job_failure_status`."""

    def __init__(self, message: str, code: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, code, job_failure_status(code), details)


def run_pipeline(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> PipelineResult:
    source = job.input_path or job.source
    result = ctx.recognizer.extract(source, lambda p: progress("pipeline", 0.9 * p), progress.cancelled)
    for stage, seconds in result.times.seconds.items():
        JOB_STAGE_SECONDS.labels(stage).observe(seconds)
    return result


def store_result(ctx: ServiceContext, job: Job, answer: BaseModel) -> None:
    """Record the job's success with its result, unless it was cancelled (or already stored) meanwhile."""

    def store() -> None:
        with ctx.sessions() as session, session.begin():
            stored = session.get(Job, job.id)
            if stored is not None and stored.status == "running":
                finish_job(session, stored, answer.model_dump(mode="json"))

    retry_database(store, f"job {job.id}: storing the result")


def render_artefacts(
    ctx: ServiceContext,
    job: Job,
    tracks: list[Track],
    progress: ProgressWriter,
    labels: dict[int, Label] | None = None,
) -> Artefacts:
    """The job's thumbnails, contact sheets and (with ``labels``) annotated video, or none when
    ``GAITID_JOB_ARTEFACTS`` is off or rendering fails (a video that cannot be read again, a full disk, an
    encoder error): they are for looking at, the result stands without them. A cancel stops it."""
    if not ctx.settings.job_artefacts:
        return Artefacts()

    def tick() -> None:
        progress("render", 0.97)  # the heartbeat: a long render must not look like a lost worker
        if progress.cancelled():
            raise JobCancelledError

    source = job.input_path or job.source
    started = time.perf_counter()
    try:
        made = render(source, ctx.recognizer.pipeline, tracks, job_artefact_dir(ctx, job), labels, tick)
        JOB_STAGE_SECONDS.labels("render").observe(time.perf_counter() - started)
        return made
    except JobCancelledError:
        raise
    except Exception:  # logged with its trace: a render failure is a bug or a broken file, not the job's
        log.exception("job %s: no artefacts", job.id)  # what was written is linked nowhere; retention removes it
        return Artefacts()


def keep_sequence_sheets(ctx: ServiceContext, sheets: dict[int, np.ndarray]) -> None:
    """Just-committed sequences' contact sheets (id → silhouettes), for the gallery. A sequence deleted
    between its commit and now took no picture with it: what nobody can reach any more is removed."""
    if not ctx.settings.job_artefacts or not sheets:
        return
    write_sequence_sheets(ctx.settings.data_dir, sheets)
    with ctx.sessions() as session:
        present = set(session.scalars(select(GaitSequence.id).where(GaitSequence.id.in_(list(sheets)))))
    remove_sequence_sheets(ctx.settings.data_dir, [i for i in sheets if i not in present])


def job_artefact_dir(ctx: ServiceContext, job: Job) -> Path:
    return artefact_dir(ctx.settings.data_dir, job.id)
