"""Generic retrieval metrics over a probe × gallery distance matrix: rank-k, mAP, mINP.

mINP (Ye et al., "Deep Learning for Person Re-identification", 2021) is the mean over probes of
``positives / rank of the hardest positive``: how far down the list the last true match sits.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RetrievalScores:
    """Percentages; probes without any true match in the gallery are left out and counted."""

    rank: dict[int, float]
    mean_ap: float
    mean_inp: float
    probes: int
    probes_without_match: int


def retrieval_scores(
    distances: np.ndarray, probe_labels: Sequence[str], gallery_labels: Sequence[str], ranks: Sequence[int] = (1, 5, 10)
) -> RetrievalScores:
    """Rank-k accuracy, mAP and mINP of ``distances`` ``[probes, gallery]`` (smaller is closer)."""
    gallery = np.asarray(gallery_labels)
    order = np.argsort(distances, axis=1, kind="stable")
    matches = gallery[order] == np.asarray(probe_labels)[:, None]  # [probes, gallery], sorted by distance
    has_match = matches.any(axis=1)
    matches = matches[has_match]
    if len(matches) == 0:
        return RetrievalScores({k: 0.0 for k in ranks}, 0.0, 0.0, len(probe_labels), len(probe_labels))
    first_hit = matches.argmax(axis=1)
    rank = {k: 100.0 * float(np.mean(first_hit < k)) for k in ranks}
    hits_so_far = np.cumsum(matches, axis=1)
    positions = np.arange(1, matches.shape[1] + 1)
    precision_at_hits = np.where(matches, hits_so_far / positions, 0.0)
    positives = matches.sum(axis=1)
    mean_ap = 100.0 * float(np.mean(precision_at_hits.sum(axis=1) / positives))
    hardest = matches.shape[1] - np.argmax(matches[:, ::-1], axis=1)  # 1-based rank of the last hit
    mean_inp = 100.0 * float(np.mean(positives / hardest))
    return RetrievalScores(rank, mean_ap, mean_inp, len(probe_labels), int((~has_match).sum()))
