"""The gallery index: known answers on small structured galleries (real 4096-dim vectors)."""

import multiprocessing
import threading

import numpy as np
import pytest

from models.matching import MatchingTransform
from service.cli import main
from service.gallery.grown import GrownGallery
from service.gallery.index import PQ_MIN_TRAIN, GalleryIndex, IndexConfig
from service.gallery.synthetic import SyntheticGallery
from service.gallery.vectors import DIM

# PQ from 256 entries on: small enough that the approximate kind trains in well under a second.
SMALL = IndexConfig(exact_max=PQ_MIN_TRAIN, tombstones=8)


@pytest.fixture(scope="module")
def synthetic() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """600 entries (ids 0..599), their subjects, 40 queries of enrolled subjects and their subjects."""
    gallery = SyntheticGallery(600, seed=3)
    ids, embeddings = next(gallery.chunks(600))
    query_subjects, queries = gallery.queries(40, seed=5)
    vectors = MatchingTransform().vectors
    return ids, vectors(embeddings), gallery.subject_of, vectors(queries), query_subjects


def test_synthetic_scores_spread_as_documented(synthetic) -> None:
    _, vectors, subject_of, _, _ = synthetic
    scores = vectors @ vectors.T
    same = subject_of[:, None] == subject_of[None, :]
    genuine = scores[same & ~np.eye(len(vectors), dtype=bool)]
    impostor = scores[~same]
    genuine_low, genuine_high = np.percentile(genuine, [5, 95])
    impostor_low, impostor_high = np.percentile(impostor, [5, 95])
    assert genuine_low > 0.55 and genuine_high < 0.95
    assert impostor_low > -0.05 and impostor_high < 0.5


@pytest.mark.parametrize("kind", ["flat", "pq"])
def test_near_duplicate_ranks_first(synthetic, kind: str) -> None:
    ids, vectors, _, _, _ = synthetic
    index = GalleryIndex(config=IndexConfig(kind=kind))
    index.rebuild(ids + 1000, vectors)
    assert index.kind == kind and len(index) == len(ids)
    probes = vectors[[7, 300, 599]] + np.random.default_rng(1).normal(0, 0.002, (3, DIM)).astype(np.float32)
    scores, found = index.search(probes, 5)
    assert found[:, 0].tolist() == [1007, 1300, 1599]
    assert (np.diff(scores, axis=1) <= 0).all() and (scores[:, 0] > 0.99).all()


@pytest.mark.parametrize("kind", ["flat", "pq"])
def test_add_remove_replace(synthetic, kind: str) -> None:
    ids, vectors, _, _, _ = synthetic
    index = GalleryIndex(config=IndexConfig(kind=kind, tombstones=8))
    index.rebuild(ids, vectors)
    assert index.remove([5, 6, 123456]) == 2
    assert index.remove(np.array([5])) == 0
    assert (ids >= 0).all()  # the caller's id array is not where tombstones go
    _, found = index.search(vectors[[5, 6]], len(ids))
    assert not np.isin(found, [5, 6]).any() and (found >= 0).sum() == 2 * (len(ids) - 2)

    index.add(np.array([7]), vectors[[100]])  # id 7 now holds entry 100's vector
    _, found = index.search(vectors[[7]], 3)
    assert 7 not in found[0, :1]
    scores, found = index.search(vectors[[100]], 2)
    assert set(found[0]) == {7, 100} and scores[0, 1] > 0.99

    index.remove(np.arange(10, 30))  # past `tombstones`: the storage is compacted
    index.add(np.array([5]), vectors[[5]])
    expected = np.setdiff1d(ids, np.r_[6, 10:30])
    np.testing.assert_array_equal(index.ids(), expected)
    assert len(index) == len(expected)
    _, found = index.search(vectors[expected[::50]], 1)
    np.testing.assert_array_equal(found[:, 0], expected[::50])


