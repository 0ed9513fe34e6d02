"""Reading a live source: reconnect with back-off, cap the frame rate, never queue more than a few frames.

A camera sends frames at its own pace; the pipeline takes what it can. The reader keeps only the
newest ``capacity`` frames (older ones are dropped and counted), so a slow CPU or GPU makes the
stream skip frames instead of growing memory or falling ever further behind real time.
"""

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass

from pipeline.decode import DecodeLimits, Frame, VideoSource
from pipeline.errors import PipelineError
from service.errors import describe
from service.streams.urls import redact_url

log = logging.getLogger(__name__)

BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
LIVE_LIMITS = DecodeLimits(max_duration_s=math.inf, open_timeout_s=10.0, read_timeout_s=10.0)


@dataclass(frozen=True)
class LiveFrame:
    """A frame as it arrived: ``frame.time_s`` counts seconds since the reader started, ``wall`` is Unix time."""

    frame: Frame
    wall: float


class FrameBuffer:
    """The newest ``capacity`` frames; putting into a full buffer drops the oldest one."""

    def __init__(self, capacity: int = 2) -> None:
        self._frames: deque[LiveFrame] = deque(maxlen=capacity)
        self._ready = threading.Condition()
        self.dropped = 0

    def put(self, item: LiveFrame) -> None:
        with self._ready:
            if len(self._frames) == self._frames.maxlen:
                self.dropped += 1
            self._frames.append(item)
            self._ready.notify()

    def get(self, timeout: float) -> LiveFrame | None:
        """The oldest buffered frame, waiting up to ``timeout`` seconds for one."""
        with self._ready:
            if not self._frames:
                self._ready.wait(timeout)
            return self._frames.popleft() if self._frames else None

    def __len__(self) -> int:
        return len(self._frames)


class RateMeter:
    """Frames per second over a sliding window of the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque()
        self._lock = threading.Lock()  # ticked by the reading thread, read by the status writer

    def tick(self, now: float) -> None:
        with self._lock:
            self._times.append(now)
            self._trim(now)

    def current(self, now: float) -> float:
        """The rate now; a source that stalled reads as 0 fps once the window has passed."""
        with self._lock:
            self._trim(now)
            return len(self._times) / self.window_s

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()


class StreamReader:
    """Reads ``url`` in a thread into ``buffer`` until stopped, reconnecting whenever the source fails.

    ``max_fps`` caps the frames handed on (a 25 fps camera read at 10 fps keeps every 2nd or 3rd
    frame). ``state`` is ``connecting``, ``connected`` or ``reconnecting``; ``last_error`` says why
    the last connection failed.
    """

    def __init__(self, url: str, max_fps: float, buffer: FrameBuffer, limits: DecodeLimits = LIVE_LIMITS) -> None:
        self.url, self.max_fps, self.buffer, self.limits = url, max_fps, buffer, limits
        self.label = redact_url(url)  # what logs and the status may show
        self.state = "connecting"
        self.last_error: str | None = None
        self.last_frame_wall: float | None = None
        self.meter = RateMeter()
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream-reader {self.label[:60]}", daemon=True)
        self._started = time.monotonic()
        self._index = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop and wait up to ``timeout``; a read blocked on a silent source ends within the read timeout."""
        self._stop.set()
        if self.running:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = BACKOFF_FIRST_S
        while not self._stop.is_set():
            delivered = self._read_once()
            if self._stop.is_set():
                break
            if delivered:
                backoff = BACKOFF_FIRST_S  # it worked for a while: retry quickly
            self.state = "reconnecting"
            log.info("stream %s: reconnecting in %.1f s (%s)", self.label, backoff, self.last_error)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _redacted(self, error: Exception) -> str:
        return str(error).replace(self.url, self.label)

    def _read_once(self) -> int:
        """One connection: read until the source ends, fails or we are stopped; returns frames delivered."""
        delivered = 0
        next_due = 0.0
        try:
            with VideoSource(self.url, self.limits) as video:
                self.state, self.last_error = "connected", None
                self.connections += 1
                for decoded in video.frames():
                    if self._stop.is_set():
                        break
                    now = time.monotonic()
                    self.meter.tick(now)
                    if now < next_due:
                        continue
                    next_due = max(next_due + 1.0 / self.max_fps, now - 0.5 / self.max_fps)
                    wall = time.time()
                    frame = Frame(self._index, now - self._started, decoded.image)
                    self._index += 1
                    self.buffer.put(LiveFrame(frame, wall))
                    self.last_frame_wall = wall
                    delivered += 1
                if not self._stop.is_set():
                    self.last_error = "the source ended the stream"
        except PipelineError as error:
            self.last_error = f"[{error.code}] {self._redacted(error)}"
        except Exception as error:  # FFmpeg can fail in many ways mid-stream; the runner must survive all
            self.last_error = f"{type(error).__name__}: {describe(error)}".replace(self.url, self.label)
            log.warning("stream %s: read failed: %s", self.label, self._redacted(error))
        return delivered
