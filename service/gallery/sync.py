"""The gallery of one model version: a FAISS index kept equal to the database.

The database is the source of truth. Every enrollment or removal appends a row to
``gallery_changes`` in the same transaction; the highest row id is the gallery revision. Before
each search (and after each own write) a process applies the changes it has not applied yet, so
several API processes and workers stay consistent without a full rebuild.

Revisions are handed out when a transaction inserts its change, not when it commits: on
PostgreSQL a transaction can take revision 10, another take 11 and commit first, and 10 appear
later. So a process does not jump to the highest revision it sees. It keeps a *watermark*, below
which every revision has been applied, applies whatever shows up above it (once), and moves the
watermark over a missing revision only after it has stayed missing for ``SETTLE_S`` (a
transaction that rolled back leaves a hole forever). Applying a change twice is harmless: an add
re-reads the sequence row (gone if it was deleted since) and a remove of an absent id does nothing.
"""

import logging
import threading
import time
from collections.abc import Iterable, Iterator

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.matching import Calibration, Candidate, MatchingTransform, rank_subjects
from service.db.tables import GaitSequence, GalleryChange
from service.gallery.index import GalleryIndex, IndexConfig
from service.gallery.vectors import DEFAULT_EMBEDDING_SHAPE

# Over-fetch so that per-subject aggregation still finds k distinct subjects when subjects
# have several sequences each.
log = logging.getLogger(__name__)
_SEQUENCES_PER_SUBJECT = 8
_LOAD_CHUNK = 20_000  # also enough vectors to train the compressed index in the first chunk
SETTLE_S = 30.0  # how long a missing revision may still be an open transaction (enrollments commit in well under this)
_REBUILD_LOOKBACK = 1000  # revisions below the newest that a rebuild re-checks for late commits


def embedding_to_bytes(embedding: np.ndarray) -> bytes:
    """A raw ``[channels, parts]`` embedding as stored (float32, C order); its model card says the shape."""
    if np.ndim(embedding) != 2:
        raise ValueError(f"an embedding is [channels, parts], got {list(np.shape(embedding))}")
    return np.ascontiguousarray(embedding, dtype=np.float32).tobytes()


def embedding_from_bytes(blob: bytes, shape: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.float32).reshape(shape)


def record_change(session: Session, model_key: str, sequence_id: int, op: str) -> None:
    """Log a gallery write; call inside the transaction that makes the write."""
    session.add(GalleryChange(model_key=model_key, sequence_id=sequence_id, op=op))


def database_revision(session: Session) -> int:
    return int(session.scalar(select(func.max(GalleryChange.revision))) or 0)


