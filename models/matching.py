"""How two embeddings are compared, and what a score means: the model's matching transform and calibration.

One path for every place that matches (evaluation, the gallery, identify, streams):

1. the **matching transform** stored with the model: the mean embedding of the training split is
   subtracted (identity for models without one). Raw GaitBase embeddings share a large common
   component, so every mean per-part cosine sits near 1 (0.994-0.9995 for default@3) and the
   compressed gallery index loses the ranking in it; centred, same-person and different-person
   scores spread over most of [-1, 1]. A network whose last layer maps fewer channels to each
   part's embedding (the CPU-sized GaitBase: 64 → 256) embeds every walk in that many directions per
   part; the transform then also holds an orthonormal basis of them (``basis``), and the gallery's
   vectors are the coordinates in it: the same inner products, 4× shorter vectors to store and scan;
2. each part is L2-normalised and the vector scaled by ``1/sqrt(parts)``, so one inner product is
   OpenGait's mean per-part cosine similarity (the ``similarity`` of every answer);
3. the **calibration** turns that similarity into a ``confidence`` in 0..1: the probability that the
   two walks are the same person when a same-person and a different-person pair are equally likely a
   priori (logistic regression on balanced training-split pairs). Thresholds are stated on it;
4. candidates are ordered by that score, except that a long probe walk orders them by its best
   window (:class:`RankingWindows`); scores and the decision stay the whole walk's.
"""

import hashlib
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from models.errors import ModelError

Decision = Literal["match", "unknown", "insufficient"]
EmbedFn = Callable[[Sequence[np.ndarray]], np.ndarray]  # sequences → raw embeddings [S, D, P]


