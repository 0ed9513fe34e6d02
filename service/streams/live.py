"""Tracks on a live stream: when each is due an identification, and when a person has left.

A track is identified as soon as it has ``min_good_frames`` good silhouettes, then again every
``refine_frames`` more while the person stays in view (a longer sequence gives a surer answer),
until the model's frame limit, and once more when the person leaves if frames came in since.
A track not seen for ``lost_seconds`` has ended and its memory is freed; boxes are kept only for
the last few seconds.
"""

from dataclasses import dataclass

import numpy as np

from models.embedder import MAX_FRAMES
from pipeline.extract import FrameProcessor
from pipeline.tracks import TrackBuilder
from service.streams.reader import LiveFrame

BOX_HISTORY = 300  # boxes kept per track (for reports and snapshots)


@dataclass
class LiveTrack:
    """One person on the stream, with what has been said about them so far."""

    builder: TrackBuilder
    first_wall: float
    last_wall: float
    last_image: np.ndarray | None = None  # the latest frame showing the person (for the event snapshot)
    last_box: tuple[float, float, float, float] | None = None  # where, in that frame
    identified_frames: int = 0  # good frames at the last identification (0: never identified)
    updates: int = 0  # events emitted for this track
    last_answer: tuple[str, str | None] | None = None  # (decision, subject id) of the last event

    @property
    def good_frames(self) -> int:
        return len(self.builder.silhouettes)

    def silhouettes(self) -> np.ndarray:
        return np.stack(self.builder.silhouettes[:MAX_FRAMES])


class LiveTracks:
    """Feeds frames to a :class:`FrameProcessor` and keeps the per-track schedule."""

    def __init__(
        self, processor: FrameProcessor, min_good_frames: int, refine_frames: int, lost_seconds: float
    ) -> None:
        self.processor = processor
        self.min_good_frames, self.refine_frames, self.lost_seconds = min_good_frames, refine_frames, lost_seconds
        self.tracks: dict[int, LiveTrack] = {}

    def observe(self, item: LiveFrame) -> list[LiveTrack]:
        """Process one frame; returns the tracks due an identification now.

        Call :meth:`expire` after it to end the tracks of people who left."""
        detections = self.processor.process(item.frame)
        due = []
        for detection in detections:
            builder = self.processor.builders[detection.track_id]
            track = self.tracks.get(detection.track_id)
            if track is None:
                track = self.tracks[detection.track_id] = LiveTrack(builder, item.wall, item.wall)
            track.last_wall = item.wall
            track.last_image, track.last_box = item.frame.image, detection.box  # a reference, not a copy
            del builder.boxes[:-BOX_HISTORY]
            if self._due(track):
                due.append(track)
        return due

    def _due(self, track: LiveTrack) -> bool:
        good = track.good_frames
        if good < self.min_good_frames or track.identified_frames >= MAX_FRAMES:
            return False
        return track.identified_frames == 0 or good >= track.identified_frames + self.refine_frames

    def expire(self, now_wall: float) -> list[LiveTrack]:
        """End the tracks not seen for ``lost_seconds`` and free their silhouettes.

        Returns the ended tracks that deserve a last identification: identified before, with good
        frames added since.
        """
        ended = [t for t in self.tracks.values() if now_wall - t.last_wall > self.lost_seconds]
        for track in ended:
            del self.tracks[track.builder.track_id]
            self.processor.builders.pop(track.builder.track_id, None)
        return [t for t in ended if 0 < t.identified_frames < min(t.good_frames, MAX_FRAMES)]
