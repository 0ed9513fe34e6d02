"""The gallery follows the database: two processes' galleries stay equal through the change log."""

import numpy as np
import pytest
from sqlalchemy import select

from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from service.db.tables import GaitSequence, Subject
from service.gallery.index import IndexConfig
from service.gallery.sync import Gallery, embedding_to_bytes, record_change

MODEL = "test@1"


@pytest.fixture()
def sessions(database_url):
    upgrade(database_url)
    engine = make_engine(database_url)
    yield make_session_factory(engine)
    engine.dispose()


def _enroll(sessions, subject_id: str, embedding: np.ndarray) -> int:
    with sessions() as session, session.begin():
        if session.get(Subject, subject_id) is None:
            session.add(Subject(id=subject_id, name=subject_id))
        sequence = GaitSequence(
            subject_id=subject_id, model_key=MODEL, embedding=embedding_to_bytes(embedding), frames=30, quality=1.0
        )
        session.add(sequence)
        session.flush()
        record_change(session, MODEL, sequence.id, "add")
        return sequence.id


def _remove(sessions, sequence_id: int) -> None:
    with sessions() as session, session.begin():
        session.delete(session.get(GaitSequence, sequence_id))
        record_change(session, MODEL, sequence_id, "remove")


def test_two_galleries_stay_equal_to_the_database(sessions):
    rng = np.random.default_rng(0)
    centres = {name: rng.normal(size=(256, 16)).astype(np.float32) for name in ("ann", "bob", "cid")}
    first, second = (Gallery(sessions, MODEL, IndexConfig()) for _ in range(2))
    first.rebuild()
    second.rebuild()
    ids = {
        name: [_enroll(sessions, name, c + 0.3 * rng.normal(size=c.shape).astype(np.float32)) for _ in range(3)]
        for name, c in centres.items()
    }
    probe = centres["bob"] + 0.3 * rng.normal(size=(256, 16)).astype(np.float32)
    for gallery in (first, second):
        candidates = gallery.search(probe, k=3)
        assert candidates[0].subject_id == "bob"
        assert len({c.subject_id for c in candidates}) == 3  # one entry per subject, its best sequence
        assert len(gallery) == 9
    for sequence_id in ids["bob"]:
        _remove(sessions, sequence_id)  # written "by another process": neither gallery was told
    for gallery in (first, second):
        assert "bob" not in {c.subject_id for c in gallery.search(probe, k=3)}
    rebuilt = Gallery(sessions, MODEL, IndexConfig())
    rebuilt.rebuild()
    assert np.array_equal(rebuilt.indexed_ids(), first.indexed_ids())
    assert np.array_equal(second.indexed_ids(), np.sort(np.array(ids["ann"] + ids["cid"])))
    assert first.revision == second.revision == rebuilt.revision


def test_windows_reorder_the_shortlist_and_the_scores_stay_the_whole_walks(sessions):
    """A long probe's best window ranks the subjects (models.matching.RankingWindows); what each candidate
    shows, and what the decision reads, is still its whole-walk similarity."""
    rng = np.random.default_rng(2)
    centres = {name: rng.normal(size=(256, 16)).astype(np.float32) for name in ("ann", "bob", "cid")}
    for name, centre in centres.items():
        _enroll(sessions, name, centre)
    gallery = Gallery(sessions, MODEL, IndexConfig())
    gallery.rebuild()
    whole = 0.7 * centres["ann"] + 0.5 * centres["bob"]
    plain = gallery.search(whole, k=3)
    assert [c.subject_id for c in plain[:2]] == ["ann", "bob"]
    windows = np.stack([centres["bob"] + 0.1 * centres["cid"], 0.2 * centres["ann"] + centres["cid"]])
    ranked = gallery.search(whole, k=3, windows=windows)
    assert [c.subject_id for c in ranked] == ["bob", "cid", "ann"]  # bob's best window beats cid's and ann's
    assert {c.subject_id: c.similarity for c in ranked} == {c.subject_id: c.similarity for c in plain}
    window_scores = [c.window_similarity for c in ranked]
    assert window_scores == sorted(window_scores, reverse=True) and all(c.window_similarity is None for c in plain)
    best_window = max(gallery.search(window, k=3)[0].similarity for window in windows)
    assert ranked[0].window_similarity == pytest.approx(best_window)


