"""Deterministic P×K batches with fixed-length unordered frame sampling, and augmentations.

The batch of iteration ``i`` is a pure function of ``(seed, i)``: it does not depend on what was
sampled before, on worker scheduling, or on whether the run was resumed. That is what makes
``--resume`` exact and lets data workers build any iteration independently.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from models.data.records import SequenceRecord
from models.training.footage import CLEAN, FootageConfig, rerender
from models.transform import to_model_input


@dataclass(frozen=True)
class SamplingConfig:
    """``subjects_per_batch`` (P) × ``sequences_per_subject`` (K) sequences of ``frames`` frames each."""

    subjects_per_batch: int = 8
    sequences_per_subject: int = 8
    frames: int = 30
    flip_probability: float = 0.5
    erase_probability: float = 0.3
    shift_probability: float = 0.3


def iteration_rng(seed: int, iteration: int, rank: int = 0) -> np.random.Generator:
    """The random stream of one iteration on one process."""
    return np.random.default_rng([seed, iteration, rank])


def sample_frames(sils: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """``frames`` frames drawn without order (with replacement only when the sequence is shorter)."""
    replace = len(sils) < frames
    chosen = rng.choice(len(sils), size=frames, replace=replace)
    return sils[np.sort(chosen)]


def augment(sils: np.ndarray, config: SamplingConfig, rng: np.random.Generator) -> np.ndarray:
    """Whole-sequence silhouette augmentations on float ``[T, 64, W]``: flip, shift, erasing."""
    if rng.random() < config.flip_probability:
        sils = sils[:, :, ::-1]
    if rng.random() < config.shift_probability:
        dy, dx = rng.integers(-4, 5, size=2)
        sils = np.roll(sils, (int(dy), int(dx)), axis=(1, 2))
    if rng.random() < config.erase_probability:
        height, width = sils.shape[1:]
        eh, ew = int(rng.integers(8, height // 3)), int(rng.integers(6, width // 2))
        top, left = int(rng.integers(0, height - eh)), int(rng.integers(0, width - ew))
        sils = sils.copy()
        sils[:, top : top + eh, left : left + ew] = 0.0
    return np.ascontiguousarray(sils)


class TripletBatches:
    """Builds training batches from in-memory records."""

    def __init__(
        self,
        records: Sequence[SequenceRecord],
        config: SamplingConfig,
        seed: int,
        footage: FootageConfig = CLEAN,
    ) -> None:
        if not records:
            raise ValueError("no training sequences")
        self.records = records
        self.config = config
        self.footage = footage
        self.seed = seed
        self.subjects = sorted({r.subject for r in records})
        self.label_of = {subject: index for index, subject in enumerate(self.subjects)}
        by_subject: dict[str, list[int]] = {s: [] for s in self.subjects}
        for index, record in enumerate(records):
            by_subject[record.subject].append(index)
        self.by_subject = by_subject
        if len(self.subjects) < config.subjects_per_batch:
            raise ValueError(
                f"{len(self.subjects)} subjects, fewer than subjects_per_batch={config.subjects_per_batch}"
            )

    def batch(self, iteration: int, rank: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sils float32 [P*K, T, 64, 44], labels int64 [P*K])`` for one iteration."""
        rng = iteration_rng(self.seed, iteration, rank)
        subjects = rng.choice(len(self.subjects), size=self.config.subjects_per_batch, replace=False)
        clips, labels = [], []
        for subject_index in subjects:
            pool = self.by_subject[self.subjects[subject_index]]
            k = self.config.sequences_per_subject
            for record_index in rng.choice(pool, size=k, replace=len(pool) < k):
                frames = sample_frames(self.records[record_index].sils, self.config.frames, rng)
                frames = rerender(frames, self.footage, rng)
                clips.append(augment(to_model_input(frames), self.config, rng))
                labels.append(int(subject_index))
        return torch.from_numpy(np.stack(clips)), torch.tensor(labels, dtype=torch.int64)


class BatchStream(torch.utils.data.IterableDataset):
    """Iterations ``start..stop`` as a stream; DataLoader workers split it by iteration number."""

    def __init__(self, batches: TripletBatches, start: int, stop: int, rank: int = 0) -> None:
        super().__init__()
        self.batches, self.start, self.stop, self.rank = batches, start, stop, rank

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        for iteration in range(self.start + worker, self.stop, workers):
            yield (iteration, *self.batches.batch(iteration, self.rank))
