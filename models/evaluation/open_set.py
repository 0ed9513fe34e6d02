"""Open-set thresholds: when to answer "unknown" instead of the best-scoring subject.

A probe is scored against every gallery subject by the best similarity over that subject's
sequences (the service aggregates the same way). The *impostor* score of a probe is its best
score among subjects other than its own; the *genuine* score is the score of its own subject.
The threshold for a false-accept rate ``f`` is the similarity that only a fraction ``f`` of
impostor scores reach; the true-accept rate is the fraction of genuine scores that reach it.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

FALSE_ACCEPT_RATES = {"far_1e-2": 1e-2, "far_1e-3": 1e-3}


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold on similarity with the rates it gives on the data it was chosen on."""

    threshold: float
    false_accept_rate: float
    true_accept_rate: float


def subject_scores(similarity: np.ndarray, gallery_labels: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Per probe, the best similarity to each gallery subject: ``[probes, subjects]`` and the subjects."""
    labels = np.asarray(gallery_labels)
    subjects = sorted(set(labels.tolist()))
    scores = np.stack([similarity[:, labels == s].max(axis=1) for s in subjects], axis=1)
    return scores, subjects


def open_set_thresholds(
    similarity: np.ndarray, probe_labels: Sequence[str], gallery_labels: Sequence[str]
) -> dict[str, OperatingPoint]:
    """Thresholds at 1% and 0.1% false accepts, from a probe × gallery similarity matrix."""
    scores, subjects = subject_scores(similarity, gallery_labels)
    own = np.asarray(probe_labels)[:, None] == np.asarray(subjects)[None, :]
    enrolled = own.any(axis=1)
    genuine = scores[own]  # one per enrolled probe
    impostor = np.where(own, -np.inf, scores).max(axis=1)
    points = {}
    for name, rate in FALSE_ACCEPT_RATES.items():
        # smallest threshold with at most `rate` of impostor scores at or above it
        threshold = float(np.quantile(impostor, 1.0 - rate, method="higher")) + 1e-6
        points[name] = OperatingPoint(
            threshold=threshold,
            false_accept_rate=float(np.mean(impostor >= threshold)),
            true_accept_rate=float(np.mean(genuine >= threshold)) if enrolled.any() else 0.0,
        )
    return points
