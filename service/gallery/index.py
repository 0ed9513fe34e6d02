"""The in-memory gallery index: int64 ids → vectors, inner-product search, derived from the database.

Two kinds of storage, chosen by size (``IndexConfig.kind = "auto"``):

- ``flat``: exact search over float32 vectors (4 bytes a dimension: 16 KB for a 4,096-long vector,
  4 KB for default@5's 1,024, whose transform keeps only the directions its network embeds in).
  One query scans everything on one thread, so it is fast only for small galleries (``exact_max``).
- ``pq``: every vector scanned as a product-quantizer code with FAISS's fast-scan kernels (4-bit
  codes, ``IndexConfig.subquantizers`` of them), then the best ``rerank`` candidates re-scored
  with 12-bit scalar-quantized codes. Embeddings are high-dimensional with little structure
  beyond the subject, which defeats graph and cell pruning (HNSW32 and IVF1024 over SQ8 reached
  recall@1 0.70 and 0.86 on the synthetic gallery at 100k), while a compressed scan of all entries
  ranks the exact top-1 among its first few hundred candidates. Real embeddings need a fine code:
  on galleries grown from default@3's CASIA-B embeddings (``gaitid bench gallery --real``, 4,096
  dims) 128-byte codes (one per 16 dims) held the exact top-1 among their first 100 candidates for
  96.5% of queries at 100k and 82.5% at 1M; 256-byte codes for 100% and 97%, and 300 candidates
  re-scored give recall@1 0.995 at 1M. Reordering the dims or a per-part PCA rotation before the
  code only lowered it. default@5's 1,024-long vectors hold the same information in a quarter of
  the dims: 128-byte codes (one per 4 dims) give recall@1 0.999 at 1M in 1.8 GB (6.4 GB for
  4,096 dims). FAISS scans for one query on one thread, so the codes are split into
  ``scan_threads`` parts scanned at once and their candidates merged: at 1M, p50 11.3 ms on one
  thread, 6.3 ms on two (same answers, same recall; default@3, a quiet day).

Deletes and replacements must hold at once, but compacting FAISS storage moves every code after
the gap (0.2 s at 100k entries, ~2 s at 1M, holding the lock), so a removed entry becomes a
tombstone (its slot's id is set to -1), searches fetch that many extra candidates and drop them,
and the storage is compacted once ``tombstones`` pile up.
"""

import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol

import faiss
import numpy as np

from service.gallery.vectors import DIM

IndexKind = Literal["auto", "flat", "pq"]
INDEX_KINDS: tuple[IndexKind, ...] = ("auto", "flat", "pq")
PQ_MIN_TRAIN = 256  # 16 vectors per 4-bit centroid: below this a "pq" index stays exact


