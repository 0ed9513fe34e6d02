"""ByteTrack (Zhang et al., ECCV 2022) for the default detector, written for GaitID.

Why our own: the default pipeline must run without AGPL code, and ultralytics' tracker is the
only reason it would import ultralytics. The algorithm, per frame:

1. Every track's box is predicted by a constant-velocity Kalman filter on (centre x, centre y,
   aspect ratio, height).
2. Confident detections are matched to the tracked and the recently lost tracks by IoU (fused
   with the detection score), with a minimum-cost assignment.
3. Tracks still unmatched get a second chance with the low-score detections (partly occluded
   people), by IoU alone; tracks that still find nothing are lost, kept ``track_buffer`` frames
   for re-identification by position, then removed.
4. A track born in the previous frame is confirmed only when this frame's detections continue
   it; remaining confident detections start new tracks.

The tuning keys are those of ``pipeline/trackers/gaitid_bytetrack.yaml``.
"""

from dataclasses import dataclass
from enum import Enum

import lap
import numpy as np

# Kalman noise, relative to the box height: position 1/20, velocity 1/160 per frame.
POSITION_NOISE = 1.0 / 20
VELOCITY_NOISE = 1.0 / 160
UNCONFIRMED_MATCH = 0.7  # cost gate for continuing a one-frame-old track
LOW_SCORE_MATCH = 0.5  # cost gate of the second (low-score) association


@dataclass(frozen=True)
class ByteTrackSettings:
    track_high_thresh: float = 0.3
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.35
    track_buffer: int = 60
    match_thresh: float = 0.85
    fuse_score: bool = True

    @classmethod
    def from_mapping(cls, values: dict) -> "ByteTrackSettings":
        known = {k: values[k] for k in cls.__dataclass_fields__ if k in values}
        return cls(**known)


