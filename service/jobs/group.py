"""Enrolling a group from one video: its tracks are previewed once, then any of them are enrolled as
people in one job, with no second pipeline run.

A preview job keeps each usable track's silhouettes beside its thumbnails (``DATA_DIR/artefacts``)
until job retention removes it; the group enrollment reads them from there, embeds them in one
batch and stores every sequence (and every new subject) in one transaction: all or nothing.
"""

from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from pipeline.summary import TrackSummary
from service.answers import EnrollResult, GroupEnrollResult, PreviewResult, PreviewTrack
from service.context import ServiceContext
from service.db.faults import disk_full, retry_database
from service.db.subjects import add_sequence, add_subject
from service.db.tables import Job, Subject
from service.jobs.artefacts import (
    artefact_dir,
    artefact_links,
    load_silhouettes,
    save_silhouettes,
)
from service.jobs.steps import (
    JobFailedError,
    job_artefact_dir,
    keep_sequence_sheets,
    render_artefacts,
    run_pipeline,
    store_result,
)
from service.jobs.store import ProgressWriter, finish_job


def preview(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> None:
    result = run_pipeline(ctx, job, progress)
    progress("render", 0.92, force=True)
    folder = job_artefact_dir(ctx, job)
    try:
        for track in result.kept:
            save_silhouettes(folder, track)  # what a later enrollment reads: kept even without pictures
    except OSError as error:
        if not disk_full(error):
            raise
        raise JobFailedError(
            "no room left on the server to keep the preview; retry later", "insufficient_storage"
        ) from None
    made = render_artefacts(ctx, job, result.tracks, progress)
    answer = PreviewResult(
        frames=result.frames,
        truncated=result.truncated,
        tracks=[
            PreviewTrack(**TrackSummary.of(t).model_dump(), **artefact_links(job.id, made, t.track_id))
            for t in result.tracks
        ],
    )
    store_result(ctx, job, answer)


def enroll_group(ctx: ServiceContext, job: Job, progress: ProgressWriter) -> None:
    preview_id: str = job.params["preview_job_id"]
    people: list[dict[str, Any]] = job.params["people"]
    source, tracks = retry_database(lambda: _previewed_tracks(ctx, preview_id), f"job {job.id}: reading the preview")
    folder = artefact_dir(ctx.settings.data_dir, preview_id)
    walks = []
    for person in people:
        silhouettes = load_silhouettes(folder, person["track_id"])
        if silhouettes is None or person["track_id"] not in tracks:
            raise JobFailedError(
                f"preview {preview_id} no longer has track {person['track_id']}: preview the video again",
                "preview_expired",
            )
        walks.append(silhouettes)
    progress("embed", 0.5, force=True)
    embeddings = ctx.recognizer.embed(walks)
    progress("store", 0.9, force=True)

    def store() -> dict[int, np.ndarray]:
        """The new sequences' ids → their walks, once committed (none when the job was cancelled meanwhile)."""
        with ctx.sessions() as session, session.begin():
            stored = session.get(Job, job.id)
            if stored is None or stored.status != "running":
                return {}  # cancelled meanwhile, or stored by an attempt whose commit was not confirmed
            enrolled = []
            for n, (person, embedding) in enumerate(zip(people, embeddings, strict=True)):
                subject_id = _subject_for(session, job, person)
                track = tracks[person["track_id"]]
                sequence = add_sequence(
                    session,
                    job.api_key_id,
                    subject_id,
                    ctx.recognizer.model_key,
                    embedding,
                    frames=track.good_frames,
                    quality=track.quality,
                    source=source,
                    track_id=track.track_id,
                    # the job's id (unique among sequences) on its first sequence only: a second delivery of
                    # the job then fails on it and stores nothing, as a repeated single enrollment does
                    job_id=job.id if n == 0 else None,
                )
                enrolled.append(
                    EnrollResult(subject_id=subject_id, sequence_id=sequence.id, model=sequence.model_key, track=track)
                )
            finish_job(session, stored, GroupEnrollResult(enrolled=enrolled).model_dump(mode="json"))
        return {e.sequence_id: walk for e, walk in zip(enrolled, walks, strict=True)}

    sheets = retry_database(store, f"job {job.id}: storing the enrollments")
    retry_database(ctx.gallery.sync, f"job {job.id}: updating the gallery")
    keep_sequence_sheets(ctx, sheets)


def _previewed_tracks(ctx: ServiceContext, preview_id: str) -> tuple[str, dict[int, TrackSummary]]:
    """The previewed video's name (the file or URL, as its sequences' source) and its tracks."""
    with ctx.sessions() as session:
        preview_job = session.get(Job, preview_id)
    if preview_job is None or preview_job.kind != "preview" or preview_job.status != "succeeded":
        raise JobFailedError(f"preview {preview_id} is gone: preview the video again", "preview_expired")
    result = PreviewResult.model_validate(preview_job.result)
    return preview_job.source, {t.track_id: TrackSummary.model_validate(t.model_dump()) for t in result.tracks}


def _subject_for(session: Session, job: Job, person: dict[str, Any]) -> str:
    """The person's subject: the one named, or a new one (created in the enrollment's transaction; a taken
    external id fails the whole job with ``external_id_taken``)."""
    if person.get("subject_id"):
        if session.get(Subject, person["subject_id"]) is None:
            raise JobFailedError(f"subject {person['subject_id']} was deleted meanwhile", "subject_not_found")
        return str(person["subject_id"])
    subject = add_subject(
        session, job.api_key_id, person.get("external_id"), person.get("name") or "", person.get("metadata") or {}
    )
    return subject.id
