"""The matching transform, calibration and decision: known answers on constructed data."""

import numpy as np
import pytest

from models.errors import ModelError
from models.matching import (
    NO_RANKING_WINDOWS,
    WHOLE_SEQUENCE,
    Calibration,
    Candidate,
    MatchingTransform,
    RankingWindows,
    centring_transform,
    decide,
    embed_probe_walks,
    embed_walks,
    fit_calibration,
    rank_subjects,
    reliability,
)


def _mean_part_cosine(a: np.ndarray, b: np.ndarray) -> float:
    cos = [a[:, p] @ b[:, p] / (np.linalg.norm(a[:, p]) * np.linalg.norm(b[:, p])) for p in range(a.shape[1])]
    return float(np.mean(cos))


def test_vectors_inner_product_is_mean_part_cosine_after_the_transform() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.standard_normal((4, 256, 16)) * rng.uniform(0.1, 10, size=(4, 1, 16)) + 0.3
    identity = MatchingTransform().vectors(embeddings)
    assert identity.shape == (4, 4096) and identity.dtype == np.float32 and identity.flags.c_contiguous
    expected = [[_mean_part_cosine(a, b) for b in embeddings] for a in embeddings]
    np.testing.assert_allclose(identity @ identity.T, expected, atol=1e-5)
    np.testing.assert_allclose(MatchingTransform().vectors(embeddings[0]), identity[:1])
    mean = rng.standard_normal((256, 16)).astype(np.float32)
    centred = MatchingTransform(mean)
    expected = [[_mean_part_cosine(a - mean, b - mean) for b in embeddings] for a in embeddings]
    np.testing.assert_allclose(centred.similarity(embeddings, embeddings), expected, atol=1e-5)


def test_a_zero_part_adds_nothing_and_a_wrong_shape_is_refused() -> None:
    embedding = np.ones((256, 16), dtype=np.float32)
    embedding[:, 3] = 0
    vector = MatchingTransform().vectors(embedding)
    assert np.isfinite(vector).all()
    assert vector @ vector.T == pytest.approx(15 / 16)
    with pytest.raises(ValueError, match=r"\[16, 256\] do not fit"):
        MatchingTransform(np.zeros((256, 16), np.float32)).vectors(np.ones((16, 256)))


def test_centring_spreads_scores_that_a_common_component_squeezes_together() -> None:
    """Embeddings = a large shared vector + a small identity part: raw cosines all sit near 1."""
    rng = np.random.default_rng(1)
    common = rng.standard_normal((256, 16)) * 10
    identities = rng.standard_normal((20, 256, 16))
    walks = np.concatenate([common + identities + 0.3 * rng.standard_normal((20, 256, 16)) for _ in range(2)])
    same = np.tile(np.arange(20), 2)
    genuine = (same[:, None] == same[None, :]) & ~np.eye(40, dtype=bool)
    raw = MatchingTransform().similarity(walks, walks)
    centred = centring_transform(walks).similarity(walks, walks)
    assert raw[~genuine & ~np.eye(40, dtype=bool)].min() > 0.95  # the squeeze
    assert centred[genuine].min() > 0.8 and np.abs(centred[~genuine & ~np.eye(40, dtype=bool)]).max() < 0.4


def test_transform_round_trips_through_its_file(tmp_path) -> None:
    transform = MatchingTransform(np.arange(32, dtype=np.float32).reshape(8, 4))
    transform.save(tmp_path / "t.npz")
    loaded = MatchingTransform.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(loaded.mean, transform.mean)
    assert loaded.digest == transform.digest != MatchingTransform().digest == "identity"