def test_a_scan_split_over_threads_answers_as_one_scan(synthetic) -> None:
    """The PQ scan in parts (one thread each) gives one scan's answers through adds, removals and compaction."""
    ids, vectors, _, queries, _ = synthetic
    indexes = [GalleryIndex(config=IndexConfig(kind="pq", tombstones=8, scan_threads=threads)) for threads in (1, 3)]
    for index in indexes:
        index.rebuild(ids[:400], vectors[:400])  # parts of 134, 133 and 133 codes
        index.add(ids[400:450], vectors[400:450])  # spread to even the parts out
        index.add(ids[450:], vectors[450:])
        index.remove(np.r_[3, 200:215, 420, 599])  # past `tombstones`: every part compacted
        index.add(np.array([3]), vectors[[3]])
    (one_scores, one_found), (split_scores, split_found) = (index.search(queries, 20) for index in indexes)
    np.testing.assert_array_equal(split_found, one_found)
    np.testing.assert_array_equal(split_scores, one_scores)
    assert not np.isin(one_found, np.r_[200:215, 420, 599]).any()


def _search_in_child(index: GalleryIndex, queries: np.ndarray, answers: "multiprocessing.Queue") -> None:
    answers.put(index.search(queries, 5)[1])


def test_a_forked_child_searches_on_its_own_scan_threads(synthetic) -> None:
    """A prefork worker inherits the index without the parent's scan threads and still gets answers."""
    ids, vectors, _, queries, _ = synthetic
    index = GalleryIndex(config=IndexConfig(kind="pq", scan_threads=2))
    index.rebuild(ids, vectors)
    _, expected = index.search(queries, 5)  # the parent's pool exists before the fork
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    child = context.Process(target=_search_in_child, args=(index, queries, answers))
    child.start()
    try:
        found = answers.get(timeout=60)
    finally:
        child.join(60)
    assert child.exitcode == 0
    np.testing.assert_array_equal(found, expected)


def test_auto_switches_to_pq_and_keeps_exact_top1(synthetic) -> None:
    ids, vectors, subject_of, queries, query_subjects = synthetic
    index = GalleryIndex(config=SMALL)
    index.add(ids[:200], vectors[:200])
    assert index.kind == "flat"
    index.add(ids[200:], vectors[200:])
    assert index.kind == "pq" and len(index) == len(ids)
    index.add(ids[:10], vectors[:10])  # re-adding after the switch replaces
    assert len(index) == len(ids)
    scores, found = index.search(queries, 10)
    exact = (queries @ vectors.T).argmax(axis=1)
    assert np.mean(found[:, 0] == ids[exact]) >= 0.95
    assert (subject_of[found[:, 0]] == query_subjects).all()
    np.testing.assert_allclose(scores[:, 0], np.max(queries @ vectors.T, axis=1), atol=2e-3)


def test_pq_kind_stays_exact_until_it_can_train(synthetic) -> None:
    ids, vectors, _, _, _ = synthetic
    index = GalleryIndex(config=IndexConfig(kind="pq"))
    index.add(ids[:100], vectors[:100])
    assert index.kind == "flat"
    index.add(ids[100:], vectors[100:])
    assert index.kind == "pq"


def test_empty_and_short_results_are_padded(synthetic) -> None:
    ids, vectors, _, _, _ = synthetic
    index = GalleryIndex()
    scores, found = index.search(vectors[:2], 3)
    assert (found == -1).all() and np.isneginf(scores).all() and found.dtype == np.int64
    assert index.ids().size == 0 and index.kind == "flat"
    index.add(ids[:2], vectors[:2])
    scores, found = index.search(vectors[0], 4)
    assert found[0].tolist()[2:] == [-1, -1] and sorted(found[0, :2]) == [0, 1] and np.isneginf(scores[0, 2:]).all()


def test_bad_input_is_refused(synthetic) -> None:
    ids, vectors, _, _, _ = synthetic
    index = GalleryIndex()
    with pytest.raises(ValueError, match="vectors must be"):
        index.add(ids[:3], vectors[:2])
    with pytest.raises(ValueError, match="non-negative"):
        index.add(np.array([-1]), vectors[:1])
    with pytest.raises(ValueError, match="queries must be"):
        index.search(np.zeros((1, 8), dtype=np.float32), 1)
    with pytest.raises(ValueError, match="kind"):
        IndexConfig(kind="hnsw")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scan_threads"):
        IndexConfig(scan_threads=0)


