"""The work of a job, the same whichever runner executes it (in-process thread or Celery worker).

Enrollment stores the sequence, the gallery change, the audit entry and the job's success in one
transaction: a job re-run after a crash either finds it done or starts clean, so it never
enrolls twice. A database restart in the middle of a job only delays it: progress is skipped while
the database is away (or its disk full) and the result is written once it is back (:mod:`service.db.faults`).
"""

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError

from models.errors import ModelError
from pipeline.errors import PipelineError
from pipeline.extract import PipelineResult
from pipeline.summary import TrackSummary
from pipeline.tracks import Track
from service.answers import EnrollResult, IdentifyResult, TrackAnswer, UploadedWalk
from service.context import ServiceContext
from service.db.briefs import candidate_answer, subject_brief
from service.db.faults import database_fault, retry_database
from service.db.subjects import add_sequence
from service.db.tables import Job, Subject
from service.errors import ServiceError
from service.jobs.artefacts import (
    artefact_links,
    artefact_url,
    label_of,
)
from service.jobs.group import enroll_group, preview
from service.jobs.steps import JobFailedError, keep_sequence_sheets, render_artefacts, run_pipeline, store_result
from service.jobs.store import TERMINAL, ProgressWriter, claim, fail_job, finish_job, remove_input
from service.metrics import JOBS_TOTAL
from service.recognition import JobCancelledError, WalkAnswer, answer_walk
from service.silhouette_uploads import read_silhouettes

log = logging.getLogger(__name__)


def _pick_enrollment_track(result: PipelineResult, track_id: int | None) -> Track:
    tracks = [TrackSummary.of(t).model_dump() for t in result.tracks]
    if track_id is not None:
        for track in result.tracks:
            if track.track_id == track_id:
                if not track.kept:
                    raise JobFailedError(
                        f"track {track_id} is not usable: {track.reason}", "track_unusable", {"tracks": tracks}
                    )
                return track
        raise JobFailedError(f"the video has no track {track_id}", "track_not_found", {"tracks": tracks})
    kept = result.kept
    if not kept:
        raise JobFailedError(
            "no walking person with enough good frames in the video", "no_walking_person", {"tracks": tracks}
        )
    if len(kept) > 1:
        ids = ", ".join(str(t.track_id) for t in kept)
        raise JobFailedError(
            f"the video shows {len(kept)} walking people (tracks {ids}); pick one with track_id",
            "multiple_tracks",
            {"tracks": tracks},
        )
    return kept[0]


