"""Silhouette normalization exactly as OpenGait's dataset pretreatment does it.

Per mask (uint8, 0..255, any size): drop it when its pixel sum is ≤ 10000 (too small or empty);
crop to the rows that contain foreground; resize to height 64 keeping the aspect ratio (cubic
interpolation, width truncated to an integer); find the horizontal centre as the first column
where the cumulative column sum exceeds half the total; cut a 64-wide window around it, padding
with 32 zero columns on both sides when the window would touch or cross the image border. A
mask whose centre comes out at column 0 is dropped too, as OpenGait drops it.

Parity with OpenGait's outputs is bit-exact (see ``tests/pipeline/test_normalize.py``), so
embeddings of our silhouettes are comparable with models trained on OpenGait data.
"""

from collections.abc import Iterable

import cv2
import numpy as np

SIZE = 64
MIN_MASK_SUM = 10000


def normalize_mask(mask: np.ndarray) -> np.ndarray | None:
    """One uint8 mask → uint8 ``[64, 64]`` silhouette, or None when OpenGait would drop the frame."""
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D, got shape {mask.shape}")
    if int(mask.sum(dtype=np.int64)) <= MIN_MASK_SUM:
        return None
    rows = mask.sum(axis=1, dtype=np.int64) != 0
    top = int(rows.argmax())
    bottom = int(rows.cumsum().argmax())
    cropped = mask[top : bottom + 1, :]
    ratio = cropped.shape[1] / cropped.shape[0]
    resized = cv2.resize(cropped, (int(SIZE * ratio), SIZE), interpolation=cv2.INTER_CUBIC)
    total = int(resized.sum(dtype=np.int64))
    above_half = np.flatnonzero(resized.sum(axis=0, dtype=np.int64).cumsum() > total / 2)
    centre = int(above_half[0]) if len(above_half) else 0
    if centre == 0:
        return None
    half = SIZE // 2
    left, right = centre - half, centre + half
    if left <= 0 or right >= resized.shape[1]:
        left, right = left + half, right + half
        band = np.zeros((resized.shape[0], half), dtype=np.uint8)
        resized = np.concatenate([band, resized, band], axis=1)
    return np.ascontiguousarray(resized[:, left:right], dtype=np.uint8)


def normalize_masks(masks: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Normalize a sequence: ``(silhouettes uint8 [N, 64, 64], kept bool [len(masks)])``."""
    kept, silhouettes = [], []
    for mask in masks:
        silhouette = normalize_mask(mask)
        kept.append(silhouette is not None)
        if silhouette is not None:
            silhouettes.append(silhouette)
    stacked = np.stack(silhouettes) if silhouettes else np.zeros((0, SIZE, SIZE), dtype=np.uint8)
    return stacked, np.array(kept, dtype=bool)