@dataclass(frozen=True)
class MatchingTransform:
    """Centring before the per-part normalisation; ``mean`` is ``float32 [D, P]`` or None (identity).

    ``basis``: ``float32 [P, D, r]``, per part ``r < D`` orthonormal columns spanning every
    embedding and the mean (or None). Coordinates in it keep each part's norm and every inner
    product, so only the vectors' length changes (``D*P`` → ``r*P``), not a score.
    """

    mean: np.ndarray | None = None
    basis: np.ndarray | None = None

    @classmethod
    def load(cls, path: Path) -> "MatchingTransform":
        """Read the ``.npz`` file a model card names (array ``mean``, optional array ``basis``)."""
        try:
            with np.load(path, allow_pickle=False) as stored:
                mean = np.asarray(stored["mean"], dtype=np.float32)
                basis = np.asarray(stored["basis"], dtype=np.float32) if "basis" in stored.files else None
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"matching transform {path} is unreadable: {error}", code="bad_model_card") from None
        if mean.ndim != 2 or not np.isfinite(mean).all():
            raise ModelError(f"matching transform {path}: mean must be a finite [D, P] array", code="bad_model_card")
        if basis is not None and (
            basis.ndim != 3 or basis.shape[:2] != mean.shape[::-1] or not np.isfinite(basis).all()
        ):
            raise ModelError(
                f"matching transform {path}: basis must be a finite [P, D, r] array for a [D, P] mean",
                code="bad_model_card",
            )
        return cls(mean, basis)

    def save(self, path: Path) -> None:
        if self.mean is None:
            raise ValueError("the identity transform is not stored")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"mean": self.mean.astype(np.float32)}
        if self.basis is not None:
            arrays["basis"] = self.basis.astype(np.float32)
        with path.open("wb") as handle:
            np.savez(handle, **arrays)

    @property
    def digest(self) -> str:
        """A short fingerprint: galleries record which transform their vectors went through."""
        if self.mean is None:
            return "identity"
        hashed = hashlib.sha256(np.ascontiguousarray(self.mean, dtype=np.float32).tobytes())
        if self.basis is not None:
            hashed.update(np.ascontiguousarray(self.basis, dtype=np.float32).tobytes())
        return hashed.hexdigest()[:12]

    def vector_length(self, shape: tuple[int, int]) -> int:
        """How long :meth:`vectors` makes the vector of one ``[D, P]`` embedding (ValueError: not this
        transform's shape)."""
        channels, parts = shape
        if self.mean is not None and self.mean.shape != (channels, parts):
            raise ValueError(f"the transform is for [{', '.join(map(str, self.mean.shape))}] embeddings")
        return parts * (channels if self.basis is None else self.basis.shape[2])

    def centre(self, embeddings: np.ndarray) -> np.ndarray:
        """Raw embeddings ``[..., D, P]`` with the mean subtracted (as they are for the identity transform)."""
        return embeddings if self.mean is None else embeddings - self.mean

    def vectors(self, embeddings: np.ndarray) -> np.ndarray:
        """``[n, D, P]`` (or one ``[D, P]``) → ``float32 [n, L]``, C-contiguous, part-major.

        ``vector[p*r:(p+1)*r]`` is part ``p``, centred, in ``basis`` coordinates (``r = D`` without
        one), L2-normalised and scaled by ``1/sqrt(P)``, so ``<a, b>`` is the mean per-part cosine
        similarity. A part that is all zeros stays zero (it then adds nothing to any score)
        instead of becoming NaN.
        """
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3:
            raise ValueError(f"embeddings must be [n, D, P] or [D, P], got {list(np.shape(embeddings))}")
        if self.mean is not None and x.shape[1:] != self.mean.shape:
            raise ValueError(f"embeddings {list(x.shape[1:])} do not fit the transform's {list(self.mean.shape)}")
        parts = self.centre(x).transpose(0, 2, 1)  # [n, P, D]
        if self.basis is not None:
            parts = np.matmul(parts.transpose(1, 0, 2), self.basis).transpose(1, 0, 2)  # [n, P, r]
        norms = np.linalg.norm(parts, axis=2, keepdims=True)
        scaled = parts / (np.maximum(norms, np.finfo(np.float32).tiny) * np.float32(np.sqrt(parts.shape[1])))
        return np.ascontiguousarray(scaled.reshape(len(x), -1), dtype=np.float32)

    def similarity(self, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
        """Mean per-part cosine similarity ``[Sp, Sg]`` of two embedding sets, transform applied."""
        return self.vectors(probes) @ self.vectors(gallery).T


def centring_transform(embeddings: np.ndarray) -> MatchingTransform:
    """The transform that subtracts the mean of ``embeddings`` ``[n, D, P]`` (the training split)."""
    return MatchingTransform(np.asarray(embeddings, dtype=np.float64).mean(axis=0).astype(np.float32))


@dataclass(frozen=True)
class Calibration:
    """``confidence = 1 / (1 + exp(-(slope * similarity + intercept)))``."""

    slope: float
    intercept: float

    def confidence(self, similarity: np.ndarray | float) -> np.ndarray:
        z = np.clip(self.slope * np.asarray(similarity, dtype=np.float64) + self.intercept, -50.0, 50.0)
        return 1.0 / (1.0 + np.exp(-z))

    def similarity_at(self, confidence: float) -> float:
        """The similarity whose confidence is ``confidence`` (to state a threshold on both scales)."""
        return float((np.log(confidence / (1.0 - confidence)) - self.intercept) / self.slope)


def fit_calibration(similarity: np.ndarray, same: np.ndarray, iterations: int = 100) -> Calibration:
    """Logistic regression of ``same`` (bool) on ``similarity``, classes weighted equally (Newton's method).

    Equal weights make the confidence the probability of the same person under a 50/50 prior,
    whatever the ratio of same-person to different-person pairs in the data it was fitted on.
    """
    s = np.asarray(similarity, dtype=np.float64).ravel()
    y = np.asarray(same, dtype=np.float64).ravel()
    positives = y.sum()
    if positives == 0 or positives == len(y):
        raise ModelError("calibration needs both same-person and different-person pairs", code="bad_calibration")
    weights = np.where(y > 0, 0.5 / positives, 0.5 / (len(y) - positives))
    features = np.stack([s, np.ones_like(s)], axis=1)
    theta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ theta, -50, 50)))
        gradient = features.T @ (weights * (p - y))
        hessian = (features * (weights * p * (1 - p))[:, None]).T @ features + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return Calibration(float(theta[0]), float(theta[1]))