def test_concurrent_add_remove_and_search(synthetic) -> None:
    ids, vectors, _, _, _ = synthetic
    index = GalleryIndex(config=SMALL)
    index.rebuild(ids[:100], vectors[:100])
    errors: list[BaseException] = []
    removed = ids[:50:2]

    def writer() -> None:
        try:
            for start in range(100, len(ids), 50):
                index.add(ids[start : start + 50], vectors[start : start + 50])
            index.remove(removed)
        except BaseException as error:
            errors.append(error)

    def reader() -> None:
        try:
            for row in range(200):
                scores, found = index.search(vectors[row % 100], 5)
                assert (np.diff(scores[0][found[0] >= 0]) <= 0).all()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    np.testing.assert_array_equal(index.ids(), np.setdiff1d(ids, removed))
    _, found = index.search(vectors[removed], 5)
    assert not np.isin(found, removed).any()


def test_bench_gallery_prints_a_table(capsys) -> None:
    assert main(["bench", "gallery", "--sizes", "300", "--kinds", "flat,pq", "--queries", "5"]) == 0
    table = capsys.readouterr().out.splitlines()[-2:]
    assert [line.split()[:3] for line in table] == [["300", "flat", "flat"], ["300", "pq", "pq"]]
    assert all(line.split()[-1] == "1.000" for line in table)
    # 128-byte codes (256 of them) instead of the default 512 for 4,096 dims; 300 does not divide 4,096
    coarser = ["--kinds", "pq", "--queries", "5", "--pq-subquantizers", "256"]
    assert main(["bench", "gallery", "--sizes", "300", *coarser]) == 0
    assert "PQ 256 codes" in capsys.readouterr().out
    assert main(["bench", "gallery", "--sizes", "300", "--pq-subquantizers", "300"]) == 2
    assert "[bad_option]: --pq-subquantizers must divide the vectors' length 4096" in capsys.readouterr().err


def test_the_code_count_follows_the_vector_length_unless_set() -> None:
    assert [IndexConfig().subquantizers(dim) for dim in (4096, 1024, 512)] == [512, 256, 256]
    assert IndexConfig(pq_subquantizers=128).subquantizers(4096) == 128
    with pytest.raises(ValueError, match="pq_subquantizers must be at least 1"):
        IndexConfig(pq_subquantizers=0)


def test_grown_galleries_keep_the_real_structure() -> None:
    """Grown from 'real' embeddings with a dominant common component: the component survives
    (raw scores near 1 for everyone), the model's centring removes it, and identities stay apart."""
    rng = np.random.default_rng(7)
    common = 8 * rng.standard_normal((256, 16)).astype(np.float32)
    basis = rng.standard_normal((30, 256, 16)).astype(np.float32)  # identities vary in 30 directions
    people = np.tensordot(rng.standard_normal((12, 30)).astype(np.float32) / np.sqrt(30), basis, axes=1)
    real = np.concatenate([common + people + 0.4 * rng.standard_normal((12, 256, 16)) for _ in range(4)])
    labels = np.tile(np.arange(12), 4)
    gallery = GrownGallery(real, labels, size=400, seed=1)
    ids, embeddings = next(gallery.chunks(400))
    assert len(ids) == 400 and embeddings.shape == (400, 256, 16) and gallery.subjects > 12
    same = gallery.subject_of[:, None] == gallery.subject_of[None, :]
    off_diagonal = ~np.eye(400, dtype=bool)
    raw = MatchingTransform().vectors(embeddings)
    assert (raw @ raw.T)[~same].min() > 0.9  # the squeeze real embeddings have
    centred = MatchingTransform(real.mean(axis=0)).vectors(embeddings)
    scores = centred @ centred.T
    assert np.median(scores[same & off_diagonal]) > np.percentile(scores[~same], 99)
    subjects, queries = gallery.queries(20, seed=2)
    found = (MatchingTransform(real.mean(axis=0)).vectors(queries) @ centred.T).argmax(axis=1)
    assert np.mean(gallery.subject_of[found] == subjects) >= 0.9