class KalmanBox:
    """Constant-velocity Kalman filter over ``(cx, cy, aspect, height)`` and their velocities."""

    def __init__(self) -> None:
        self.motion = np.eye(8)
        self.motion[:4, 4:] = np.eye(4)
        self.observe = np.eye(4, 8)

    @staticmethod
    def _scales(height: float, aspect_small: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
        position = np.array([POSITION_NOISE * height, POSITION_NOISE * height, aspect_small, POSITION_NOISE * height])
        velocity = np.array([VELOCITY_NOISE * height, VELOCITY_NOISE * height, 1e-5, VELOCITY_NOISE * height])
        return position, velocity

    def start(self, measurement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        position, velocity = self._scales(measurement[3])
        mean = np.concatenate([measurement, np.zeros(4)])
        covariance = np.diag(np.concatenate([2 * position, 10 * velocity]) ** 2)
        return mean, covariance

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        position, velocity = self._scales(mean[3], 1e-2)
        noise = np.diag(np.concatenate([position, velocity]) ** 2)
        return self.motion @ mean, self.motion @ covariance @ self.motion.T + noise

    def correct(
        self, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        position, _ = self._scales(mean[3], 1e-1)
        projected = self.observe @ mean
        innovation_cov = self.observe @ covariance @ self.observe.T + np.diag(position**2)
        gain = np.linalg.solve(innovation_cov, self.observe @ covariance).T
        mean = mean + gain @ (measurement - projected)
        covariance = covariance - gain @ innovation_cov @ gain.T
        return mean, covariance


def _to_xyah(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = box
    height = max(y2 - y1, 1e-6)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / height, height])


class TrackState(Enum):
    NEW = "new"  # born last frame, not confirmed yet
    TRACKED = "tracked"
    LOST = "lost"
    REMOVED = "removed"


@dataclass
class Track:
    track_id: int
    mean: np.ndarray
    covariance: np.ndarray
    score: float
    state: TrackState
    last_frame: int
    detection: int = -1  # index of this frame's detection, -1 when carried by prediction

    @property
    def xyxy(self) -> np.ndarray:
        cx, cy, aspect, height = self.mean[:4]
        width = aspect * height
        return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])

    @property
    def height(self) -> float:
        return float(self.mean[3])

    @property
    def velocity(self) -> np.ndarray:
        """Per-frame change of (cx, cy, aspect, height)."""
        return self.mean[4:]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of ``[n, 4]`` and ``[m, 4]`` xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def assign(cost: np.ndarray, limit: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Minimum-cost pairs with cost ≤ ``limit``, and the unmatched rows and columns."""
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    _, row_to_col, col_to_row = lap.lapjv(cost, extend_cost=True, cost_limit=limit)
    pairs = [(r, int(c)) for r, c in enumerate(row_to_col) if c >= 0]
    return pairs, [r for r, c in enumerate(row_to_col) if c < 0], [c for c, r in enumerate(col_to_row) if r < 0]


class ByteTracker:
    """One video's tracks; ``update`` takes a frame's detections, ``predict`` carries a skipped frame."""

    def __init__(self, settings: ByteTrackSettings) -> None:
        self.settings = settings
        self.kalman = KalmanBox()
        self.tracks: list[Track] = []  # every track not removed
        self.frame = 0
        self.next_id = 1

    def active(self) -> list[Track]:
        """Confirmed tracks that are not lost: the people in view."""
        return [t for t in self.tracks if t.state is TrackState.TRACKED]

    def unconfirmed(self) -> bool:
        return any(t.state is TrackState.NEW for t in self.tracks)

    def lost(self) -> bool:
        """Whether a track is lost but may still be found again (someone hidden for a moment)."""
        return any(t.state is TrackState.LOST for t in self.tracks)

    def predict(self) -> None:
        """Advance every confirmed or lost track one frame (what ``update`` does before matching)."""
        for track in self.tracks:
            track.detection = -1
            if track.state is TrackState.NEW:
                continue
            if track.state is TrackState.LOST:
                track.mean[7] = 0  # a lost box does not keep growing
            track.mean, track.covariance = self.kalman.predict(track.mean, track.covariance)

    def update(self, boxes: np.ndarray, scores: np.ndarray) -> list[Track]:
        """Match this frame's detections (xyxy ``[n, 4]``, scores ``[n]``); returns the tracks seen now."""
        self.frame += 1
        s = self.settings
        self.predict()
        high = np.flatnonzero(scores >= s.track_high_thresh)
        low = np.flatnonzero((scores > s.track_low_thresh) & (scores < s.track_high_thresh))

        pool = [t for t in self.tracks if t.state in (TrackState.TRACKED, TrackState.LOST)]
        cost = 1 - iou_matrix(np.array([t.xyxy for t in pool]).reshape(-1, 4), boxes[high])
        if s.fuse_score and cost.size:
            cost = 1 - (1 - cost) * scores[high][None, :]
        pairs, unmatched_tracks, unmatched_high = assign(cost, s.match_thresh)
        for t, d in pairs:
            self._continue(pool[t], high[d], boxes, scores)

        remaining = [pool[t] for t in unmatched_tracks if pool[t].state is TrackState.TRACKED]
        cost = 1 - iou_matrix(np.array([t.xyxy for t in remaining]).reshape(-1, 4), boxes[low])
        pairs, still, _ = assign(cost, LOW_SCORE_MATCH)
        for t, d in pairs:
            self._continue(remaining[t], low[d], boxes, scores)
        for t in still:
            remaining[t].state = TrackState.LOST

        newborn = [t for t in self.tracks if t.state is TrackState.NEW]
        left = high[unmatched_high]
        cost = 1 - iou_matrix(np.array([t.xyxy for t in newborn]).reshape(-1, 4), boxes[left])
        if s.fuse_score and cost.size:
            cost = 1 - (1 - cost) * scores[left][None, :]
        pairs, dropped, unused = assign(cost, UNCONFIRMED_MATCH)
        for t, d in pairs:
            self._continue(newborn[t], left[d], boxes, scores)
        for t in dropped:
            newborn[t].state = TrackState.REMOVED

        for d in left[unused]:
            if scores[d] >= s.new_track_thresh:
                self._start(d, boxes, scores)

        for track in self.tracks:
            if track.state is TrackState.LOST and self.frame - track.last_frame > s.track_buffer:
                track.state = TrackState.REMOVED
        self.tracks = [t for t in self.tracks if t.state is not TrackState.REMOVED]
        return [t for t in self.active() if t.detection >= 0]

    def _continue(self, track: Track, index: int, boxes: np.ndarray, scores: np.ndarray) -> None:
        if track.state is TrackState.NEW:  # its first frame set the state; now the velocity starts
            track.mean, track.covariance = self.kalman.predict(track.mean, track.covariance)
        track.mean, track.covariance = self.kalman.correct(track.mean, track.covariance, _to_xyah(boxes[index]))
        track.state = TrackState.TRACKED
        track.score = float(scores[index])
        track.last_frame = self.frame
        track.detection = int(index)

    def _start(self, index: int, boxes: np.ndarray, scores: np.ndarray) -> None:
        mean, covariance = self.kalman.start(_to_xyah(boxes[index]))
        # the first frame's people are certain; later ones wait for a second sighting
        state = TrackState.TRACKED if self.frame == 1 else TrackState.NEW
        self.tracks.append(Track(self.next_id, mean, covariance, float(scores[index]), state, self.frame, int(index)))
        self.next_id += 1