def test_rebuild_in_chunks_switches_to_the_compressed_index(sessions, monkeypatch):
    """A gallery larger than one load chunk and than exact_max: chunked rebuild, compressed index, same answers."""
    monkeypatch.setattr("service.gallery.sync._LOAD_CHUNK", 100)
    rng = np.random.default_rng(1)
    centres = [rng.normal(size=(256, 16)).astype(np.float32) for _ in range(100)]
    with sessions() as session, session.begin():
        for s in range(100):
            session.add(Subject(id=f"s{s}", name=f"s{s}"))
        session.flush()
        for s, centre in enumerate(centres):
            for _ in range(3):
                noisy = centre + 0.4 * rng.normal(size=centre.shape).astype(np.float32)
                session.add(
                    GaitSequence(
                        subject_id=f"s{s}", model_key=MODEL, embedding=embedding_to_bytes(noisy), frames=30, quality=1.0
                    )
                )
    gallery = Gallery(sessions, MODEL, IndexConfig(exact_max=256))
    gallery.rebuild()
    assert len(gallery) == 300 and gallery.index.kind == "pq"
    hits = sum(
        gallery.search(c + 0.4 * rng.normal(size=c.shape).astype(np.float32), k=1)[0].subject_id == f"s{i}"
        for i, c in enumerate(centres)
    )
    assert hits >= 98


def test_the_matching_transform_and_calibration_apply_and_other_versions_are_reported(sessions):
    """Stored embeddings stay raw: the gallery applies the model's transform, answers carry the
    calibrated confidence, and sequences of another model version are counted, never searched."""
    from models.matching import Calibration, MatchingTransform

    rng = np.random.default_rng(4)
    common = 20 * rng.normal(size=(256, 16)).astype(np.float32)  # the shared component raw cosines drown in
    people = {name: rng.normal(size=(256, 16)).astype(np.float32) for name in ("ann", "bob")}
    for name, own in people.items():
        _enroll(sessions, name, common + own)
    with sessions() as session, session.begin():
        session.add(
            GaitSequence(
                subject_id="ann", model_key="test@0", embedding=embedding_to_bytes(common), frames=30, quality=1.0
            )
        )
    raw = Gallery(sessions, MODEL, IndexConfig())
    centred = Gallery(sessions, MODEL, IndexConfig(), MatchingTransform(common), Calibration(10.0, -5.0))
    for gallery in (raw, centred):
        gallery.rebuild()
        assert gallery.status() == "ok (2 sequences; 1 enrolled under other model versions are not searched: re-enroll)"
    probe = common + people["bob"] + 0.5 * rng.normal(size=(256, 16)).astype(np.float32)
    raw_best, centred_best = raw.search(probe, k=2), centred.search(probe, k=2)
    assert raw_best[0].subject_id == centred_best[0].subject_id == "bob"
    assert raw_best[1].similarity > 0.9 and abs(centred_best[1].similarity) < 0.2  # the impostor, spread apart
    assert raw_best[0].confidence is None
    assert centred_best[0].confidence == pytest.approx(1 / (1 + np.exp(-(10 * centred_best[0].similarity - 5))))


@pytest.fixture()
def postgres_sessions(tmp_path):
    from tests.service.conftest import fresh_database

    with fresh_database("postgres", tmp_path) as url:
        upgrade(url)
        engine = make_engine(url)
        yield make_session_factory(engine)
        engine.dispose()


def _start_enrollment(sessions, subject_id: str, embedding: np.ndarray):
    """An enrollment transaction that has taken its revision but not committed (as a slow writer would)."""
    session = sessions()
    session.begin()
    sequence = GaitSequence(
        subject_id=subject_id, model_key=MODEL, embedding=embedding_to_bytes(embedding), frames=30, quality=1.0
    )
    session.add(sequence)
    session.flush()
    record_change(session, MODEL, sequence.id, "add")
    session.flush()
    return session, sequence.id


