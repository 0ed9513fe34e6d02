"""What ``gaitid silhouettes`` writes: tracks.json, one .npy and one contact sheet per track,
and optionally the video with boxes and track ids drawn on it."""

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from pipeline.decode import Frame
from pipeline.detect import Detection
from pipeline.extract import PipelineResult
from pipeline.summary import TrackSummary
from pipeline.tracks import Track

SHEET_COLUMNS = 12
SHEET_FRAMES = 36


def contact_sheet(silhouettes: np.ndarray, columns: int = SHEET_COLUMNS, frames: int = SHEET_FRAMES) -> np.ndarray:
    """Evenly spaced silhouettes in a grid, white on black, 1-px grey separators."""
    if len(silhouettes) == 0:
        return np.zeros((64, 64), np.uint8)
    picks = np.linspace(0, len(silhouettes) - 1, min(frames, len(silhouettes))).round().astype(int)
    tiles = [silhouettes[i] for i in picks]
    rows = -(-len(tiles) // columns)
    sheet = np.full((rows * 65 + 1, min(columns, len(tiles)) * 65 + 1), 96, np.uint8)
    for n, tile in enumerate(tiles):
        r, c = divmod(n, columns)
        sheet[1 + r * 65 : 1 + r * 65 + 64, 1 + c * 65 : 1 + c * 65 + 64] = tile
    return sheet


def track_entry(track: Track) -> dict[str, Any]:
    """A track in tracks.json: its :class:`TrackSummary` plus the frame range, why frames were lost and sample boxes."""
    return {
        **TrackSummary.of(track).model_dump(),
        "first_frame": track.first_frame,
        "last_frame": track.last_frame,
        "lost_frames": track.problems,
        "boxes": [{"frame": f, "xyxy": [round(v, 1) for v in box]} for f, box in track.sample_boxes()],
    }


def write_outputs(result: PipelineResult, out_dir: Path) -> Path:
    """Write tracks.json and, per track with silhouettes, ``<id>.npy`` and ``<id>.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for track in result.tracks:
        if track.good_frames:
            np.save(out_dir / f"{track.track_id}.npy", track.silhouettes)
            cv2.imwrite(str(out_dir / f"{track.track_id}.png"), contact_sheet(track.silhouettes))
    info = result.info
    document = {
        "source": result.source,
        "video": {
            "width": info.width,
            "height": info.height,
            "fps": round(info.fps, 3),
            "duration_s": info.duration_s,
            "rotation": info.rotation,
        },
        "frames_processed": result.frames,
        "truncated": result.truncated,
        "kept_tracks": len(result.kept),
        "message": f"{len(result.kept)} walking person(s) found" if result.kept else "no walking person found",
        "tracks": [track_entry(t) for t in result.tracks],
    }
    path = out_dir / "tracks.json"
    path.write_text(json.dumps(document, indent=1))
    return path


def _colour(track_id: int) -> tuple[int, int, int]:
    hue = (track_id * 47) % 180
    bgr = cv2.cvtColor(np.array([[[hue, 220, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


class Annotator:
    """Writes the video with each tracked box and its id (OpenCV's built-in Hershey font)."""

    def __init__(self, path: Path, fps: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=Fraction(fps or 25).limit_denominator(1001))
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": "23", "preset": "veryfast"}
        self.opened = False

    def __call__(self, frame: Frame, detections: list[Detection]) -> None:
        image = frame.image.copy()
        for d in detections:
            x1, y1, x2, y2 = (int(v) for v in d.box)
            colour = _colour(d.track_id)
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, 2)
            cv2.putText(image, f"#{d.track_id}", (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2)
        if not self.opened:
            self.stream.width, self.stream.height = image.shape[1] // 2 * 2, image.shape[0] // 2 * 2
            self.opened = True
        image = image[: self.stream.height, : self.stream.width]
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
            self.container.mux(packet)

    def close(self) -> None:
        if self.opened:
            for packet in self.stream.encode():
                self.container.mux(packet)
        self.container.close()