class Gallery:
    """The searchable gallery of ``model_key``, derived from the database.

    The database keeps each sequence's raw embedding; the index holds them after the model's
    matching transform, so a changed transform is applied to every vector at the next rebuild and
    vectors of two transforms or model versions never share an index.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        model_key: str,
        index_config: IndexConfig,
        transform: MatchingTransform | None = None,
        calibration: Calibration | None = None,
        shape: tuple[int, int] = DEFAULT_EMBEDDING_SHAPE,
    ) -> None:
        self.sessions = sessions
        self.model_key = model_key
        self.shape = shape  # [channels, parts] of the model's embeddings
        self.transform = transform or MatchingTransform()
        self.calibration = calibration
        self.index = GalleryIndex(self.transform.vector_length(shape), index_config)
        self.revision = 0  # the watermark: every revision up to here is applied (or was rolled back)
        self._applied: set[int] = set()  # revisions above the watermark already applied
        self._missing_since: dict[int, float] = {}  # revisions above the watermark not seen yet, and since when
        self._latest_seen = 0
        self.other_versions = 0  # sequences enrolled under other model versions: never searched here
        self._subjects: dict[int, str] = {}
        self._lock = threading.Lock()

    def rebuild(self) -> None:
        """Load every sequence of this model from the database (start-up, or after a gap).

        Vectors are added in chunks, never all at once: a million float32 embeddings are 16 GB,
        while the compressed index keeps about 1.8 KB of each of default@5's (6.3 KB of 4,096 dims).
        """
        with self._lock, self.sessions() as session:
            # changes committed before the load are in it; any later (or late) commit is applied after it
            watermark = max(0, database_revision(session) - _REBUILD_LOOKBACK)
            loaded = set(session.scalars(select(GalleryChange.revision).where(GalleryChange.revision > watermark)))
            index = GalleryIndex(self.index.dim, self.index.config)
            subjects: dict[int, str] = {}
            chunks = self._chunks(session, None)
            first = next(chunks, None)
            index.rebuild(*(first[:2] if first else (np.zeros(0, np.int64), np.zeros((0, index.dim), np.float32))))
            if first:
                subjects.update(first[2])
            for ids, vectors, chunk_subjects in chunks:
                index.add(ids, vectors)
                subjects.update(chunk_subjects)
            others = select(func.count()).where(GaitSequence.model_key != self.model_key)
            self.other_versions = int(session.scalar(others) or 0)
            self.index, self._subjects = index, subjects
            self.revision, self._applied, self._missing_since, self._latest_seen = watermark, loaded, {}, 0
            self._apply_changes(session)
        log.info(
            "gallery %s: %d sequences, matching transform %s", self.model_key, len(subjects), self.transform.digest
        )
        if self.other_versions:
            log.warning(
                "%d enrolled sequences belong to other model versions and are not searched with %s; "
                "re-enroll those subjects",
                self.other_versions,
                self.model_key,
            )

    def status(self) -> str:
        """One line for /readyz: the size, and what is enrolled under other model versions."""
        line = f"ok ({len(self)} sequences"
        if self.other_versions:
            line += f"; {self.other_versions} enrolled under other model versions are not searched: re-enroll"
        return line + ")"

    def _chunks(
        self, session: Session, only: Iterable[int] | None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, dict[int, str]]]:
        """The model's sequences (or only some of them) as (ids, gallery vectors, subject of each id) chunks."""
        query = select(GaitSequence.id, GaitSequence.subject_id, GaitSequence.embedding).where(
            GaitSequence.model_key == self.model_key
        )
        if only is not None:
            query = query.where(GaitSequence.id.in_(list(only)))
        for rows in session.execute(query.order_by(GaitSequence.id)).yield_per(_LOAD_CHUNK).partitions():
            ids = np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows))
            vectors = self.transform.vectors(np.stack([embedding_from_bytes(r.embedding, self.shape) for r in rows]))
            yield ids, vectors, {r.id: r.subject_id for r in rows}

    def sync(self) -> None:
        """Apply the database's gallery changes this process has not applied yet (see the module docstring)."""
        with self._lock, self.sessions() as session:
            if database_revision(session) == self._latest_seen and not self._missing_since:
                return  # nothing new, and no revision that could still commit below the newest
            self._apply_changes(session)

    def _apply_changes(self, session: Session) -> None:
        """Apply the changes above the watermark not applied yet, then move the watermark up."""
        rows = session.execute(
            select(GalleryChange.revision, GalleryChange.model_key, GalleryChange.sequence_id, GalleryChange.op)
            .where(GalleryChange.revision > self.revision)
            .order_by(GalleryChange.revision)
        ).all()
        new = [r for r in rows if r.model_key == self.model_key and r.revision not in self._applied]
        removed = {c.sequence_id for c in new if c.op == "remove"}
        added = {c.sequence_id for c in new if c.op == "add"} - removed
        if removed:
            self.index.remove(np.fromiter(removed, dtype=np.int64))
            for sequence_id in removed:
                self._subjects.pop(sequence_id, None)
        for ids, vectors, subjects in self._chunks(session, added) if added else ():
            self.index.add(ids, vectors)
            self._subjects.update(subjects)
        self._applied.update(r.revision for r in new)
        present = {r.revision for r in rows}
        self._latest_seen = max(present, default=self._latest_seen)
        self._advance_watermark(present)

    def _advance_watermark(self, present: set[int]) -> None:
        """Up over every revision seen, and over holes that have stayed empty for ``SETTLE_S``."""
        now = time.monotonic()
        for revision in range(self.revision + 1, self._latest_seen + 1):
            if revision not in present:
                first_missed = self._missing_since.setdefault(revision, now)
                if now - first_missed < SETTLE_S:
                    break  # may still commit: look again from here next time
            self.revision = revision
        self._applied = {r for r in self._applied if r > self.revision}
        self._missing_since = {r: t for r, t in self._missing_since.items() if r > self.revision}

    def __len__(self) -> int:
        return len(self.index)

    def indexed_ids(self) -> np.ndarray:
        return self.index.ids()

    def search(self, embedding: np.ndarray, k: int, windows: np.ndarray | None = None) -> list[Candidate]:
        """The ``k`` best subjects for one probe embedding: per subject, its best sequence's score.

        ``windows`` (raw ``[w, D, P]``, see :class:`models.matching.RankingWindows`) re-order the whole
        walk's shortlist by each subject's best window score; the scores stay the whole walk's.
        """
        self.sync()
        if len(self.index) == 0:
            return []
        fetch = min(len(self.index), max(k * _SEQUENCES_PER_SUBJECT, k))
        probes = embedding[None] if windows is None else np.concatenate([embedding[None], windows])
        scores, ids = self.index.search(self.transform.vectors(probes), fetch)
        with self._lock:
            best = [self._best_per_subject(row, row_ids) for row, row_ids in zip(scores, ids, strict=True)]
        whole = {subject_id: score for subject_id, (score, _) in best[0].items()}
        window_scores: dict[str, float] = {}
        for row in best[1:]:
            for subject_id, (score, _) in row.items():
                window_scores[subject_id] = max(score, window_scores.get(subject_id, -np.inf))
        ranked = rank_subjects(whole, window_scores)[:k]
        candidates = []
        for subject_id in ranked:
            similarity, sequence_id = best[0][subject_id]
            window = window_scores.get(subject_id)
            candidates.append(Candidate.scored(subject_id, similarity, self.calibration, sequence_id, window))
        return candidates

    def _best_per_subject(self, scores: np.ndarray, ids: np.ndarray) -> dict[str, tuple[float, int]]:
        """One search result row → subject → (its best sequence's score, that sequence); the lock is held."""
        best: dict[str, tuple[float, int]] = {}
        for score, sequence_id in zip(scores.tolist(), ids.tolist(), strict=True):
            subject_id = self._subjects.get(sequence_id)
            if sequence_id < 0 or subject_id is None or subject_id in best:
                continue
            best[subject_id] = (float(score), int(sequence_id))
        return best
