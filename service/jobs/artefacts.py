"""What a job leaves to look at: each track's thumbnail and contact sheet, the silhouettes a preview
keeps for a later enrollment, and the identify video with names on the boxes.

They live under ``DATA_DIR/artefacts/<job id>/`` (the uploaded input, under ``DATA_DIR/jobs/``, goes
when the job ends) and go with the job when job retention deletes it. One decoding pass over the
video, the same frames, rotation and limits as the pipeline's, so a box drawn on frame ``n`` is the
box the tracker gave for frame ``n``.
"""

import logging
import math
import re
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline.decode import VideoSource
from pipeline.extract import PipelineConfig
from pipeline.output import contact_sheet
from pipeline.tracks import Track
from service.answers import TrackAnswer

log = logging.getLogger(__name__)

# what GET /v1/jobs/{id}/artefacts/{name} serves; a preview's silhouettes (.npy) stay inside
SERVED_NAME = re.compile(r"track-[0-9]{1,9}\.jpg|track-[0-9]{1,9}-sheet\.png|annotated\.webm")  # fullmatch
MEDIA_TYPES = {".jpg": "image/jpeg", ".png": "image/png", ".webm": "video/webm"}
THUMBNAIL_HEIGHT = 192  # px: a card's picture of the person
VIDEO_MAX_WIDTH = 640  # px: the annotated video is for looking, not for measuring
VIDEO_MAX_FPS = 15  # its frame rate at most: VP8 encoding is most of the rendering time
THUMBNAIL_MARGIN = 0.15  # share of the box added around the person
MATCH_COLOUR = (60, 180, 75)  # BGR: green for a match
OTHER_COLOUR = (0, 165, 255)  # orange for unknown
UNUSABLE_COLOUR = (160, 160, 160)  # grey for a track too short to decide


def artefact_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / "artefacts" / job_id


def artefact_url(job_id: str, name: str) -> str:
    return f"/v1/jobs/{job_id}/artefacts/{name}"


def remove_artefacts(data_dir: Path, job_id: str) -> None:
    shutil.rmtree(artefact_dir(data_dir, job_id), ignore_errors=True)


def sequence_sheet(data_dir: Path, sequence_id: int) -> Path:
    """An enrolled sequence's contact sheet: kept with the sequence (not the job), removed with it."""
    return data_dir / "sequences" / f"{sequence_id}.png"


def write_sequence_sheets(data_dir: Path, sheets: Mapping[int, np.ndarray]) -> None:
    """Contact sheets of just-enrolled sequences (id → silhouettes); a full disk costs the pictures only."""
    for sequence_id, silhouettes in sheets.items():
        path = sequence_sheet(data_dir, sequence_id)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            written = cv2.imwrite(str(path), contact_sheet(silhouettes))
        except OSError:
            written = False
        if not written:
            path.unlink(missing_ok=True)


def remove_sequence_sheets(data_dir: Path, sequence_ids: Sequence[int]) -> None:
    for sequence_id in sequence_ids:
        sequence_sheet(data_dir, sequence_id).unlink(missing_ok=True)


@dataclass(frozen=True)
class Label:
    """What the annotated video writes over a track's box."""

    text: str
    colour: tuple[int, int, int]


@dataclass
class Artefacts:
    """The names written, per track id; ``video`` is None unless labels were given."""

    thumbnails: dict[int, str] = field(default_factory=dict)
    sheets: dict[int, str] = field(default_factory=dict)
    video: str | None = None


def label_of(answer: TrackAnswer) -> Label:
    """A track's label in the identify video: who (with the confidence), ``unknown``, or too short to tell."""
    if answer.decision == "match" and answer.subject is not None:
        who = answer.subject.name or answer.subject.external_id or answer.subject.id[:8]
        if answer.confidence is not None:  # as the console shows it: one decimal, rounded down, never "100%"
            return Label(f"{who} {math.floor(1000 * answer.confidence) / 10:.1f}%", MATCH_COLOUR)
        return Label(f"{who} {answer.score:.2f}" if answer.score is not None else who, MATCH_COLOUR)
    if answer.decision == "unknown":
        return Label("unknown", OTHER_COLOUR)
    return Label("too short", UNUSABLE_COLOUR)


def artefact_links(job_id: str, made: Artefacts, track_id: int) -> dict[str, str | None]:
    """A track's ``thumbnail`` and ``contact_sheet`` URLs (None where nothing was written)."""
    thumbnail, sheet = made.thumbnails.get(track_id), made.sheets.get(track_id)
    return {
        "thumbnail": artefact_url(job_id, thumbnail) if thumbnail else None,
        "contact_sheet": artefact_url(job_id, sheet) if sheet else None,
    }


def silhouettes_name(track_id: int) -> str:
    return f"track-{track_id}.npy"


