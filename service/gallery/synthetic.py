"""Synthetic gait embeddings with the structure of real ones, for the gallery benchmark and tests.

Real galleries are not uniform noise: a subject has several sequences that are noisy variations of
one identity, a subject's 16 parts are correlated, and all embeddings share a population mean (so
impostor scores sit above zero). Each part ``p`` (a 256-vector) of sequence ``q`` of subject ``s`` is

    x_p = pop_s * mu_p + identity * (rho * g_s + r * u_sp) + noise_q * (rho * h_q + r * e_qp),   r = sqrt(1 - rho^2)

with ``g, u, h, e ~ N(0, I/256)`` (unit expected norm), ``mu_p`` fixed unit vectors per part,
``pop_s ~ U(population)`` per subject and ``noise_q ~ U(noise)`` per sequence; ``rho`` is
``part_coupling``. With ``norm^2 = pop^2 + identity^2 + noise^2``, the mean per-part cosine of two
sequences is then about

    genuine  ~ (pop^2 + identity^2) / (norm_a * norm_b)      (same subject)
    impostor ~ pop_a * pop_b / (norm_a * norm_b)               (different subjects)

With the defaults, 98% of genuine pairs score 0.62–0.91 and of impostor pairs 0.03–0.49 (measured
on 20k entries). Raise ``noise`` to make matching harder (genuine scores fall toward the
impostors), ``population`` to lift impostor scores. Identities are isotropic in all 4096 dims, the
hardest case for approximate search; a trained network's embeddings have lower rank.

Everything is a pure function of ``seed`` and the subject number, so a gallery can be generated
chunk by chunk (1M × 4096 float32 is 16 GB) and a subject's centre regenerated for its queries.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from service.gallery.vectors import CHANNELS, PARTS


@dataclass(frozen=True)
class SyntheticSpec:
    """Knobs of the generator; see the module docstring for how they set the score spread."""

    identity: float = 1.0
    population: tuple[float, float] = (0.2, 1.2)
    noise: tuple[float, float] = (0.4, 0.9)
    part_coupling: float = 0.6
    sequences: tuple[int, int] = (2, 8)


def _gaussian(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """``N(0, I/256)`` along the last (channel) axis, so each vector has about unit norm."""
    return rng.standard_normal(shape, dtype=np.float32) / np.float32(np.sqrt(CHANNELS))


def _coupled(rng: np.random.Generator, rho: float, lead: int) -> np.ndarray:
    """``[lead, 16, 256]``: per-part vectors sharing a common component with weight ``rho``."""
    shared = _gaussian(rng, lead, 1, CHANNELS)
    own = _gaussian(rng, lead, PARTS, CHANNELS)
    return np.float32(rho) * shared + np.float32(np.sqrt(1 - rho**2)) * own


def subject_layout(size: int, seed: int, sequences: tuple[int, int]) -> np.ndarray:
    """The subject of each of ``size`` entries: consecutive runs of ``sequences[0]..[1]`` entries."""
    low, high = sequences
    counts = np.random.default_rng((seed, 0)).integers(low, high + 1, size=size // low + 1)
    return np.repeat(np.arange(len(counts), dtype=np.int64), counts)[:size]


class SubjectGallery:
    """Chunked generation shared by the generators: a subject's centre and sequences come from
    ``_subject(subject)`` and ``_sequences(centre, rng, count)``, pure functions of the seed."""

    size: int
    seed: int
    subject_of: np.ndarray

    def _subject(self, subject: int) -> tuple[np.ndarray, np.random.Generator]:
        raise NotImplementedError

    def _sequences(self, centre: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
        raise NotImplementedError

    @property
    def subjects(self) -> int:
        return int(self.subject_of[-1]) + 1 if self.size else 0

    def chunks(self, entries: int = 50_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids int64 [m], embeddings float32 [m, 256, 16])``, ``m`` about ``entries``, whole subjects."""
        starts = np.flatnonzero(np.diff(self.subject_of, prepend=-1))
        ends = np.append(starts[1:], self.size)
        first = 0
        while first < len(starts):
            last = max(first + 1, min(len(starts), int(np.searchsorted(starts, starts[first] + entries))))
            blocks = []
            for subject in range(first, last):
                centre, rng = self._subject(subject)
                blocks.append(self._sequences(centre, rng, int(ends[subject] - starts[subject])))
            yield np.arange(starts[first], ends[last - 1], dtype=np.int64), np.concatenate(blocks)
            first = last

    def queries(self, count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``count`` new sequences of enrolled subjects: ``(subjects int64 [count], embeddings [count, 256, 16])``."""
        rng = np.random.default_rng((self.seed, 3, seed))
        subjects = rng.integers(0, self.subjects, size=count)
        out = np.stack([self._sequences(self._subject(int(s))[0], rng, 1)[0] for s in subjects])
        return subjects.astype(np.int64), out.astype(np.float32)


@dataclass(frozen=True)
class SyntheticGallery(SubjectGallery):
    """A gallery of ``size`` entries (ids ``0..size-1``) grouped by subject, generated lazily."""

    size: int
    seed: int = 0
    spec: SyntheticSpec = SyntheticSpec()
    subject_of: np.ndarray = field(init=False, repr=False)
    mu: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "subject_of", subject_layout(self.size, self.seed, self.spec.sequences))
        mu = _gaussian(np.random.default_rng((self.seed, 1)), PARTS, CHANNELS)  # population mean direction per part
        object.__setattr__(self, "mu", mu / np.linalg.norm(mu, axis=1, keepdims=True))

    def _subject(self, subject: int) -> tuple[np.ndarray, np.random.Generator]:
        """The subject's noise-free centre ``[16, 256]`` and the generator its own sequences continue from."""
        rng = np.random.default_rng((self.seed, 2, subject))
        pop = rng.uniform(*self.spec.population)
        centre = (
            np.float32(pop) * self.mu + np.float32(self.spec.identity) * _coupled(rng, self.spec.part_coupling, 1)[0]
        )
        return centre, rng

    def _sequences(self, centre: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` embeddings ``[count, 256, 16]`` of one subject: centre plus per-sequence noise."""
        noise = rng.uniform(*self.spec.noise, size=(count, 1, 1)).astype(np.float32)
        parts = centre[None] + noise * _coupled(rng, self.spec.part_coupling, count)
        return parts.transpose(0, 2, 1)
