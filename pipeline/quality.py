"""Per-frame quality checks and the per-track verdict.

A frame of a track is *good* when its box is tall enough and upright (taller than wide, as a
walking person is), stays clear of the image border, no other person
overlaps it heavily, and its mask looks like a person (neither a sliver nor a filled box);
normalization may still drop it (mask too small). A track is kept when it has at least
``min_good_frames`` good frames; otherwise it is rejected, with the reason that cost it most.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline import defaults
from pipeline.detect import Detection


@dataclass(frozen=True)
class QualityConfig:
    border_margin_px: int = 2
    max_overlap: float = 0.3  # share of this box covered by another person's box
    min_fill: float = 0.12  # mask pixels / box pixels
    max_fill: float = 0.92
    min_height_coverage: float = 0.5  # mask rows / box rows
    min_good_frames: int = defaults.MIN_GOOD_FRAMES
    min_box_height_px: int = 40
    min_aspect: float = 1.2  # box height / width: a walking person stands; wider boxes are objects or lying people


def touches_border(box: tuple[float, float, float, float], shape: tuple[int, ...], margin: int) -> bool:
    height, width = shape[:2]
    x1, y1, x2, y2 = box
    return x1 <= margin or y1 <= margin or x2 >= width - 1 - margin or y2 >= height - 1 - margin


def covered_share(box: tuple[float, float, float, float], others: Sequence[tuple[float, float, float, float]]) -> float:
    """The largest share of ``box``'s area that any single other box covers."""
    x1, y1, x2, y2 = box
    area = max(1e-6, (x2 - x1) * (y2 - y1))
    share = 0.0
    for ox1, oy1, ox2, oy2 in others:
        w, h = min(x2, ox2) - max(x1, ox1), min(y2, oy2) - max(y1, oy1)
        if w > 0 and h > 0:
            share = max(share, w * h / area)
    return share


def frame_problem(
    detection: Detection, others: Sequence[Detection], shape: tuple[int, ...], config: QualityConfig
) -> str | None:
    """Why a box cannot give a good silhouette in this frame, before segmentation; None if it can."""
    x1, y1, x2, y2 = detection.box
    if y2 - y1 < config.min_box_height_px:
        return "too_small"
    if y2 - y1 < config.min_aspect * (x2 - x1):
        return "not_upright"
    if touches_border(detection.box, shape, config.border_margin_px):
        return "touches_border"
    if covered_share(detection.box, [o.box for o in others]) > config.max_overlap:
        return "occluded"
    return None


def mask_problem(mask: np.ndarray | None, config: QualityConfig) -> str | None:
    """Why a box-crop mask is not a plausible person; None if it is."""
    if mask is None or mask.size == 0:
        return "no_mask"
    foreground = mask > 127
    fill = float(foreground.mean())
    if not config.min_fill <= fill <= config.max_fill:
        return "implausible_mask"
    rows = np.flatnonzero(foreground.any(axis=1))
    if len(rows) == 0 or (rows[-1] - rows[0] + 1) / mask.shape[0] < config.min_height_coverage:
        return "implausible_mask"
    return None


def track_verdict(good_frames: int, problems: Counter[str], config: QualityConfig) -> tuple[bool, str]:
    """``(kept, reason)`` for a finished track."""
    if good_frames >= config.min_good_frames:
        return True, f"{good_frames} good frames"
    if problems:
        worst, count = problems.most_common(1)[0]
        return (
            False,
            f"only {good_frames} good frames (< {config.min_good_frames}); most frames lost to {worst} ({count})",
        )
    return False, f"only {good_frames} good frames (< {config.min_good_frames})"
