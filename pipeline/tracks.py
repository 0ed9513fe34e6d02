"""Per-track accumulation: silhouettes are normalized as frames arrive, so memory stays bounded."""

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from pipeline.normalize import normalize_mask

MAX_SEQUENCE_FRAMES = 1000  # what the gait models take; later good frames are not kept
BOX_SAMPLES = 5


@dataclass
class TrackBuilder:
    """Everything known about one track while the video plays."""

    track_id: int
    first_frame: int
    first_time_s: float
    last_frame: int = 0
    last_time_s: float = 0.0
    silhouettes: list[np.ndarray] = field(default_factory=list)
    frame_ids: list[int] = field(default_factory=list)
    boxes: list[tuple[int, tuple[float, float, float, float]]] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)
    seen_frames: int = 0

    def saw(self, frame_index: int, time_s: float, box: tuple[float, float, float, float]) -> None:
        self.last_frame, self.last_time_s = frame_index, time_s
        self.seen_frames += 1
        self.boxes.append((frame_index, box))

    def add_mask(self, frame_index: int, mask: np.ndarray) -> bool:
        """Normalize and keep a good frame's mask; False when normalization drops it."""
        if len(self.silhouettes) >= MAX_SEQUENCE_FRAMES:
            return True
        silhouette = normalize_mask(mask)
        if silhouette is None:
            self.problems["mask_too_small"] += 1
            return False
        self.silhouettes.append(silhouette)
        self.frame_ids.append(frame_index)
        return True


@dataclass(frozen=True)
class Track:
    """A finished track: the silhouette sequence and the facts a user needs to trust it."""

    track_id: int
    kept: bool
    reason: str
    first_frame: int
    last_frame: int
    start_s: float
    end_s: float
    seen_frames: int
    silhouettes: np.ndarray  # uint8 [N, 64, 64]
    frame_ids: list[int]
    sample_boxes: list[tuple[int, tuple[float, float, float, float]]]
    problems: dict[str, int]

    @property
    def good_frames(self) -> int:
        return len(self.silhouettes)


def sample_boxes(
    boxes: list[tuple[int, tuple[float, float, float, float]]],
) -> list[tuple[int, tuple[float, float, float, float]]]:
    """A few boxes spread over the track, for reports."""
    if len(boxes) <= BOX_SAMPLES:
        return list(boxes)
    picks = np.linspace(0, len(boxes) - 1, BOX_SAMPLES).round().astype(int)
    return [boxes[i] for i in picks]