@pytest.mark.postgres
def test_a_change_committed_after_a_later_revision_is_not_missed(postgres_sessions, monkeypatch):
    """PostgreSQL hands out revision r to A, r+1 to B; B commits, a process syncs, then A commits.

    The old sync jumped to r+1 and never saw A (its subject's own walk then matched someone else
    until a restart). Now A is applied by the next sync, and a hole left by a rollback is passed
    once it has stayed empty for the settle time."""
    sessions = postgres_sessions
    rng = np.random.default_rng(2)
    walks = {name: rng.normal(size=(256, 16)).astype(np.float32) for name in ("ann", "bob", "cid")}
    with sessions() as session, session.begin():
        session.add_all([Subject(id=name, name=name) for name in walks])
    gallery = Gallery(sessions, MODEL, IndexConfig())
    gallery.rebuild()
    slow, ann_id = _start_enrollment(sessions, "ann", walks["ann"])
    bob_id = _enroll(sessions, "bob", walks["bob"])
    gallery.sync()
    assert gallery.indexed_ids().tolist() == [bob_id]
    slow.commit()
    slow.close()
    gallery.sync()
    assert sorted(gallery.indexed_ids().tolist()) == sorted([ann_id, bob_id])
    assert gallery.search(walks["ann"], k=1)[0].subject_id == "ann"

    rolled_back, _ = _start_enrollment(sessions, "cid", walks["cid"])
    cid_id = _enroll(sessions, "cid", walks["cid"])
    rolled_back.rollback()
    rolled_back.close()
    gallery.sync()
    held = gallery.revision
    assert cid_id in gallery.indexed_ids().tolist()  # applied at once, the hole below it notwithstanding
    monkeypatch.setattr("service.gallery.sync.SETTLE_S", 0.0)
    gallery.sync()
    assert gallery.revision > held  # the rolled-back revision is given up on
    second = Gallery(sessions, MODEL, IndexConfig())
    second.rebuild()  # a process starting now sees the same gallery
    assert sorted(second.indexed_ids().tolist()) == sorted(gallery.indexed_ids().tolist())


@pytest.mark.postgres
def test_random_concurrent_writes_leave_every_gallery_equal_to_the_database(postgres_sessions):
    """Random enrolments (some held open while others commit), deletions and syncs by three processes'
    galleries, seeded: in the end each gallery holds exactly the database's sequences."""
    sessions = postgres_sessions
    rng = np.random.default_rng(11)
    subjects = [f"s{i}" for i in range(6)]
    with sessions() as session, session.begin():
        session.add_all([Subject(id=name, name=name) for name in subjects])
    galleries = [Gallery(sessions, MODEL, IndexConfig()) for _ in range(3)]
    for gallery in galleries:
        gallery.rebuild()
    open_writes: list = []
    for _ in range(120):
        action = rng.random()
        if action < 0.35:
            embedding = rng.normal(size=(256, 16)).astype(np.float32)
            if rng.random() < 0.4:
                open_writes.append(_start_enrollment(sessions, str(rng.choice(subjects)), embedding)[0])
            else:
                _enroll(sessions, str(rng.choice(subjects)), embedding)
        elif action < 0.5 and open_writes:
            session = open_writes.pop(int(rng.integers(len(open_writes))))
            session.commit() if rng.random() < 0.8 else session.rollback()
            session.close()
        elif action < 0.65:
            with sessions() as session:
                ids = session.scalars(select(GaitSequence.id).where(GaitSequence.model_key == MODEL)).all()
            if ids:
                _remove(sessions, int(rng.choice(ids)))
        else:
            galleries[int(rng.integers(3))].sync()
    for session in open_writes:
        session.commit()
        session.close()
    with sessions() as session:
        stored = sorted(session.scalars(select(GaitSequence.id).where(GaitSequence.model_key == MODEL)).all())
    for gallery in galleries:
        gallery.sync()
        assert sorted(gallery.indexed_ids().tolist()) == stored


def test_a_gallery_of_another_shape_stores_and_finds_its_walks(sessions):
    """The shape comes from the model card (service.gallery.servable); nothing assumes 256×16."""
    rng = np.random.default_rng(3)
    gallery = Gallery(sessions, MODEL, IndexConfig(), shape=(128, 8))
    gallery.rebuild()
    centres = {name: rng.normal(size=(128, 8)).astype(np.float32) for name in ("ann", "bob")}
    for name, centre in centres.items():
        _enroll(sessions, name, centre)
    candidates = gallery.search(centres["bob"] + 0.1 * rng.normal(size=(128, 8)).astype(np.float32), k=2)
    assert [c.subject_id for c in candidates] == ["bob", "ann"] and len(gallery) == 2
