"""The evaluation code on tiny synthetic data whose answers are known."""

import numpy as np
import pytest

from models.evaluation.casia_b import SequenceLabel, casia_b_rank1
from models.evaluation.distances import distance_matrix
from models.evaluation.open_set import open_set_thresholds
from models.evaluation.retrieval import retrieval_scores

PARTS = 16


def _embedding(direction: np.ndarray) -> np.ndarray:
    """An embedding [D, P] whose every part points along ``direction``."""
    return np.repeat(direction[:, None], PARTS, axis=1).astype(np.float32)


def _synthetic_casia():
    """Three subjects, two views, built so that the identical view misleads.

    Gallery ``(t, v) = e_t + 2 f_{v,t}``; probe ``(s, v) = e_s + 2 f_{v,next(s)}``, with all the
    ``e`` and ``f`` orthonormal. In the probe's own view, the nearest gallery sequence is
    ``next(s)``'s (they share ``f``): wrong. In the other view, ``s``'s own is nearest. So rank-1
    is 100% with the identical view excluded, 0% if it were included.
    """
    subjects, views = ["001", "002", "003"], ["000", "090"]
    basis = iter(np.eye(9))
    e = {s: next(basis) for s in subjects}
    f = {(v, s): next(basis) for v in views for s in subjects}
    following = {"001": "002", "002": "003", "003": "001"}
    embeddings, labels = [], []
    for subject in subjects:
        for view in views:
            for condition in ("nm-01", "nm-02", "nm-03", "nm-04"):
                embeddings.append(_embedding(e[subject] + 2 * f[(view, subject)]))
                labels.append(SequenceLabel(subject, condition, view))
            for condition in ("nm-05", "nm-06"):
                embeddings.append(_embedding(e[subject] + 2 * f[(view, following[subject])]))
                labels.append(SequenceLabel(subject, condition, view))
    return np.stack(embeddings), labels


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_rank1_excludes_identical_view(metric):
    embeddings, labels = _synthetic_casia()
    result = casia_b_rank1(embeddings, labels, metric)
    assert result.table["NM"] == {"000": 100.0, "090": 100.0}
    assert result.means == {"NM": 100.0}
    # sanity check of the premise: with the same view allowed the nearest is a wrong subject
    probes = [i for i, label in enumerate(labels) if label.condition == "nm-05" and label.view == "000"]
    same_view_gallery = [i for i, label in enumerate(labels) if label.condition == "nm-01" and label.view == "000"]
    d = distance_matrix(embeddings[probes], embeddings[same_view_gallery], metric)
    assert d.argmin(axis=1).tolist() == [1, 2, 0]


def test_rank1_counts_mistakes_per_view():
    embeddings, labels = _synthetic_casia()
    # make subject 001's probes at view 090 look exactly like subject 002's gallery at view 000
    target = next(i for i, label in enumerate(labels) if label.subject == "002" and label.view == "000")
    for i, label in enumerate(labels):
        if label.subject == "001" and label.view == "090" and label.condition in ("nm-05", "nm-06"):
            embeddings[i] = embeddings[target]
    result = casia_b_rank1(embeddings, labels, "euclidean")
    assert result.table["NM"]["090"] == pytest.approx(100 * 2 / 3)
    assert result.table["NM"]["000"] == 100.0


def test_rank1_ranks_a_windowed_probe_by_its_closest_window():
    """The service's ranking of long walks (models.matching.RankingWindows) in the protocol: the mistake
    above is undone for the probes given a window that looks like their own subject."""
    embeddings, labels = _synthetic_casia()
    target = next(i for i, label in enumerate(labels) if label.subject == "002" and label.view == "000")
    own = next(i for i, label in enumerate(labels) if label.subject == "001" and label.view == "000")
    windows = {}
    for i, label in enumerate(labels):
        if label.subject == "001" and label.view == "090" and label.condition in ("nm-05", "nm-06"):
            # the best window (cosine 0.98 with its own subject) beats one that leans to the impostor (0.89)
            mine, theirs = embeddings[own], embeddings[target]
            windows[i] = np.stack([mine + 0.2 * theirs, theirs + 0.5 * mine])
            embeddings[i] = theirs
    assert casia_b_rank1(embeddings, labels, "cosine").table["NM"]["090"] == pytest.approx(100 * 2 / 3)
    assert casia_b_rank1(embeddings, labels, "cosine", windows).table["NM"]["090"] == 100.0


def test_distances_follow_opengait_per_part_mean():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 3, 4, PARTS)).astype(np.float32)
    d = distance_matrix(a, b, "euclidean")
    expected = np.mean(np.linalg.norm(a[1] - b[2], axis=0))
    assert d[1, 2] == pytest.approx(expected, rel=1e-5)
    c = distance_matrix(a, b, "cosine")
    cos = np.sum(a[0] * b[1], axis=0) / (np.linalg.norm(a[0], axis=0) * np.linalg.norm(b[1], axis=0))
    assert c[0, 1] == pytest.approx(1 - cos.mean(), rel=1e-5)


def test_map_and_minp_on_a_known_ranking():
    distances = np.array([[0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
    scores = retrieval_scores(distances, ["x", "y"], ["x", "y", "x", "z"])
    # probe x: ranking x y x z → hits at 1 and 3: AP = (1/1 + 2/3) / 2, INP = 2/3
    # probe y: ranking z x y x → hit at 3: AP = 1/3, INP = 1/3
    assert scores.rank[1] == 50.0 and scores.rank[5] == 100.0
    assert scores.mean_ap == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1 / 3) / 2)
    assert scores.mean_inp == pytest.approx(100 * (2 / 3 + 1 / 3) / 2)


def test_open_set_thresholds_on_known_scores():
    # 4 gallery subjects with one sequence each; 100 probes each of subject "a"
    gallery = ["a", "b", "c", "d"]
    rng = np.random.default_rng(0)
    impostor = np.linspace(0.0, 0.5, 100)  # the best wrong-subject similarity of each probe
    similarity = np.zeros((100, 4))
    similarity[:, 0] = 0.9  # genuine score
    similarity[:, 1] = impostor
    similarity[:, 2:] = rng.uniform(-1, -0.5, size=(100, 2))
    points = open_set_thresholds(similarity, ["a"] * 100, gallery)
    one_percent = points["far_1e-2"]
    assert one_percent.false_accept_rate <= 0.01
    assert one_percent.threshold == pytest.approx(0.5, abs=1e-5)
    assert one_percent.true_accept_rate == 1.0
