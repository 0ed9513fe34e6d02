"""The gallery of one model version: a FAISS index kept equal to the database.

The database is the source of truth. Every enrollment or removal appends a row to
``gallery_changes`` in the same transaction; the highest row id is the gallery revision. Before
each search (and after each own write) a process compares its revision with the database's and
applies the missing changes, so several API processes stay consistent without a full rebuild.
"""

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.db.tables import GaitSequence, GalleryChange
from service.gallery.index import GalleryIndex, IndexConfig
from service.gallery.vectors import EMBEDDING_SHAPE, gallery_vectors

# Over-fetch so that per-subject aggregation still finds k distinct subjects when subjects
# have several sequences each.
_SEQUENCES_PER_SUBJECT = 8
_LOAD_CHUNK = 10_000


@dataclass(frozen=True)
class Candidate:
    """A subject and its best-matching enrolled sequence."""

    subject_id: str
    score: float
    sequence_id: int


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    return np.ascontiguousarray(embedding, dtype=np.float32).reshape(EMBEDDING_SHAPE).tobytes()


def embedding_from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).reshape(EMBEDDING_SHAPE)


def record_change(session: Session, model_key: str, sequence_id: int, op: str) -> None:
    """Log a gallery write; call inside the transaction that makes the write."""
    session.add(GalleryChange(model_key=model_key, sequence_id=sequence_id, op=op))


def database_revision(session: Session) -> int:
    return int(session.scalar(select(func.max(GalleryChange.revision))) or 0)


class Gallery:
    """The searchable gallery of ``model_key``, derived from the database."""

    def __init__(self, sessions: sessionmaker[Session], model_key: str, index_config: IndexConfig) -> None:
        self.sessions = sessions
        self.model_key = model_key
        self.index = GalleryIndex(config=index_config)
        self.revision = 0
        self._subjects: dict[int, str] = {}
        self._lock = threading.Lock()

    def rebuild(self) -> None:
        """Load every sequence of this model from the database (start-up, or after a gap)."""
        with self._lock, self.sessions() as session:
            revision = database_revision(session)
            ids, vectors, subjects = self._load(session, None)
            self.index.rebuild(ids, vectors)
            self._subjects = subjects
            self.revision = revision

    def _load(self, session: Session, only: Iterable[int] | None) -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
        query = select(GaitSequence.id, GaitSequence.subject_id, GaitSequence.embedding).where(
            GaitSequence.model_key == self.model_key
        )
        if only is not None:
            query = query.where(GaitSequence.id.in_(list(only)))
        ids: list[int] = []
        chunks: list[np.ndarray] = []
        subjects: dict[int, str] = {}
        batch: list[np.ndarray] = []
        for row in session.execute(query.order_by(GaitSequence.id)).yield_per(_LOAD_CHUNK):
            ids.append(row.id)
            subjects[row.id] = row.subject_id
            batch.append(embedding_from_bytes(row.embedding))
            if len(batch) == _LOAD_CHUNK:
                chunks.append(gallery_vectors(np.stack(batch)))
                batch = []
        if batch:
            chunks.append(gallery_vectors(np.stack(batch)))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, self.index_dim), np.float32)
        return np.asarray(ids, dtype=np.int64), vectors, subjects

    @property
    def index_dim(self) -> int:
        return EMBEDDING_SHAPE[0] * EMBEDDING_SHAPE[1]

    def sync(self) -> None:
        """Apply the database's gallery changes made since this process last looked."""
        with self._lock, self.sessions() as session:
            latest = database_revision(session)
            if latest == self.revision:
                return
            changes = session.execute(
                select(GalleryChange.sequence_id, GalleryChange.op)
                .where(GalleryChange.revision > self.revision, GalleryChange.model_key == self.model_key)
                .order_by(GalleryChange.revision)
            ).all()
            removed = {c.sequence_id for c in changes if c.op == "remove"}
            added = {c.sequence_id for c in changes if c.op == "add"} - removed
            if removed:
                self.index.remove(np.fromiter(removed, dtype=np.int64))
                for sequence_id in removed:
                    self._subjects.pop(sequence_id, None)
            if added:
                ids, vectors, subjects = self._load(session, added)
                if len(ids):
                    self.index.add(ids, vectors)
                    self._subjects.update(subjects)
            self.revision = latest

    def __len__(self) -> int:
        return len(self.index)

    def indexed_ids(self) -> np.ndarray:
        return self.index.ids()

    def search(self, embedding: np.ndarray, k: int) -> list[Candidate]:
        """The ``k`` best subjects for one probe embedding: per subject, its best sequence's score."""
        self.sync()
        if len(self.index) == 0:
            return []
        fetch = min(len(self.index), max(k * _SEQUENCES_PER_SUBJECT, k))
        scores, ids = self.index.search(gallery_vectors(embedding[None]), fetch)
        best: dict[str, Candidate] = {}
        with self._lock:
            for score, sequence_id in zip(scores[0].tolist(), ids[0].tolist(), strict=True):
                subject_id = self._subjects.get(sequence_id)
                if sequence_id < 0 or subject_id is None or subject_id in best:
                    continue
                best[subject_id] = Candidate(subject_id, float(score), int(sequence_id))
        return sorted(best.values(), key=lambda c: -c.score)[:k]