@dataclass(frozen=True)
class ReliabilityBin:
    """One row of a reliability table: pairs whose confidence fell in ``[low, high)``."""

    low: float
    high: float
    pairs: float  # weighted share of all pairs
    mean_confidence: float
    same_rate: float


def reliability(confidence: np.ndarray, same: np.ndarray, bins: int = 10) -> tuple[float, list[ReliabilityBin]]:
    """Expected calibration error and the reliability table, classes weighted equally as in the fit."""
    c = np.asarray(confidence, dtype=np.float64).ravel()
    y = np.asarray(same, dtype=bool).ravel()
    weights = np.where(y, 0.5 / max(y.sum(), 1), 0.5 / max((~y).sum(), 1))
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, bins - 1)
    table, error = [], 0.0
    for b in range(bins):
        inside = which == b
        w = weights[inside].sum()
        if w <= 0:
            continue
        mean_conf = float((weights[inside] * c[inside]).sum() / w)
        rate = float((weights[inside] * y[inside]).sum() / w)
        error += w * abs(mean_conf - rate)
        table.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), float(w), mean_conf, rate))
    return float(error), table


@dataclass(frozen=True)
class Candidate:
    """A gallery subject and the score of its best-matching enrolled sequence."""

    subject_id: str
    similarity: float
    confidence: float | None
    sequence_id: int = -1
    window_similarity: float | None = None  # the best ranking window's, when one ordered this candidate

    @classmethod
    def scored(
        cls,
        subject_id: str,
        similarity: float,
        calibration: Calibration | None,
        sequence_id: int = -1,
        window_similarity: float | None = None,
    ) -> "Candidate":
        """A candidate whose confidence is ``calibration``'s reading of the similarity (None: uncalibrated)."""
        confidence = None if calibration is None else float(calibration.confidence(similarity))
        return cls(subject_id, similarity, confidence, sequence_id, window_similarity)

    @property
    def score(self) -> float:
        """What thresholds apply to: the confidence of calibrated models, else the similarity."""
        return self.similarity if self.confidence is None else self.confidence

    def scores(self) -> dict[str, float | None]:
        """The numbers an answer shows: ``score`` (the similarity) and ``confidence``, rounded."""
        confidence = None if self.confidence is None else round(self.confidence, 6)
        return {"score": round(self.similarity, 6), "confidence": confidence}

    def listing(self) -> dict[str, float | None]:
        """A candidate list's entry: :meth:`scores` and the ``window_score`` that ordered it (or None)."""
        window = None if self.window_similarity is None else round(self.window_similarity, 6)
        return {**self.scores(), "window_score": window}


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    subject_id: str | None
    candidate: Candidate | None


def decide(candidates: Sequence[Candidate], threshold: float) -> Verdict:
    """``match`` when the best subject's score reaches the threshold, else ``unknown``."""
    best = candidates[0] if candidates else None
    if best is not None and best.score >= threshold:
        return Verdict("match", best.subject_id, best)
    return Verdict("unknown", None, best)


@dataclass(frozen=True)
class Windowing:
    """How a long walk is embedded: windows of ``frames`` frames every ``stride`` frames, their raw
    embeddings averaged (``frames`` 0: the whole sequence in one pass, as OpenGait does).

    The networks are trained on 16-30 frame clips and pool frames with a maximum, so one pass over a
    200-frame track that grows from 100 to 250 px (or turns) is dominated by its extremes; averaging
    window embeddings keeps every part of the walk. Sequences no longer than a window stay whole.
    """

    frames: int = 0
    stride: int = 0

    def __post_init__(self) -> None:
        if self.frames < 0 or (self.frames and not 0 < self.stride <= self.frames):
            raise ValueError("windows need frames > 0 and 0 < stride <= frames (or frames 0: whole sequences)")

    def split(self, sils: np.ndarray) -> list[np.ndarray]:
        if not self.frames or len(sils) <= self.frames:
            return [sils]
        last = len(sils) - self.frames
        starts = list(range(0, last + 1, self.stride))
        if starts[-1] != last:
            starts.append(last)  # the end of the walk counts as much as its start
        return [sils[start : start + self.frames] for start in starts]


