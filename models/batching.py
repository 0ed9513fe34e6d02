"""Grouping sequences of different lengths into padded batches.

Padding costs compute, so sequences are sorted by length and a batch only takes sequences
close in length to its longest one, within a budget of padded frames per batch.
"""

from collections.abc import Sequence

import numpy as np


def plan_batches(lengths: Sequence[int], max_batch_frames: int, max_padding: float = 0.25) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches.

    A batch's padded size (count × longest) stays within ``max_batch_frames`` (a sequence longer
    than that goes alone), and no member is shorter than ``(1 - max_padding)`` × the longest.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for index in order:
        if batches:
            batch = batches[-1]
            longest = lengths[batch[0]]
            fits = (len(batch) + 1) * longest <= max_batch_frames
            close = lengths[index] >= (1.0 - max_padding) * longest
            if fits and close:
                batch.append(index)
                continue
        batches.append([index])
    return batches


def pad_batch(sequences: Sequence[np.ndarray], frame_multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad ``[N_i, H, W]`` arrays to ``[B, T, H, W]`` (their dtype); also returns the lengths (int64).

    ``T`` is the longest length rounded up to ``frame_multiple``: a GPU backend asks for a few
    stable shapes (kernels tuned once, no recompilation) at the price of some masked frames.
    """
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    height, width = sequences[0].shape[1:]
    frames = -(-int(lengths.max()) // frame_multiple) * frame_multiple
    padded = np.zeros((len(sequences), frames, height, width), dtype=sequences[0].dtype)
    for row, seq in enumerate(sequences):
        padded[row, : len(seq)] = seq
    return padded, lengths
