"""The work of a job, the same whichever runner executes it (in-process thread or Celery worker).

Enrollment stores the sequence, the gallery change, the audit entry and the job's success in one
transaction: a job re-run after a crash either finds it done or starts clean, so it never
enrolls twice. A database restart in the middle of a job only delays it: progress is skipped while
the database is away (or its disk full) and the result is written once it is back (:mod:`service.db.faults`).
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError

from models.errors import ModelError
from models.matching import decide
from pipeline.errors import PipelineError
from pipeline.extract import PipelineResult
from pipeline.tracks import Track
from service.context import ServiceContext
from service.db import audit
from service.db.briefs import subject_brief
from service.db.faults import database_fault, retry_database
from service.db.tables import GaitSequence, Job, Subject
from service.errors import ServiceError
from service.gallery.sync import embedding_to_bytes, record_change
from service.jobs.store import TERMINAL, ProgressWriter, claim, fail_job, finish_job, remove_input
from service.metrics import JOB_STAGE_SECONDS, JOBS_TOTAL
from service.recognition import JobCancelledError
from service.silhouette_uploads import read_silhouettes

log = logging.getLogger(__name__)


class JobFailedError(ServiceError):
    """A job that cannot succeed, with the details a client needs (e.g. the tracks to pick from)."""

    status = 422


def track_summary(track: Track) -> dict[str, Any]:
    return {
        "track_id": track.track_id,
        "start_s": round(track.start_s, 3),
        "end_s": round(track.end_s, 3),
        "good_frames": track.good_frames,
        "seen_frames": track.seen_frames,
        "quality": round(track.good_frames / track.seen_frames, 3) if track.seen_frames else 0.0,
        "usable": track.kept,
        "reason": track.reason,
        # where the person is mid-track (x1, y1, x2, y2 px), so a user can tell tracks apart
        "box": [round(v, 1) for v in middle_box] if (middle_box := _middle_box(track)) else None,
    }


def _middle_box(track: Track) -> tuple[float, float, float, float] | None:
    return track.boxes[len(track.boxes) // 2][1] if track.boxes else None


def _pick_enrollment_track(result: PipelineResult, track_id: int | None) -> Track:
    tracks = [track_summary(t) for t in result.tracks]
    if track_id is not None:
        for track in result.tracks:
            if track.track_id == track_id:
                if not track.kept:
                    raise JobFailedError(
                        f"track {track_id} is not usable: {track.reason}", "track_unusable", 422, {"tracks": tracks}
                    )
                return track
        raise JobFailedError(f"the video has no track {track_id}", "track_not_found", 422, {"tracks": tracks})
    kept = result.kept
    if not kept:
        raise JobFailedError(
            "no walking person with enough good frames in the video", "no_walking_person", 422, {"tracks": tracks}
        )
    if len(kept) > 1:
        ids = ", ".join(str(t.track_id) for t in kept)
        raise JobFailedError(
            f"the video shows {len(kept)} walking people (tracks {ids}); pick one with track_id",
            "multiple_tracks",
            409,
            {"tracks": tracks},
        )
    return kept[0]


def _run_pipeline(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> PipelineResult:
    source = job.input_path or job.source
    result = ctx.recognizer.extract(source, lambda p: progress("pipeline", 0.9 * p), progress.cancelled)
    for stage, seconds in result.times.seconds.items():
        JOB_STAGE_SECONDS.labels(stage).observe(seconds)
    return result


def _enroll(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> None:
    kind = job.params.get("input_kind", "video")
    if kind in ("npy", "zip"):
        sils = read_silhouettes(Path(job.input_path or ""), kind)
        track: dict[str, Any] = {"track_id": None, "good_frames": len(sils), "quality": 1.0}
    else:
        result = _run_pipeline(ctx, job, progress)
        picked = _pick_enrollment_track(result, job.params.get("track_id"))
        sils, track = picked.silhouettes, track_summary(picked)
    progress("embed", 0.92, force=True)
    embedding = ctx.recognizer.embed([sils])[0]

    def store() -> None:
        with ctx.sessions() as session, session.begin():
            stored = session.get(Job, job.id)
            if stored is None or stored.status != "running":
                return  # cancelled meanwhile, or stored by an attempt whose commit was not confirmed
            if session.get(Subject, job.subject_id) is None:
                raise JobFailedError("the subject was deleted before its enrollment finished", "subject_not_found", 404)
            sequence = GaitSequence(
                subject_id=job.subject_id,
                model_key=ctx.recognizer.model_key,
                embedding=embedding_to_bytes(embedding),
                frames=int(track["good_frames"]),
                quality=float(track["quality"]),
                source=job.source[:500],
                track_id=track["track_id"],
                job_id=job.id,
            )
            session.add(sequence)
            session.flush()
            record_change(session, sequence.model_key, sequence.id, "add")
            audit.record(session, job.api_key_id, "enroll", f"subject:{job.subject_id}", sequence_id=sequence.id)
            finish_job(
                session,
                stored,
                {"subject_id": job.subject_id, "sequence_id": sequence.id, "model": sequence.model_key, "track": track},
            )

    retry_database(store, f"job {job.id}: storing the enrollment")
    retry_database(ctx.gallery.sync, f"job {job.id}: updating the gallery")


def _identify(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> None:
    result = _run_pipeline(ctx, job, progress)
    kept = result.kept
    progress("embed", 0.92, force=True)
    embedded = ctx.recognizer.embed([t.silhouettes for t in kept]) if kept else np.zeros((0, 256, 16), np.float32)
    embeddings = {t.track_id: e for t, e in zip(kept, embedded, strict=True)}
    threshold = ctx.recognizer.threshold(job.params.get("threshold"))
    top_k = int(job.params.get("top_k") or ctx.settings.top_k)
    progress("match", 0.97, force=True)
    answers = retry_database(lambda: _answers(ctx, result, embeddings, threshold, top_k), f"job {job.id}: matching")

    def store() -> None:
        with ctx.sessions() as session, session.begin():
            stored = session.get(Job, job.id)
            if stored is not None and stored.status == "running":
                finish_job(
                    session,
                    stored,
                    {
                        "model": ctx.recognizer.model_key,
                        "threshold": threshold,
                        "frames": result.frames,
                        "truncated": result.truncated,
                        "tracks": answers,
                    },
                )

    retry_database(store, f"job {job.id}: storing the result")


def _answers(
    ctx: ServiceContext, result: PipelineResult, embeddings: dict[int, np.ndarray], threshold: float, top_k: int
) -> list[dict[str, Any]]:
    """Each track's answer: its decision, the subject and the candidates, read against the gallery."""
    answers = []
    with ctx.sessions() as session:
        for track in result.tracks:
            summary = track_summary(track)
            if not track.kept:
                answers.append(
                    {
                        **summary,
                        "decision": "insufficient",
                        "subject": None,
                        "score": None,
                        "confidence": None,
                        "candidates": [],
                    }
                )
                continue
            candidates = ctx.gallery.search(embeddings[track.track_id], top_k)
            verdict = decide(candidates, threshold)
            answers.append(
                {
                    **summary,
                    "decision": verdict.decision,
                    "subject": subject_brief(session, verdict.subject_id),
                    **(verdict.candidate.scores() if verdict.candidate else {"score": None, "confidence": None}),
                    "candidates": [{"subject": subject_brief(session, c.subject_id), **c.scores()} for c in candidates],
                }
            )
    return answers


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
        (_enroll if job.kind == "enroll" else _identify)(ctx, job, progress)
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
