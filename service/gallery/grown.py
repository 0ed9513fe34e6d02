"""Large galleries grown from a model's real embeddings, for ``gaitid bench gallery --real``.

Isotropic synthetic galleries (:mod:`service.gallery.synthetic`) miss what makes real embeddings
hard to index: a large component common to everyone (raw mean per-part cosines of default@3 all
lie in 0.994-0.9995) and identities that vary along a few dozen directions. A compressed index
trained on such data can keep exact search's top-1 for as few as 93% of probes while the
synthetic benchmark reports 1.000. This generator keeps the real structure:

- real sequences ``x_i`` of subjects ``s`` split into the population mean ``mu``, subject offsets
  ``d_s = c_s - mu`` and within-subject residuals ``r_i = x_i - c_s``;
- a new subject's offset is a random combination ``sum_s w_s d_s`` with ``w ~ N(0, 1/S)``, so
  offsets have the real subjects' covariance; each of its sequences adds a real residual mixed
  with a second one (``(r_a ± r_b)/sqrt(2)``: same covariance, more variety).

Everything is a pure function of ``seed`` and the subject number, so 1M entries are generated
chunk by chunk, like :class:`~service.gallery.synthetic.SyntheticGallery`.
"""

from dataclasses import dataclass, field

import numpy as np

from service.gallery.synthetic import SubjectGallery, subject_layout


@dataclass(frozen=True)
class GrownGallery(SubjectGallery):
    """``size`` entries (ids ``0..size-1``) grown from ``embeddings [n, D, P]`` of ``subjects [n]``."""

    embeddings: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    size: int
    seed: int = 0
    sequences: tuple[int, int] = (2, 8)
    subject_of: np.ndarray = field(init=False, repr=False)
    mean: np.ndarray = field(init=False, repr=False)
    offsets: np.ndarray = field(init=False, repr=False)
    residuals: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        x = np.asarray(self.embeddings, dtype=np.float32)
        labels = np.asarray(self.labels)
        names, index = np.unique(labels, return_inverse=True)
        if len(names) < 2 or len(x) != len(labels):
            raise ValueError("growing a gallery needs embeddings of at least two subjects, one label each")
        centres = np.stack([x[index == i].mean(axis=0) for i in range(len(names))])
        mean = centres.mean(axis=0)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "offsets", centres - mean)
        object.__setattr__(self, "residuals", x - centres[index])
        object.__setattr__(self, "subject_of", subject_layout(self.size, self.seed, self.sequences))

    def _subject(self, subject: int) -> tuple[np.ndarray, np.random.Generator]:
        """The subject's centre ``[D, P]`` and the generator its sequences continue from."""
        rng = np.random.default_rng((self.seed, 2, subject))
        weights = rng.standard_normal(len(self.offsets)).astype(np.float32) / np.float32(np.sqrt(len(self.offsets)))
        return self.mean + np.tensordot(weights, self.offsets, axes=1), rng

    def _sequences(self, centre: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
        picks = rng.integers(0, len(self.residuals), size=(count, 2))
        signs = rng.choice(np.array([-1.0, 1.0], np.float32), size=(count, 1, 1))
        mixed = (self.residuals[picks[:, 0]] + signs * self.residuals[picks[:, 1]]) / np.float32(np.sqrt(2))
        return (centre[None] + mixed).astype(np.float32)