@dataclass(frozen=True)
class IndexConfig:
    """How the gallery is stored and searched. At 1M entries grown from real embeddings the
    defaults gave recall@1 0.995 at p50 6.3 ms, p99 14.6 ms on a two-core host with a niced
    training beside (``gaitid bench gallery --real``; 11.3 / 27.3 ms with the scan on one thread);
    the 128-byte code with 100 re-scored gave 7.6 ms on one thread but recall@1 0.825. Those are
    default@3's embeddings; default@4's give recall@1 0.996 over 1,000 queries (p50 12-17 ms on a
    busier day of the same host, where default@3's measured 14.2 ms); default@5's 1,024-long
    vectors 0.999 at p50 10.5 ms that day (its scan is 128 bytes a vector)."""

    kind: IndexKind = "auto"
    exact_max: int = 4096  # "auto" is flat up to here: flat p50 ~3 ms at 4k, ~8 ms at 10k; PQ ~0.3 ms
    pq_subquantizers: int | None = None  # 4-bit codes a vector; None: see subquantizers
    rerank: int = 300  # PQ candidates re-scored with the 12-bit codes per query (at least k)
    train_max: int = 16_384  # PQ and SQ codes are trained on a random sample of at most this many vectors
    tombstones: int = 1024  # compact the storage once this many removed slots wait
    threads: int = 1  # FAISS OpenMP threads per call; see _omp_threads
    scan_threads: int = 2  # the PQ scan is split into this many parts, each on its own thread; see _PQ

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"index kind must be one of {', '.join(INDEX_KINDS)}, got {self.kind!r}")
        if self.scan_threads < 1:
            raise ValueError(f"scan_threads must be at least 1, got {self.scan_threads}")
        if self.exact_max < PQ_MIN_TRAIN:
            raise ValueError(f"exact_max must be at least {PQ_MIN_TRAIN} (enough vectors to train PQ)")
        if self.pq_subquantizers is not None and self.pq_subquantizers < 1:
            raise ValueError(f"pq_subquantizers must be at least 1, got {self.pq_subquantizers}")

    def subquantizers(self, dim: int) -> int:
        """The 4-bit codes of a ``dim``-long vector: ``pq_subquantizers``, else one per 8 dims and at
        least 256 (128 bytes). Measured on galleries grown from real embeddings at 1M entries: 512
        for default@3's 4,096 dims (recall@1 0.995; 256 with 100 re-scored, 0.825); 256 for
        default@5's 1,024 (its transform's basis): recall@1 0.999 at p50 10.5 ms, where 512 gave
        0.999 at 21.9 ms."""
        return self.pq_subquantizers or max(256, dim // 8)


@contextmanager
def _omp_threads(threads: int) -> Iterator[None]:
    """Run FAISS with ``threads`` OpenMP threads, then restore the caller's setting.

    OpenMP's thread count is per calling thread, so a process-wide ``faiss.omp_set_num_threads`` at
    start-up does not reach request threads; hence this around every call. One thread is the default
    because a single query gains nothing from more on PQ, and when other work (embedding, training)
    holds the cores OpenMP's barriers stall: with 2 threads on a busy 2-core host, flat search at
    10k entries took 32 ms instead of 9 ms and PQ training 67 s instead of 1.7 s.
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


class _Store(Protocol):
    """Vectors at positions 0..ntotal-1; removing positions shifts the later ones down."""

    kind: str

    def add(self, vectors: np.ndarray) -> None: ...
    def candidates(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]: ...
    def rescore(self, query: np.ndarray, positions: np.ndarray, scores: np.ndarray) -> np.ndarray: ...
    def remove(self, positions: np.ndarray) -> None: ...
    def wanted(self, k: int) -> int: ...


class _Flat:
    """Exact inner product: the candidates' scores are final."""

    kind = "flat"

    def __init__(self, dim: int) -> None:
        self.index = faiss.IndexFlatIP(dim)

    def add(self, vectors: np.ndarray) -> None:
        self.index.add(vectors)

    def candidates(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, n)

    def rescore(self, query: np.ndarray, positions: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return scores

    def remove(self, positions: np.ndarray) -> None:
        self.index.remove_ids(faiss.IDSelectorBatch(positions))

    def wanted(self, k: int) -> int:
        return k

    def vectors(self) -> np.ndarray:
        return self.index.reconstruct_n(0, self.index.ntotal)


class _PQ:
    """PQ fast-scan candidates, re-scored from 8-bit scalar-quantized codes plus a 4-bit code of
    what those miss (12 bits a dimension, inner-product error ~3e-5).

    SQ8 alone (error ~2e-4) flips about one query in 150 whose two best entries, often sequences
    of one subject, differ by less than that; fp16 would fix it at 8 KB an entry. Ranges get a 10%
    margin each side because the codes are trained once and the gallery keeps growing.
    """

    kind = "pq"

    def __init__(self, dim: int, config: IndexConfig, training: np.ndarray) -> None:
        trained = faiss.IndexPQFastScan(dim, config.subquantizers(dim), 4, faiss.METRIC_INNER_PRODUCT)
        trained.train(training)
        self.coarse = [trained, *(faiss.clone_index(trained) for _ in range(config.scan_threads - 1))]
        self.shard_of = np.empty(0, dtype=np.int8)  # which coarse part holds each position
        self._members: list[np.ndarray] | None = None  # per part, its positions in order (derived)
        self._pool: tuple[int, ThreadPoolExecutor] | None = None  # (process id, pool): see _scan_pool
        self.fine = _scalar_quantizer(dim, faiss.ScalarQuantizer.QT_8bit)
        self.residual = _scalar_quantizer(dim, faiss.ScalarQuantizer.QT_4bit)
        self.rerank = config.rerank
        self.fine.train(training)
        self.residual.train(self._fine_error(training))

    def _fine_error(self, vectors: np.ndarray) -> np.ndarray:
        return vectors - self.fine.sa_decode(self.fine.sa_encode(vectors))

    def add(self, vectors: np.ndarray) -> None:
        """Append at the next positions, filling the parts towards equal sizes with consecutive slices
        (so each part's codes stay in position order)."""
        sizes = [index.ntotal for index in self.coarse]
        target = -(-(sum(sizes) + len(vectors)) // len(sizes))
        start, owner = 0, []
        for part, (index, size) in enumerate(zip(self.coarse, sizes, strict=True)):
            take = min(max(target - size, 0), len(vectors) - start)
            if take:
                index.add(vectors[start : start + take])
                owner.append(np.full(take, part, dtype=np.int8))
                start += take
        self.shard_of = np.concatenate([self.shard_of, *owner])
        self._members = None
        self.fine.add(vectors)
        self.residual.add(self._fine_error(vectors))

    def _positions(self) -> list[np.ndarray]:
        """Per part, the positions of its codes in order: a part's local id ``i`` is position ``[part][i]``."""
        if self._members is None:
            self._members = [np.flatnonzero(self.shard_of == part) for part in range(len(self.coarse))]
        return self._members

    def _scan_pool(self) -> ThreadPoolExecutor:
        """The scan threads of this process: a pool inherited through ``fork`` (a prefork worker) has
        no threads, and would never run what it is given, so a child makes its own."""
        if self._pool is None or self._pool[0] != os.getpid():
            self._pool = (os.getpid(), ThreadPoolExecutor(len(self.coarse), "gallery-scan"))
        return self._pool[1]

    def candidates(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The best ``n`` positions by the 4-bit codes, every part scanned at once on its own thread.

        One query's fast-scan runs on one thread whatever OpenMP allows (FAISS parallelises over
        queries), and scanning 1M codes is most of a search; parts on plain threads share no OpenMP
        barrier, so a core taken by other work delays its part instead of stalling the others.
        """
        members = self._positions()
        threads = faiss.omp_get_max_threads()

        def scan(part: int) -> tuple[np.ndarray, np.ndarray]:
            index = self.coarse[part]
            with _omp_threads(threads):
                scores, local = index.search(queries, min(n, index.ntotal)) if index.ntotal else _nothing(queries)
            return scores, np.where(local >= 0, members[part][np.maximum(local, 0)], -1)

        parts = range(len(self.coarse))
        found = list(self._scan_pool().map(scan, parts)) if len(self.coarse) > 1 else [scan(part) for part in parts]
        scores = np.concatenate([s for s, _ in found], axis=1)
        positions = np.concatenate([p for _, p in found], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, :n]
        return np.take_along_axis(scores, best, axis=1), np.take_along_axis(positions, best, axis=1)

    def rescore(self, query: np.ndarray, positions: np.ndarray, scores: np.ndarray) -> np.ndarray:
        # Each code scored in place by FAISS's distance computers (the inner product is linear, so the
        # two codes' scores add up): decoding 300 candidates to float32 first cost 1.3 ms more a query
        # at 1M entries, and ~10 MB of allocation.
        query = np.ascontiguousarray(query, dtype=np.float32)
        fine, residual = self.fine.get_distance_computer(), self.residual.get_distance_computer()
        fine.set_query(faiss.swig_ptr(query))
        residual.set_query(faiss.swig_ptr(query))
        return np.fromiter(
            (fine(position) + residual(position) for position in positions.tolist()),
            dtype=np.float32,
            count=len(positions),
        )

    def remove(self, positions: np.ndarray) -> None:
        members = self._positions()
        gone = np.zeros(len(self.shard_of), dtype=bool)
        gone[positions] = True
        for part, index in enumerate(self.coarse):
            index.remove_ids(faiss.IDSelectorBatch(np.flatnonzero(gone[members[part]])))
        selector = faiss.IDSelectorBatch(positions)
        for index in (self.fine, self.residual):
            index.remove_ids(selector)
        self.shard_of = self.shard_of[~gone]
        self._members = None

    def wanted(self, k: int) -> int:
        return max(k, self.rerank)


def _nothing(queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An empty part's answer: no candidates for any query."""
    return np.empty((len(queries), 0), dtype=np.float32), np.empty((len(queries), 0), dtype=np.int64)


def _scalar_quantizer(dim: int, qtype: int) -> faiss.IndexScalarQuantizer:
    index = faiss.IndexScalarQuantizer(dim, qtype, faiss.METRIC_INNER_PRODUCT)
    index.sq.rangestat_arg = 0.1  # RS_minmax widened by 10% of the range on each side
    return index


def _last_of_each(ids: np.ndarray) -> np.ndarray:
    """Indices that keep the last occurrence of each id, in order (a batch's later row wins)."""
    _, first_from_end = np.unique(ids[::-1], return_index=True)
    return np.sort(len(ids) - 1 - first_from_end)


class GalleryIndex:
    """Thread-safe (one lock) in-memory index of int64 ids → vectors, searched by inner product.

    Only ``rebuild`` re-chooses the kind and retrains the codes; ``add`` switches an "auto" index from
    flat to PQ once it holds more than ``exact_max`` entries, training on what it holds then.
    """

    def __init__(self, dim: int = DIM, config: IndexConfig = IndexConfig()) -> None:
        if config.kind != "flat" and dim % config.subquantizers(dim):
            raise ValueError(f"dim {dim} is not a multiple of pq_subquantizers {config.subquantizers(dim)}")
        self.dim = dim
        self.config = config
        self._lock = threading.Lock()
        self._store: _Store = _Flat(dim)
        self._ids = np.empty(0, dtype=np.int64)  # id per storage slot, -1 for a tombstone
        self._slot: dict[int, int] = {}
        self._dead = 0

    def _check(self, ids: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array(ids, dtype=np.int64).reshape(-1)  # a copy: tombstones are written into it
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (len(ids), self.dim):
            raise ValueError(f"vectors must be [{len(ids)}, {self.dim}] for {len(ids)} ids, got {list(vectors.shape)}")
        if (ids < 0).any():
            raise ValueError("ids must be non-negative")
        keep = _last_of_each(ids)
        return (ids, vectors) if len(keep) == len(ids) else (ids[keep], vectors[keep])

    def _kind_for(self, count: int) -> str:
        kind = self.config.kind
        if kind == "flat" or count <= (self.config.exact_max if kind == "auto" else PQ_MIN_TRAIN - 1):
            return "flat"
        return "pq"

    def _build(self, ids: np.ndarray, vectors: np.ndarray) -> _Store:
        """A new store holding ``vectors`` at positions 0..n-1, of the kind their number calls for."""
        if self._kind_for(len(ids)) == "flat":
            store: _Store = _Flat(self.dim)
        else:
            rng = np.random.default_rng(0)
            sample = np.sort(rng.choice(len(ids), min(len(ids), self.config.train_max), replace=False))
            store = _PQ(self.dim, self.config, vectors[sample])
        store.add(vectors)
        return store

    def _install(self, store: _Store, ids: np.ndarray) -> None:
        self._store, self._ids, self._dead = store, ids, 0
        self._slot = dict(zip(ids.tolist(), range(len(ids)), strict=True))

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace all contents (start-up, resync from the database).

        The new storage is built outside the lock, so searches keep answering from the old contents
        meanwhile; an ``add`` made during a rebuild is lost when it lands. A gallery too large to pass
        as one float32 array can be rebuilt from a first chunk (it trains PQ) and ``add``-ed in chunks.
        """
        ids, vectors = self._check(ids, vectors)
        with _omp_threads(self.config.threads):
            store = self._build(ids, vectors)
        with self._lock:
            self._install(store, ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add entries; an id already present is replaced (its old vector is never returned again)."""
        ids, vectors = self._check(ids, vectors)
        with self._lock, _omp_threads(self.config.threads):
            self._tombstone(ids)
            store = self._store
            if isinstance(store, _Flat) and self._kind_for(len(self._slot) + len(ids)) != "flat":
                alive = self._ids >= 0
                all_ids = np.concatenate([self._ids[alive], ids])
                self._install(self._build(all_ids, np.concatenate([store.vectors()[alive], vectors])), all_ids)
                return
            store.add(vectors)
            first = len(self._ids)
            self._ids = np.concatenate([self._ids, ids])
            self._slot.update(zip(ids.tolist(), range(first, first + len(ids)), strict=True))
            self._compact_if_due()

    def remove(self, ids: np.ndarray | Sequence[int]) -> int:
        """Remove entries now; returns how many of ``ids`` were present."""
        with self._lock, _omp_threads(self.config.threads):
            removed = self._tombstone(np.asarray(ids, dtype=np.int64).reshape(-1))
            self._compact_if_due()
            return removed

    def _tombstone(self, ids: np.ndarray) -> int:
        slots = [slot for slot in (self._slot.pop(i, None) for i in ids.tolist()) if slot is not None]
        self._ids[slots] = -1
        self._dead += len(slots)
        return len(slots)

    def _compact_if_due(self) -> None:
        if self._dead <= self.config.tombstones:
            return
        dead = np.flatnonzero(self._ids < 0)
        self._store.remove(dead)
        self._install(self._store, self._ids[self._ids >= 0])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` per query: scores float32 ``[q, k]`` descending, ids int64 ``[q, k]``; missing
        results (fewer than ``k`` entries) are -inf / -1."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None]
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [q, {self.dim}], got {list(queries.shape)}")
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        found = np.full((len(queries), k), -1, dtype=np.int64)
        with self._lock, _omp_threads(self.config.threads):
            if not self._slot or k <= 0:
                return scores, found
            store, slot_ids = self._store, self._ids
            wanted = store.wanted(k)
            raw_scores, raw_positions = store.candidates(queries, min(len(slot_ids), wanted + self._dead))
            for row, query in enumerate(queries):
                positions = raw_positions[row]
                live = positions >= 0
                live[live] = slot_ids[positions[live]] >= 0
                positions = positions[live][:wanted]
                rescored = store.rescore(query, positions, raw_scores[row][live][:wanted])
                best = np.argsort(-rescored, kind="stable")[:k]
                scores[row, : len(best)] = rescored[best]
                found[row, : len(best)] = slot_ids[positions[best]]
        return scores, found

    def __len__(self) -> int:
        with self._lock:
            return len(self._slot)

    @property
    def kind(self) -> str:
        """The kind in use: "flat" or "pq"."""
        return self._store.kind

    def ids(self) -> np.ndarray:
        """All ids present, sorted, so the service can check the index against the database."""
        with self._lock:
            return np.sort(self._ids[self._ids >= 0])