def render(
    source: str | Path,
    config: PipelineConfig,
    tracks: list[Track],
    folder: Path,
    labels: Mapping[int, Label] | None = None,
    tick: Callable[[], None] = lambda: None,
) -> Artefacts:
    """Write each track's thumbnail (the person at mid-track) and contact sheet into ``folder``, and
    with ``labels`` the video with every labelled track's box and label (VP8 WebM, plays in browsers).
    ``tick`` is called on every frame (a job's heartbeat and cancel check: it may raise to stop). Without
    labels decoding ends at the last thumbnail's frame."""
    folder.mkdir(parents=True, exist_ok=True)
    made = Artefacts()
    for track in tracks:
        if track.good_frames:
            name = f"track-{track.track_id}-sheet.png"
            if cv2.imwrite(str(folder / name), contact_sheet(track.silhouettes)):
                made.sheets[track.track_id] = name
    middles: dict[int, list[Track]] = {}  # frame → the tracks whose middle frame it is
    for track in tracks:
        if track.boxes:
            middles.setdefault(track.boxes[len(track.boxes) // 2][0], []).append(track)
    boxes_at: dict[int, list[tuple[Track, tuple[float, float, float, float]]]] = {}
    if labels is not None:
        for track in tracks:
            if track.track_id in labels:
                for frame_index, box in track.boxes:
                    boxes_at.setdefault(frame_index, []).append((track, box))
    writer = _VideoWriter(folder / "annotated.webm") if labels else None  # no one to label: no video
    last_needed = max(middles, default=-1)  # without a video, decoding stops at the last thumbnail
    try:
        with VideoSource(source, config.limits, config.rotate) as video:
            rate = (video.info.fps or 25.0) / config.limits.frame_stride  # decoded frames per second of video
            every = max(1, round(rate / VIDEO_MAX_FPS))  # the video keeps every n-th of them
            for frame in video.frames():
                tick()
                for track in middles.get(frame.index, []):
                    name = f"track-{track.track_id}.jpg"
                    if _write_thumbnail(frame.image, track.boxes[len(track.boxes) // 2][1], folder / name):
                        made.thumbnails[track.track_id] = name
                if writer is not None and labels is not None and frame.index % every == 0:
                    image = frame.image.copy()
                    for labelled, box in boxes_at.get(frame.index, []):
                        _draw(image, box, labels[labelled.track_id])
                    writer.write(image, rate / every)
                if writer is None and frame.index >= last_needed:
                    break
    except BaseException:
        if writer is not None:
            writer.abandon()
        raise
    if writer is not None:
        made.video = "annotated.webm" if writer.close() else None
    return made


def save_silhouettes(folder: Path, track: Track) -> None:
    """Keep a usable track's silhouettes, so that an enrollment from a preview needs no second pipeline run."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / silhouettes_name(track.track_id), track.silhouettes, allow_pickle=False)


def load_silhouettes(folder: Path, track_id: int) -> np.ndarray | None:
    path = folder / silhouettes_name(track_id)
    return np.load(path, allow_pickle=False) if path.is_file() else None


def _write_thumbnail(image: np.ndarray, box: tuple[float, float, float, float], path: Path) -> bool:
    x1, y1, x2, y2 = box
    margin_x, margin_y = (x2 - x1) * THUMBNAIL_MARGIN, (y2 - y1) * THUMBNAIL_MARGIN
    height, width = image.shape[:2]
    crop = image[
        max(0, int(y1 - margin_y)) : min(height, int(y2 + margin_y)),
        max(0, int(x1 - margin_x)) : min(width, int(x2 + margin_x)),
    ]
    if crop.size == 0:
        return False
    scale = THUMBNAIL_HEIGHT / crop.shape[0]
    crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), THUMBNAIL_HEIGHT), interpolation=cv2.INTER_AREA)
    return bool(cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 85]))


def _draw(image: np.ndarray, box: tuple[float, float, float, float], label: Label) -> None:
    x1, y1, x2, y2 = (int(v) for v in box)
    thickness = max(2, image.shape[0] // 360)
    scale = max(0.5, image.shape[0] / 900)
    cv2.rectangle(image, (x1, y1), (x2, y2), label.colour, thickness)
    (text_w, text_h), base = cv2.getTextSize(label.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    if text_w + 6 > x2 - x1:  # no wider than its box: side by side walkers' labels would cover each other
        shrink = max(0.35 / scale, (x2 - x1 - 6) / text_w)  # the font at 0.35 at the smallest
        scale, thickness = scale * shrink, max(1, round(thickness * shrink))
        (text_w, text_h), base = cv2.getTextSize(label.text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = max(0, y1 - text_h - base - 4)
    x1 = max(0, min(x1, image.shape[1] - text_w - 6))  # the whole label inside the frame
    cv2.rectangle(image, (x1, top), (x1 + text_w + 6, top + text_h + base + 4), label.colour, -1)
    cv2.putText(
        image,
        label.text,
        (x1 + 3, top + text_h + 2),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        thickness,
        cv2.LINE_AA,
    )


class _VideoWriter:
    """VP8 in WebM, at most ``VIDEO_MAX_WIDTH`` wide, opened at the first frame (its size and rate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.size = (0, 0)

    def write(self, image: np.ndarray, fps: float) -> None:
        if self.container is None:
            height, width = image.shape[:2]
            scale = min(1.0, VIDEO_MAX_WIDTH / width)
            self.size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
            self.container = av.open(str(self.path), mode="w", format="webm")
            self.stream = self.container.add_stream("libvpx", rate=Fraction(fps).limit_denominator(1001))
            self.stream.width, self.stream.height = self.size
            self.stream.pix_fmt = "yuv420p"
            self.stream.options = {"deadline": "realtime", "cpu-used": "8", "b": "1M"}
        assert self.stream is not None
        small = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        for packet in self.stream.encode(av.VideoFrame.from_ndarray(small, format="bgr24")):
            self.container.mux(packet)

    def abandon(self) -> None:
        """Drop a half-written video (rendering stopped): close what is open, ignore what fails now."""
        if self.container is not None:
            try:
                self.container.close()
            except Exception:  # the first error is the one reported; this one only frees the file
                log.debug("closing an abandoned video failed", exc_info=True)
        self.path.unlink(missing_ok=True)

    def close(self) -> bool:
        """Finish the file; False when no frame was written (nothing to show)."""
        if self.container is None:
            return False
        assert self.stream is not None
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
        return True
