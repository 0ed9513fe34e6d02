"""The CASIA-B cross-view protocol (GaitSet / GaitBase papers).

Gallery: nm-01..04 of every test subject. Probes: nm-05/06 (NM), bg-01/02 (BG), cl-01/02 (CL).
For each probe view and each *other* gallery view, rank-1 accuracy of nearest-neighbour search
restricted to that gallery view; the identical view is excluded. A probe view's accuracy is the
mean over the 10 other gallery views; a condition's accuracy is the mean over the 11 probe views.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from models.evaluation.distances import Metric, distance_matrix

GALLERY_CONDITIONS = ("nm-01", "nm-02", "nm-03", "nm-04")
PROBE_CONDITIONS = {"NM": ("nm-05", "nm-06"), "BG": ("bg-01", "bg-02"), "CL": ("cl-01", "cl-02")}


@dataclass(frozen=True)
class SequenceLabel:
    """What the protocol needs to know about a sequence."""

    subject: str
    condition: str
    view: str


@dataclass(frozen=True)
class CasiaBResult:
    """Rank-1 in percent: ``table[probe set][probe view]`` and ``means[probe set]``."""

    metric: Metric
    views: list[str]
    table: dict[str, dict[str, float]]
    means: dict[str, float]


def casia_b_rank1(
    embeddings: np.ndarray,
    labels: Sequence[SequenceLabel],
    metric: Metric,
    windows: Mapping[int, np.ndarray] | None = None,
) -> CasiaBResult:
    """Score ``embeddings`` ``[S, D, P]`` (row ``i`` labelled ``labels[i]``) under the CASIA-B protocol.

    ``windows``: sequence index → its ranking windows' embeddings ``[w, D, P]``; such a probe is as
    close to a gallery sequence as its closest window (:class:`models.matching.RankingWindows`).
    """
    subjects = np.array([label.subject for label in labels])
    conditions = np.array([label.condition for label in labels])
    views = np.array([label.view for label in labels])
    gallery = np.isin(conditions, GALLERY_CONDITIONS)
    view_names = sorted(set(views.tolist()))
    table: dict[str, dict[str, float]] = {}
    means: dict[str, float] = {}
    for probe_set, probe_conditions in PROBE_CONDITIONS.items():
        probes = np.isin(conditions, probe_conditions)
        if not probes.any():
            continue
        distances = distance_matrix(embeddings[probes], embeddings[gallery], metric)
        for row, index in enumerate(np.flatnonzero(probes).tolist()):
            if windows and index in windows:
                distances[row] = distance_matrix(windows[index], embeddings[gallery], metric).min(axis=0)
        probe_views, probe_subjects = views[probes], subjects[probes]
        gallery_views, gallery_subjects = views[gallery], subjects[gallery]
        table[probe_set] = {}
        for probe_view in view_names:
            rows = probe_views == probe_view
            per_gallery_view = []
            for gallery_view in view_names:
                columns = gallery_views == gallery_view
                if gallery_view == probe_view or not rows.any() or not columns.any():
                    continue
                nearest = distances[np.ix_(rows, columns)].argmin(axis=1)
                predicted = gallery_subjects[columns][nearest]
                per_gallery_view.append(np.mean(predicted == probe_subjects[rows]))
            if per_gallery_view:
                table[probe_set][probe_view] = 100.0 * float(np.mean(per_gallery_view))
        means[probe_set] = float(np.mean(list(table[probe_set].values())))
    return CasiaBResult(metric, view_names, table, means)


def format_casia_b(result: CasiaBResult) -> str:
    """The usual 3 × 11 table with a mean column."""
    header = ["probe", *result.views, "mean"]
    lines = [f"rank-1 (%), {result.metric}, identical view excluded", "  ".join(f"{h:>6}" for h in header)]
    for probe_set, row in result.table.items():
        cells = [f"{row[v]:6.1f}" if v in row else "     -" for v in result.views]
        lines.append("  ".join([f"{probe_set:>6}", *cells, f"{result.means[probe_set]:6.2f}"]))
    return "\n".join(lines)


def protocol_pairs(vectors: np.ndarray, labels: Sequence[SequenceLabel]) -> tuple[np.ndarray, np.ndarray]:
    """The protocol's probe × gallery pairs across views: ``(similarity, same subject)``, flattened, for
    gallery ``vectors`` (one row per labelled sequence; an inner product is a similarity).

    These are the comparisons the rank-1 table is made of (probes NM/BG/CL against nm-01..04, the
    identical view excluded), so a calibration fitted or checked on them speaks of the same task.
    """
    subjects = np.array([label.subject for label in labels])
    conditions = np.array([label.condition for label in labels])
    views = np.array([label.view for label in labels])
    gallery = np.flatnonzero(np.isin(conditions, GALLERY_CONDITIONS))
    probes = np.flatnonzero(np.isin(conditions, [c for group in PROBE_CONDITIONS.values() for c in group]))
    similarity = vectors[probes] @ vectors[gallery].T
    across = views[probes][:, None] != views[gallery][None, :]
    same = subjects[probes][:, None] == subjects[gallery][None, :]
    return similarity[across], same[across]