def _enroll(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> None:
    kind = job.params.get("input_kind", "video")
    if kind in ("npy", "zip"):
        sils = read_silhouettes(Path(job.input_path or ""), kind)
        track: TrackSummary | UploadedWalk = UploadedWalk(good_frames=len(sils), quality=1.0)
    else:
        result = run_pipeline(ctx, job, progress)
        picked = _pick_enrollment_track(result, job.params.get("track_id"))
        sils, track = picked.silhouettes, TrackSummary.of(picked)
    progress("embed", 0.92, force=True)
    embedding = ctx.recognizer.embed([sils])[0]

    def store() -> dict[int, np.ndarray]:
        """The new sequence's id → its walk, once committed (none when the job was cancelled meanwhile)."""
        with ctx.sessions() as session, session.begin():
            stored = session.get(Job, job.id)
            if stored is None or stored.status != "running":
                return {}  # cancelled meanwhile, or stored by an attempt whose commit was not confirmed
            if session.get(Subject, job.subject_id) is None:
                raise JobFailedError("the subject was deleted before its enrollment finished", "subject_not_found")
            sequence = add_sequence(
                session,
                job.api_key_id,
                job.subject_id,
                ctx.recognizer.model_key,
                embedding,
                frames=track.good_frames,
                quality=track.quality,
                source=job.source,
                track_id=track.track_id,
                job_id=job.id,
            )
            answer = EnrollResult(
                subject_id=sequence.subject_id, sequence_id=sequence.id, model=sequence.model_key, track=track
            )
            finish_job(session, stored, answer.model_dump(mode="json"))
        return {answer.sequence_id: sils}

    sheets = retry_database(store, f"job {job.id}: storing the enrollment")
    retry_database(ctx.gallery.sync, f"job {job.id}: updating the gallery")
    keep_sequence_sheets(ctx, sheets)


def _identify(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> None:
    result = run_pipeline(ctx, job, progress)
    progress("embed", 0.92, force=True)
    threshold = ctx.recognizer.threshold(job.params.get("threshold"))
    top_k = int(job.params.get("top_k") or ctx.settings.top_k)
    walks = walk_answers(ctx, result.tracks, threshold, top_k)
    progress("match", 0.97, force=True)
    tracks = retry_database(lambda: track_answers(ctx, result.tracks, walks), f"job {job.id}: matching")
    video = None
    if ctx.settings.job_artefacts:
        progress("render", 0.97, force=True)
        labels = {t.track_id: label_of(t) for t in tracks} if job.params.get("annotate") else None
        made = render_artefacts(ctx, job, result.tracks, progress, labels)
        tracks = [t.model_copy(update=artefact_links(job.id, made, t.track_id)) for t in tracks]
        video = artefact_url(job.id, made.video) if made.video else None
    answer = IdentifyResult(
        model=ctx.recognizer.model_key,
        threshold=threshold,
        frames=result.frames,
        truncated=result.truncated,
        tracks=tracks,
        annotated_video=video,
    )
    store_result(ctx, job, answer)


def walk_answers(ctx: ServiceContext, tracks: list[Track], threshold: float, top_k: int) -> dict[int, WalkAnswer]:
    """Embed the usable tracks in one batch and answer each (:func:`service.recognition.answer_walk`)."""
    kept = [t for t in tracks if t.kept]
    walks = ctx.recognizer.probe_walks([t.silhouettes for t in kept]) if kept else []
    return {t.track_id: answer_walk(ctx.gallery, w, threshold, top_k) for t, w in zip(kept, walks, strict=True)}


def track_answers(ctx: ServiceContext, tracks: list[Track], walks: dict[int, WalkAnswer]) -> list[TrackAnswer]:
    """Every track's answer, subjects named as they are now; unusable tracks are ``insufficient``."""
    answers = []
    with ctx.sessions() as session:
        for track in tracks:
            summary = TrackSummary.of(track).model_dump()
            walk = walks.get(track.track_id)
            if walk is None:
                answers.append(
                    TrackAnswer(
                        **summary, decision="insufficient", subject=None, score=None, confidence=None, candidates=[]
                    )
                )
                continue
            best = walk.verdict.candidate
            answers.append(
                TrackAnswer(
                    **summary,
                    decision=walk.verdict.decision,
                    subject=subject_brief(session, walk.verdict.subject_id),
                    **(best.scores() if best else {"score": None, "confidence": None}),
                    candidates=[candidate_answer(session, c) for c in walk.candidates],
                )
            )
    return answers


WORK: dict[str, Callable[[ServiceContext, Job, ProgressWriter], None]] = {
    "enroll": _enroll,
    "identify": _identify,
    "preview": preview,
    "enroll_group": enroll_group,
}


def process_job(ctx: ServiceContext, job_id: str) -> None:
    """Run one job to its end; every failure becomes a recorded error code, never an exception.

    Except an unreachable or full database: the job's writes wait for it (:func:`retry_database`); one
    that stays away longer raises, leaving the job queued or running for its runner to try again
    (the in-process runner after the job's lease, Celery with its retries) — it is not failed for a
    fault that is not its own, and a restarted service would recover it anyway.
    """
    if not claim(ctx.sessions, job_id, ctx.settings.job_lease_seconds):
        return
    job = retry_database(lambda: _load(ctx, job_id), f"job {job_id}: loading")
    assert job is not None
    progress = ProgressWriter(ctx.sessions, job_id)
    try:
        WORK[job.kind](ctx, job, progress)
    except JobCancelledError:
        log.info("job %s cancelled", job_id)
    except IntegrityError:  # a second delivery of this job lost the race to enroll: the first one counts
        log.info("job %s was already completed by another delivery", job_id)
    except (ServiceError, PipelineError, ModelError) as error:
        details = error.details if isinstance(error, ServiceError) else None
        _record_failure(ctx, job_id, error.code, str(error), details)
    except Exception as error:
        if database_fault(error):
            log.error("job %s: the database stayed unreachable or full; the job will be tried again", job_id)
            raise
        log.exception("job %s failed unexpectedly", job_id)
        _record_failure(ctx, job_id, "internal_error", "internal error; see the server log")
    stored = retry_database(lambda: _load(ctx, job_id), f"job {job_id}: loading")
    if stored is not None and stored.status in TERMINAL:
        JOBS_TOTAL.labels(stored.kind, stored.status).inc()
        remove_input(stored)


def _record_failure(
    ctx: ServiceContext, job_id: str, code: str, message: str, details: dict[str, Any] | None = None
) -> None:
    retry_database(
        lambda: fail_job(ctx.sessions, job_id, code, message, details), f"job {job_id}: recording its failure"
    )


def _load(ctx: ServiceContext, job_id: str) -> Job | None:
    with ctx.sessions() as session:
        return session.get(Job, job_id)
