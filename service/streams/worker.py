"""One live stream being watched: read → detect/track/segment → identify → event, in one thread.

The reader thread keeps the newest frames; this thread takes them as fast as the pipeline
allows. A failure on one frame is recorded in the status and the stream goes on; a stream that
cannot be opened shows why and retries with back-off, without affecting any other stream.
"""

import logging
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pipeline.decode import Frame
from pipeline.extract import FrameProcessor
from service.context import ServiceContext
from service.db.tables import Stream, StreamEvent, utcnow
from service.metrics import STREAM_EVENTS
from service.recognition import WalkAnswer, answer_walk
from service.streams.events import record_event
from service.streams.live import LiveTrack, LiveTracks
from service.streams.reader import FrameBuffer, LiveFrame, RateMeter, StreamReader

log = logging.getLogger(__name__)
SNAPSHOT_MARGIN = 0.1  # share of the box added around the person in a snapshot
PIPELINE_RETRY_FIRST_S = 5.0
PIPELINE_RETRY_MAX_S = 120.0


@dataclass(frozen=True)
class StreamDefinition:
    """What a worker needs of a stream row; a changed ``revision`` means: restart with the new one."""

    id: str
    url: str
    max_fps: float
    roi: tuple[float, float, float, float] | None
    match_threshold: float | None
    revision: int

    @classmethod
    def of(cls, row: Stream) -> "StreamDefinition":
        roi = tuple(row.roi) if row.roi else None
        return cls(row.id, row.url, row.max_fps, roi, row.match_threshold, row.revision)  # type: ignore[arg-type]


@dataclass
class WorkerStats:
    """Counters for the status and for ``gaitid bench stream``."""

    frames_processed: int = 0
    events: int = 0
    # frame captured → event committed, for the latest events
    latencies_s: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


def crop_roi(image: np.ndarray, roi: tuple[float, float, float, float] | None) -> np.ndarray:
    """The region of interest ``(x1, y1, x2, y2)`` given as fractions of the frame."""
    if roi is None:
        return image
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(roi, (width, height, width, height), strict=True))
    return image[y1:y2, x1:x2]


