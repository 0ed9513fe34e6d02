"""Training augmentation that makes laboratory silhouettes look like our pipeline's output on real video.

CASIA-B silhouettes are clean masks of people filmed at about 100-200 px, level with the camera.
In the footage the service sees, people are often 50-120 px tall (their masks upscaled to 64 by
the normalisation), seen from above, with ragged mask boundaries, cut by the frame edge or hidden
in part by someone else. The model trained on clean masks met none of that (default@3: top-1
wrong for every walker of the high-camera probe clip). This module re-renders a training
sequence through the same steps as the pipeline:

1. a high-camera keystone: the upper body widened against the legs (optional, per sequence);
2. the mask at the size the person has in the video (``heights`` px tall), made binary as a
   segmenter's mask is;
3. ragged boundaries: per frame, a one-pixel erosion or dilation at that size;
4. an occluding band (another person at one side, or the frame edge at the bottom) over a run
   of frames;
5. the pipeline's own OpenGait normalisation back to 64×64 (:func:`pipeline.normalize.normalize_mask`).

Everything draws from the batch's generator, so batches stay a pure function of (seed, iteration).
"""

from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.normalize import normalize_mask

_KERNEL = np.ones((2, 2), np.uint8)


@dataclass(frozen=True)
class FootageConfig:
    """Chances and ranges; ``probability`` 0 leaves every sequence as it is (the OpenGait recipe)."""

    probability: float = 0.0  # of re-rendering a sequence at all
    heights: tuple[int, int] = (48, 120)  # the person's height in the video, px
    perspective: float = 0.3  # chance of a high-camera keystone
    jitter: float = 0.5  # per frame, chance of a one-pixel erosion or dilation
    occlusion: float = 0.3  # chance of an occluding band over part of the sequence


def _keystone(width: int, height: int, widen: float) -> np.ndarray:
    """Perspective that widens the top by ``widen`` of the width on each side (a camera looking down)."""
    source = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    shift = widen * width
    target = np.float32([[-shift, 0], [width + shift, 0], [width, height], [0, height]])
    return cv2.getPerspectiveTransform(source, target)


def _band(height: int, width: int, rng: np.random.Generator) -> tuple[slice, slice]:
    """Where an occluder covers the frame: a side band (another person) or a bottom band (frame edge)."""
    if rng.random() < 0.5:
        cover = int(rng.integers(width // 6, width // 3 + 1))
        columns = slice(0, cover) if rng.random() < 0.5 else slice(width - cover, width)
        return slice(0, height), columns
    cover = int(rng.integers(height // 8, height // 4 + 1))
    return slice(height - cover, height), slice(0, width)


def rerender(sils: np.ndarray, config: FootageConfig, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``[T, 64, 64]`` → uint8 ``[T, 64, 64]`` as if cut from video (see the module docstring)."""
    if config.probability <= 0 or rng.random() >= config.probability:
        return sils
    count, height, width = sils.shape
    person = int(rng.integers(config.heights[0], config.heights[1] + 1))
    scale = person / height
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    warp = _keystone(width, height, float(rng.uniform(0.05, 0.2))) if rng.random() < config.perspective else None
    occluded = np.zeros(count, dtype=bool)
    band = None
    if rng.random() < config.occlusion:
        start, length = int(rng.integers(0, count)), int(rng.integers(max(1, count // 4), count + 1))
        occluded[start : start + length] = True
        band = _band(size[1], size[0], rng)
    out = sils.copy()
    for index, frame in enumerate(sils):
        mask = cv2.warpPerspective(frame, warp, (width, height)) if warp is not None else frame
        small = (cv2.resize(mask, size, interpolation=cv2.INTER_AREA) >= 128).astype(np.uint8) * 255
        if rng.random() < config.jitter:
            small = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(small, _KERNEL)
        if band is not None and occluded[index]:
            small[band] = 0
        normalized = normalize_mask(small)
        if normalized is not None:  # too little left (as the pipeline drops it): keep the clean frame
            out[index] = normalized
    return out


CLEAN = FootageConfig()  # no re-rendering: the OpenGait recipe
