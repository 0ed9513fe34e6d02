"""Steps every kind of job shares: the pipeline run, the artefacts, and the failure a client is shown."""

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pipeline.errors import PipelineError
from pipeline.extract import PipelineResult
from pipeline.tracks import Track
from service.context import ServiceContext
from service.db.faults import retry_database
from service.db.tables import Job
from service.errors import ServiceError, describe, job_failure_status
from service.jobs.artefacts import Artefacts, Label, artefact_dir, render
from service.jobs.store import ProgressWriter, finish_job
from service.metrics import JOB_STAGE_SECONDS

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
    ctx: ServiceContext, job: Job, tracks: list[Track], labels: dict[int, Label] | None = None
) -> Artefacts:
    """The job's thumbnails, contact sheets and (with ``labels``) annotated video; none when the video
    cannot be read again or the disk is full: they are for looking at, the result stands without them."""
    try:
        return render(job.input_path or job.source, ctx.recognizer.pipeline, tracks, job_artefact_dir(ctx, job), labels)
    except (PipelineError, OSError) as error:
        log.warning("job %s: no artefacts (%s)", job.id, describe(error))
        return Artefacts()


def job_artefact_dir(ctx: ServiceContext, job: Job) -> Path:
    return artefact_dir(ctx.settings.data_dir, job.id)
