"""Video or silhouettes in, tracks with embeddings and open-set decisions out.

The service's one place that knows both the pipeline and the models: it builds the pipeline
configuration from the settings, loads the registered gait model once, and answers a walk
(:func:`answer_walk`: gallery search, then ``match`` / ``unknown`` at the threshold) for jobs and
streams alike, so an identify upload and a live stream say the same of the same silhouettes.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.embedder import MAX_FRAMES, Embedder
from models.errors import ModelError
from models.loading import create_embedder
from models.matching import Candidate, ProbeWalk, Verdict, decide, embed_probe_walks, embed_walks
from models.registry import ModelSpec, resolve
from pipeline.cache import default_cache, extract_cached
from pipeline.extract import PipelineResult
from service.errors import UnprocessableError
from service.gallery.sync import Gallery
from service.pipeline_settings import pipeline_config
from service.settings import Settings


@dataclass(frozen=True)
class WalkAnswer:
    """Who a walk is: the decision at the threshold and the closest subjects, best first."""

    verdict: Verdict
    candidates: list[Candidate]


def answer_walk(gallery: Gallery, walk: ProbeWalk, threshold: float, top_k: int) -> WalkAnswer:
    """The one recognition step after embedding, for identify jobs and streams alike."""
    candidates = gallery.search(walk.whole, top_k, walk.windows)
    return WalkAnswer(decide(candidates, threshold), candidates)


class JobCancelledError(Exception):
    """Raised inside long work when the job was cancelled; the work stops at the next frame."""


class Recognizer:
    """The loaded gait model plus the pipeline settings; shared by every job of a process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.spec: ModelSpec = resolve(settings.model)
        self.pipeline = pipeline_config(settings)
        self.cache = default_cache() if settings.pipeline_cache else None
        self._embedder: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def model_key(self) -> str:
        return self.spec.key

    @property
    def calibrated(self) -> bool:
        """Whether answers carry a confidence and thresholds are on that 0..1 scale (else on the similarity)."""
        return self.spec.calibration is not None

    def threshold(self, override: float | None = None) -> float:
        """The open-set threshold: the request's, else the settings', else the model card's."""
        if override is not None:
            return override
        if self.settings.match_threshold is not None:
            return self.settings.match_threshold
        thresholds = self.spec.thresholds
        if self.settings.threshold_far in thresholds:
            return thresholds[self.settings.threshold_far]
        if thresholds:
            return max(thresholds.values())
        raise UnprocessableError(
            f"model {self.spec.key} has no calibrated thresholds; set GAITID_MATCH_THRESHOLD", code="no_threshold"
        )

    @property
    def loaded(self) -> bool:
        return self._embedder is not None

    @property
    def embedder(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = create_embedder(
                    self.spec.arch,
                    self.spec.weights,
                    backend=self.settings.embed_backend,
                    device=self.settings.embed_device,
                    config=self.spec.config,
                )
            return self._embedder

    def embed(self, sequences: list[np.ndarray]) -> np.ndarray:
        """float32 [S, channels, parts], each walk embedded as the model card says (whole, or windows averaged);
        sequences longer than the model takes keep their first frames."""
        embedded = embed_walks(self.embedder.embed, [s[:MAX_FRAMES] for s in sequences], self.spec.windowing)
        self._check_shape(embedded.shape[1:])
        return embedded

    def probe_walks(self, sequences: list[np.ndarray]) -> list[ProbeWalk]:
        """Walks to identify: each embedded as :meth:`embed` does, plus the card's ranking windows of long ones."""
        walks = embed_probe_walks(
            self.embedder.embed, [s[:MAX_FRAMES] for s in sequences], self.spec.windowing, self.spec.ranking
        )
        for walk in walks:
            self._check_shape(walk.whole.shape)
        return walks

    def _check_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != self.spec.embedding_shape:
            raise ModelError(
                f"model {self.spec.key} embeds {list(shape)}, but its card says "
                f"{list(self.spec.embedding_shape)}; register the checkpoint again with `gaitid models add`",
                code="model_not_servable",
            )

    def extract(
        self, source: str | Path, progress: Callable[[float], None], cancelled: Callable[[], bool]
    ) -> PipelineResult:
        """Run the pipeline; ``progress`` gets 0..1, ``cancelled`` is polled every frame."""

        def on_progress(done: int, total: int | None) -> None:
            if cancelled():
                raise JobCancelledError
            if total:
                progress(min(done / total, 1.0))

        return extract_cached(source, self.pipeline, self.cache, progress=on_progress)
