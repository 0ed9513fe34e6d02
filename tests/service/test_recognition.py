"""Identify jobs and live streams answer through one recognition path: the same silhouettes get the same
decision, subject, scores and candidates, whichever way they came in.

Real parts: the bundled default model, a migrated SQLite database, the gallery index, and real
silhouettes from real clips (the default pipeline, cached for the session).
"""

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from pipeline.tracks import Track, TrackBuilder
from service.context import ServiceContext
from service.db.migrate import upgrade
from service.db.tables import GaitSequence, Stream, StreamEvent, Subject, utcnow
from service.gallery.sync import embedding_to_bytes, record_change
from service.jobs.work import track_answers, walk_answers
from service.settings import Settings
from service.streams.live import LiveTrack
from service.streams.payload import event_answer
from service.streams.worker import StreamDefinition, StreamWorker

ENROLMENTS = {"J": ("walk_indoor_a_enroll.mp4", 0), "O": ("walk_outdoor.mp4", 0), "R": ("walk_outdoor.mp4", 1)}
PROBE = "walk_indoor_a_probe.mp4"


def _usable_tracks(out: Path) -> list[np.ndarray]:
    """The silhouettes of a clip's usable tracks, in track order."""
    import json

    report = json.loads((out / "tracks.json").read_text())
    return [np.load(out / f"{t['track_id']}.npy") for t in report["tracks"] if t["usable"]]


def _track(silhouettes: np.ndarray) -> Track:
    n = len(silhouettes)
    return Track(1, True, "", 0, n - 1, 0.0, n / 30, n, silhouettes, list(range(n)), [], {})


@pytest.fixture()
def context(tmp_path: Path, clip_pipeline) -> ServiceContext:
    database = f"sqlite:///{tmp_path / 'gaitid.db'}"
    upgrade(database)
    ctx = ServiceContext.create(Settings(database_url=database, data_dir=tmp_path / "data"))  # type: ignore[call-arg]
    ctx.load()
    with ctx.sessions() as session, session.begin():
        for name, (clip, index) in ENROLMENTS.items():
            silhouettes = _usable_tracks(clip_pipeline(clip))[index]
            subject = Subject(name=name)
            session.add(subject)
            session.flush()
            sequence = GaitSequence(
                subject_id=subject.id,
                model_key=ctx.recognizer.model_key,
                embedding=embedding_to_bytes(ctx.recognizer.embed([silhouettes])[0]),
                frames=len(silhouettes),
                quality=1.0,
                source=clip,
            )
            session.add(sequence)
            session.flush()
            record_change(session, sequence.model_key, sequence.id, "add")
    ctx.gallery.sync()
    yield ctx
    ctx.close()


def test_jobs_and_streams_give_the_same_answer_for_the_same_silhouettes(context: ServiceContext, clip_pipeline):
    ctx = context
    (probe,) = _usable_tracks(clip_pipeline(PROBE))
    threshold = ctx.recognizer.threshold()

    walks = walk_answers(ctx, [_track(probe)], threshold, ctx.settings.top_k)
    (job_answer,) = track_answers(ctx, [_track(probe)], walks)

    with ctx.sessions() as session, session.begin():
        stream = Stream(
            name="door", url="rtsp://127.0.0.1/door", owner="test", lease_until=utcnow() + timedelta(hours=1)
        )
        session.add(stream)
        session.flush()
        definition = StreamDefinition.of(stream)
    worker = StreamWorker(ctx, definition, owner="test")
    builder = TrackBuilder(track_id=7, first_frame=0, first_time_s=0.0)
    builder.silhouettes.extend(probe)
    worker._identify(LiveTrack(builder, first_wall=0.0, last_wall=1.0), None)
    with ctx.sessions() as session:
        (row,) = session.query(StreamEvent).all()
        event = event_answer(session, row)

    assert job_answer.decision == event.decision
    assert job_answer.subject == event.subject
    assert (job_answer.score, job_answer.confidence) == (event.score, event.confidence)
    assert job_answer.candidates == event.candidates and len(event.candidates) == len(ENROLMENTS)
    # and the answer is J's: the probe is J's second walk (the real-clip protocol measures harder cases)
    assert job_answer.candidates[0].subject is not None and job_answer.candidates[0].subject.name == "J"