def _spanned(rng: np.random.Generator, count: int, directions: int) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings ``[count, 256, 16]`` whose every part is a linear map of ``directions`` features
    (as the network's last layer makes them), and that map's per-part orthonormal basis."""
    maps = rng.standard_normal((16, directions, 256))
    features = rng.standard_normal((count, 16, directions)) + 2.0
    embeddings = np.einsum("npc,pcd->ndp", features, maps)
    basis = np.stack([np.linalg.qr(part.T)[0] for part in maps]).astype(np.float32)
    return embeddings.astype(np.float32), basis


def test_a_basis_of_the_embeddings_span_keeps_every_score_in_shorter_vectors() -> None:
    rng = np.random.default_rng(4)
    embeddings, basis = _spanned(rng, 30, 8)
    mean = embeddings[:10].mean(axis=0)
    full, projected = MatchingTransform(mean), MatchingTransform(mean, basis)
    assert projected.vector_length((256, 16)) == 128 == projected.vectors(embeddings).shape[1]
    np.testing.assert_allclose(
        projected.similarity(embeddings, embeddings), full.similarity(embeddings, embeddings), atol=1e-5
    )
    assert projected.digest != full.digest
    with pytest.raises(ValueError, match=r"for \[256, 16\] embeddings"):
        projected.vector_length((128, 8))


def test_transform_with_a_basis_round_trips_and_a_bad_basis_is_refused(tmp_path) -> None:
    embeddings, basis = _spanned(np.random.default_rng(5), 4, 8)
    transform = MatchingTransform(embeddings.mean(axis=0), basis)
    transform.save(tmp_path / "t.npz")
    loaded = MatchingTransform.load(tmp_path / "t.npz")
    np.testing.assert_array_equal(loaded.basis, basis)
    assert loaded.digest == transform.digest
    np.savez(tmp_path / "bad.npz", mean=transform.mean, basis=basis[:, :100])
    with pytest.raises(ModelError, match="basis must be a finite") as refused:
        MatchingTransform.load(tmp_path / "bad.npz")
    assert refused.value.code == "bad_model_card"


def test_calibration_recovers_a_known_logistic_and_is_balanced() -> None:
    """Pairs drawn from a known logistic model (prior 1:9, as same/different pairs are unbalanced)."""
    rng = np.random.default_rng(2)
    truth = Calibration(slope=12.0, intercept=-6.0)
    similarity = rng.uniform(-0.2, 1.0, 200_000)
    same = rng.random(len(similarity)) < truth.confidence(similarity)
    fitted = fit_calibration(similarity, same)
    # equal class weights: the prior of the data does not move the fitted curve's slope
    assert fitted.slope == pytest.approx(truth.slope, rel=0.05)
    error, table = reliability(fitted.confidence(similarity), same)
    assert error < 0.02 and sum(row.pairs for row in table) == pytest.approx(1.0)
    assert fitted.similarity_at(0.5) == pytest.approx(-fitted.intercept / fitted.slope)
    with pytest.raises(Exception, match="both same-person and different-person"):
        fit_calibration(similarity, np.zeros(len(similarity), bool))


def test_a_miscalibrated_confidence_shows_a_large_error() -> None:
    rng = np.random.default_rng(3)
    same = rng.random(10_000) < 0.5
    error, _ = reliability(np.where(same, 0.6, 0.4), same)  # right order, far too timid
    assert error == pytest.approx(0.4, abs=0.01)


def test_decide_uses_the_confidence_when_there_is_one() -> None:
    calibrated = [Candidate("a", 0.31, 0.92), Candidate("b", 0.2, 0.5)]
    assert decide(calibrated, 0.9).decision == "match" and decide(calibrated, 0.9).subject_id == "a"
    assert decide(calibrated, 0.95).decision == "unknown" and decide(calibrated, 0.95).candidate == calibrated[0]
    assert decide([Candidate("a", 0.31, None)], 0.3).decision == "match"  # uncalibrated: the similarity
    assert decide([], 0.5).decision == "unknown" and decide([], 0.5).candidate is None


def test_ranking_windows_split_only_long_walks_and_refuse_bad_settings() -> None:
    ranking = RankingWindows(frames=60, stride=20, longer_than=90)
    walk = np.arange(130)[:, None, None] * np.ones((1, 4, 4))
    assert ranking.split(walk[:90]) == [] and NO_RANKING_WINDOWS.split(walk) == []
    starts = [int(w[0, 0, 0]) for w in ranking.split(walk)]
    assert starts == [0, 20, 40, 60, 70] and all(len(w) == 60 for w in ranking.split(walk))  # the end counts too
    for frames, stride, longer_than in [(60, 0, 90), (60, 70, 90), (60, 20, 50), (-1, 0, 0)]:
        with pytest.raises(ValueError):
            RankingWindows(frames, stride, longer_than)


def test_probe_walks_keep_each_walks_windows_apart() -> None:
    """One batched call: each walk's whole embedding and its own windows, in order (window-less walks get none)."""
    calls = []

    def embed(sequences):  # a stand-in network: the embedding of a piece is its first and last frame number
        calls.append(len(sequences))
        return np.stack([np.full((2, 1), [[s[0, 0, 0]], [s[-1, 0, 0]]], np.float32) for s in sequences])

    walks = [np.arange(n, dtype=np.float32)[:, None, None] + base for n, base in [(130, 0), (40, 1000), (100, 2000)]]
    probes = embed_probe_walks(embed, walks, WHOLE_SEQUENCE, RankingWindows(60, 20, 90))
    assert calls == [3 + 5 + 3]
    assert [p.whole[:, 0].tolist() for p in probes] == [[0, 129], [1000, 1039], [2000, 2099]]
    assert [p.windows[:, 0, 0].tolist() for p in probes] == [[0, 20, 40, 60, 70], [], [2000, 2020, 2040]]
    assert probes[1].windows.shape == (0, 2, 1) and probes[2].windows[-1, :, 0].tolist() == [2040, 2099]
    np.testing.assert_array_equal(embed_walks(embed, walks, WHOLE_SEQUENCE), np.stack([p.whole for p in probes]))


def test_subjects_rank_by_their_best_window_and_keep_the_whole_walks_order_without_windows() -> None:
    whole = {"ann": 0.8, "bob": 0.6, "cid": 0.7}
    assert rank_subjects(whole, {}) == ["ann", "cid", "bob"]
    assert rank_subjects(whole, {"bob": 0.5, "ann": 0.4}) == ["bob", "ann", "cid"]  # cid: no window reached it
    assert rank_subjects(whole, {"bob": 0.5, "ann": 0.5, "cid": 0.1}) == ["ann", "bob", "cid"]  # a tie: whole walk
