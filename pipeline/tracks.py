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


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _same_walk(first: TrackBuilder, later: TrackBuilder, max_gap_s: float) -> bool:
    """Whether ``later`` continues ``first``: a duplicate while both live, or a resumption after a short gap."""
    boxes = dict(first.boxes)
    shared = [(boxes[f], box) for f, box in later.boxes if f in boxes]
    if shared:  # both alive at once: the same person only if every shared frame has near-identical boxes
        return all(box_iou(a, b) >= 0.5 for a, b in shared)
    if later.first_frame <= first.last_frame or later.first_time_s - first.last_time_s > max_gap_s:
        return False
    end, start = first.boxes[-1][1], later.boxes[0][1]
    height = end[3] - end[1]
    distance = np.hypot((end[0] + end[2] - start[0] - start[2]) / 2, (end[1] + end[3] - start[1] - start[3]) / 2)
    return box_iou(end, start) >= 0.1 or distance <= 0.75 * height


def _absorb(first: TrackBuilder, later: TrackBuilder) -> None:
    """Merge ``later`` into ``first``, keeping ``first``'s data on frames both have."""
    taken = set(first.frame_ids)
    pairs = sorted(
        list(zip(first.frame_ids, first.silhouettes, strict=True))
        + [(f, s) for f, s in zip(later.frame_ids, later.silhouettes, strict=True) if f not in taken],
        key=lambda pair: pair[0],
    )[:MAX_SEQUENCE_FRAMES]
    first.frame_ids = [f for f, _ in pairs]
    first.silhouettes = [s for _, s in pairs]
    seen = {f for f, _ in first.boxes}
    first.boxes = sorted(first.boxes + [(f, b) for f, b in later.boxes if f not in seen], key=lambda fb: fb[0])
    first.problems.update(later.problems)
    first.seen_frames = len(first.boxes)
    if later.last_frame > first.last_frame:
        first.last_frame, first.last_time_s = later.last_frame, later.last_time_s


def stitch_fragments(builders: list[TrackBuilder], max_gap_s: float = 1.0) -> list[TrackBuilder]:
    """Join tracks that are one walk broken by the tracker (identity switches, duplicate boxes).

    A gap is measured in seconds, so low-frame-rate crowd footage does not join strangers.
    """
    merged: list[TrackBuilder] = []
    for builder in sorted(builders, key=lambda b: (b.first_frame, b.track_id)):
        candidates = [m for m in merged if m.first_frame <= builder.first_frame and _same_walk(m, builder, max_gap_s)]
        if candidates:
            _absorb(max(candidates, key=lambda m: m.last_frame), builder)
        else:
            merged.append(builder)
    return merged


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
    boxes: list[tuple[int, tuple[float, float, float, float]]]  # (frame, x1 y1 x2 y2) for every frame seen
    problems: dict[str, int]

    @property
    def good_frames(self) -> int:
        return len(self.silhouettes)

    def sample_boxes(self) -> list[tuple[int, tuple[float, float, float, float]]]:
        """A few boxes spread over the track, for reports."""
        if len(self.boxes) <= BOX_SAMPLES:
            return list(self.boxes)
        picks = np.linspace(0, len(self.boxes) - 1, BOX_SAMPLES).round().astype(int)
        return [self.boxes[i] for i in picks]

    def time_of(self, frame: int) -> float:
        """When ``frame`` was shown, interpolated between the track's first and last frame times."""
        if self.last_frame == self.first_frame:
            return self.start_s
        return self.start_s + (frame - self.first_frame) * (self.end_s - self.start_s) / (
            self.last_frame - self.first_frame
        )

    def box_near(self, time_s: float, within_s: float = 0.5) -> tuple[float, float, float, float] | None:
        """The box of the frame closest to ``time_s``, if the track was seen within ``within_s`` of it."""
        if not self.boxes:
            return None
        frame, box = min(self.boxes, key=lambda fb: abs(self.time_of(fb[0]) - time_s))
        return box if abs(self.time_of(frame) - time_s) <= within_s else None