class StreamWorker:
    """Watches one stream until stopped; ``status()`` is what the stream's status columns show.

    Events are written only while the stream's row names ``owner`` as its holder with a valid
    lease, so a worker that lost its lease (a stall, a takeover) cannot emit next to the new owner.
    """

    def __init__(self, ctx: ServiceContext, definition: StreamDefinition, owner: str, buffer_frames: int = 2) -> None:
        self.ctx, self.definition, self.owner = ctx, definition, owner
        self.buffer = FrameBuffer(buffer_frames)
        self.reader = StreamReader(definition.url, definition.max_fps, self.buffer)
        self.processed = RateMeter()
        self.stats = WorkerStats()
        self.error: str | None = None  # a processing error (the reader's connection errors are separate)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream {definition.id[:8]}", daemon=True)

    def start(self) -> None:
        """Start the thread; it loads the pipeline first and only then connects, so no frame waits on a model."""
        self._thread.start()

    def request_stop(self) -> None:
        """Ask both threads to stop without waiting (stopping many workers at once stays quick)."""
        self._stop.set()
        self.reader.request_stop()

    def stop(self, timeout: float = 3.0) -> None:
        self.request_stop()
        self.reader.stop(timeout)
        self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        now = time.monotonic()
        reader = self.reader
        # until the pipeline has started (and the reader with it), the stream's state is the pipeline's
        state = reader.state if reader.running else "error" if self.error else "starting"
        last = reader.last_frame_wall
        return {
            "state": state,
            "fps_in": round(reader.meter.current(now), 2),
            "fps_out": round(self.processed.current(now), 2),
            "frames_dropped": self.buffer.dropped,
            "last_frame_at": datetime.fromtimestamp(last, UTC) if last else None,
            "last_error": self.error or reader.last_error,
        }

    def _start_pipeline(self) -> FrameProcessor | None:
        """Load the detector and segmenter, retrying with back-off (say, the GPU is out of memory for now)."""
        backoff = PIPELINE_RETRY_FIRST_S
        while not self._stop.is_set():
            try:
                processor = FrameProcessor(self.ctx.recognizer.pipeline)
            except Exception as error:  # every failure is shown in the status; only this stream waits
                self.error = f"the pipeline cannot start (retrying in {backoff:.0f} s): {error}"
                log.error("stream %s: %s", self.definition.id, self.error)
                self._stop.wait(backoff)
                backoff = min(2 * backoff, PIPELINE_RETRY_MAX_S)
                continue
            self.error = None
            return processor
        return None

    def _run(self) -> None:
        settings = self.ctx.settings
        processor = self._start_pipeline()
        if processor is None:
            return
        self.reader.start()
        tracks = LiveTracks(
            processor,
            settings.stream_min_good_frames,
            settings.stream_refine_frames,
            settings.stream_track_lost_seconds,
        )
        while not self._stop.is_set():
            item = self.buffer.get(timeout=0.5)
            try:
                if item is not None:
                    self._process(tracks, item)
                # a track has left when no frame *captured* in the last seconds shows it, however long
                # the pipeline took; with no frames coming, the clock decides
                for track in tracks.expire(item.wall if item is not None else time.time()):
                    self._identify(track, item)
                self.error = None
            except Exception as error:  # one bad frame or a database hiccup must not end the stream
                self.error = f"{type(error).__name__}: {str(error)[:200]}"
                log.exception("stream %s: processing failed", self.definition.id)

    def _process(self, tracks: LiveTracks, item: LiveFrame) -> None:
        image = crop_roi(item.frame.image, self.definition.roi)
        cropped = LiveFrame(Frame(item.frame.index, item.frame.time_s, image), item.wall)
        due = tracks.observe(cropped)
        self.processed.tick(time.monotonic())
        self.stats.frames_processed += 1
        for track in due:
            self._identify(track, cropped)

    def _identify(self, track: LiveTrack, item: LiveFrame | None) -> None:
        """Embed the track, search the gallery, and emit an event when the answer is new.

        ``item`` is the frame that completed the identification, for the latency statistic (None: a
        track that ended with no frame at hand). The snapshot comes from the track's own latest frame.
        """
        recognizer = self.ctx.recognizer
        probe = recognizer.probe_walks([track.silhouettes()])[0]
        threshold = recognizer.threshold(self.definition.match_threshold)
        walk = answer_walk(self.ctx.gallery, probe, threshold, self.ctx.settings.top_k)
        verdict = walk.verdict
        track.identified_frames = track.good_frames
        answer = (verdict.decision, verdict.subject_id)
        if answer == track.last_answer:
            return  # a refinement that changes nothing is not news
        snapshot = self._snapshot(track) if self.ctx.settings.snapshots else None
        recorded = False
        try:
            recorded = self._record(track, walk, threshold, snapshot)
        finally:
            if snapshot is not None and not recorded:
                snapshot.unlink(missing_ok=True)  # no event refers to it
        if not recorded:
            return
        track.updates += 1
        track.last_answer = answer
        self.stats.events += 1
        if item is not None:
            self.stats.latencies_s.append(time.time() - item.wall)
        STREAM_EVENTS.labels(verdict.decision).inc()

    def _record(self, track: LiveTrack, walk: WalkAnswer, threshold: float, snapshot: Path | None) -> bool:
        """Commit the event (and its webhook deliveries); False when the stream was deleted or lost meanwhile."""
        with self.ctx.sessions() as session, session.begin():
            stream = session.get(Stream, self.definition.id)
            lapsed = stream is None or stream.lease_until is None or stream.lease_until <= utcnow()
            if stream is None or stream.owner != self.owner or lapsed:
                return False  # deleted, or no longer ours: the new owner speaks for the stream
            event = StreamEvent(
                stream_id=stream.id,
                track_id=track.builder.track_id,
                update=track.updates,
                started_at=datetime.fromtimestamp(track.first_wall, UTC),
                ended_at=datetime.fromtimestamp(track.last_wall, UTC),
                decision=walk.verdict.decision,
                subject_id=walk.verdict.subject_id,
                **(walk.verdict.candidate.scores() if walk.verdict.candidate else {}),
                threshold=threshold,
                good_frames=track.good_frames,
                candidates=[{"subject_id": c.subject_id, **c.listing()} for c in walk.candidates],
                model_key=self.ctx.recognizer.model_key,
                snapshot_path=str(snapshot) if snapshot else None,
            )
            record_event(session, event)
        return True

    def _snapshot(self, track: LiveTrack) -> Path | None:
        """A JPEG of the person in the latest frame that showed them, under ``DATA_DIR/snapshots/<stream>/``."""
        if track.last_image is None or track.last_box is None:
            return None
        x1, y1, x2, y2 = track.last_box
        margin_x, margin_y = (x2 - x1) * SNAPSHOT_MARGIN, (y2 - y1) * SNAPSHOT_MARGIN
        height, width = track.last_image.shape[:2]
        crop = track.last_image[
            max(0, int(y1 - margin_y)) : min(height, int(y2 + margin_y)),
            max(0, int(x1 - margin_x)) : min(width, int(x2 + margin_x)),
        ]
        if crop.size == 0:
            return None
        path = snapshot_dir(self.ctx.settings.data_dir, self.definition.id) / f"{uuid.uuid4().hex}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), crop, [cv2.IMWRITE_JPEG_QUALITY, 85]):
            return None
        return path


def snapshot_dir(data_dir: Path, stream_id: str) -> Path:
    return data_dir / "snapshots" / stream_id