def embed_walks(embed: EmbedFn, sequences: Sequence[np.ndarray], windowing: Windowing) -> np.ndarray:
    """One raw embedding per sequence: the mean of its windows' embeddings (one batched ``embed`` call)."""
    return np.stack([walk.whole for walk in embed_probe_walks(embed, sequences, windowing, NO_RANKING_WINDOWS)])


WHOLE_SEQUENCE = Windowing()  # OpenGait's way: one pass over the whole sequence


@dataclass(frozen=True)
class RankingWindows:
    """How a long probe walk orders the gallery: by its best window of ``frames`` frames (every
    ``stride``), for walks longer than ``longer_than`` frames (``frames`` 0: never).

    A real track of several seconds mixes distances, turns and partial occlusions, and one pass
    over it (the networks pool frames with a maximum) blends them, while an enrolment is usually one
    steadier walk: the window that looks most like an enrolled walk says more about who it is than
    the blend does. Only the order changes: a candidate's similarity, confidence and the decision
    stay those of the whole walk, on the scale the calibration and thresholds were fitted on
    (window scores run lower than whole-walk scores). Shorter walks rank whole, as before.
    """

    frames: int = 0
    stride: int = 0
    longer_than: int = 0

    def __post_init__(self) -> None:
        if self.frames < 0 or (self.frames and not (0 < self.stride <= self.frames <= self.longer_than)):
            raise ValueError("ranking windows need 0 < stride <= frames <= longer_than (or frames 0: off)")

    def split(self, sils: np.ndarray) -> list[np.ndarray]:
        """The windows of a walk that ranks by windows; none for a shorter walk (or when off)."""
        if not self.frames or len(sils) <= self.longer_than:
            return []
        return Windowing(self.frames, self.stride).split(sils)


NO_RANKING_WINDOWS = RankingWindows()


@dataclass(frozen=True)
class ProbeWalk:
    """A walk to identify: its raw embedding ``[D, P]`` and those of its ranking windows ``[w, D, P]`` (w may be 0)."""

    whole: np.ndarray
    windows: np.ndarray


def embed_pieces(embed: EmbedFn, pieces: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Every item's pieces (windows of one walk, say) in one ``embed`` call: each item's embeddings ``[n, D, P]``."""
    embedded = embed([piece for item in pieces for piece in item])
    bounds = np.cumsum([0, *(len(item) for item in pieces)])
    return [embedded[a:b] for a, b in itertools.pairwise(bounds)]


def embed_probe_walks(
    embed: EmbedFn, sequences: Sequence[np.ndarray], windowing: Windowing, ranking: RankingWindows
) -> list[ProbeWalk]:
    """Each walk embedded as an enrolment is (:func:`embed_walks`) plus its ranking windows, in one ``embed`` call."""
    averaged = [windowing.split(s) for s in sequences]
    embedded = embed_pieces(embed, averaged + [ranking.split(s) for s in sequences])
    return [ProbeWalk(embedded[i].mean(axis=0), embedded[len(sequences) + i]) for i in range(len(sequences))]


def rank_subjects(whole: Mapping[str, float], windows: Mapping[str, float]) -> list[str]:
    """The subjects of ``whole`` (subject → the whole walk's score), best first.

    With window scores (subject → its best window's score) they order the subjects, a subject no
    window reached coming after those; ties, and walks without windows, go by the whole walk.
    """
    return sorted(whole, key=lambda subject: (-windows.get(subject, -np.inf), -whole[subject]))
