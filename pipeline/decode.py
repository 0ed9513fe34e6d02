"""Video decoding with PyAV (FFmpeg): files, HTTP(S) URLs and RTSP streams, frame by frame.

Frames are yielded one at a time (the video is never held in memory), upright (rotation
metadata is honoured, and an explicit ``rotate`` turns footage stored sideways without
metadata), with their real presentation time in seconds. Limits on duration and resolution
are checked as early as possible, and network sources have open and read timeouts so that a
source that does not answer fails in bounded time.
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from pipeline import defaults
from pipeline.errors import (
    BadOptionError,
    SourceUnreachableError,
    VideoNotFoundError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoUnreadableError,
)

log = logging.getLogger(__name__)

_ROTATIONS = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
TRUNCATION_SHARE = 0.9  # fewer decoded frames than this share of the declared count: damaged file
NETWORK_PREFIXES = ("rtsp://", "rtsps://", "rtmp://", "rtmps://", "http://", "https://", "srt://", "udp://", "tcp://")


@dataclass(frozen=True)
class DecodeLimits:
    """What a source may be: longer or larger sources are refused with a clear error."""

    max_duration_s: float = defaults.MAX_DURATION_S
    max_width: int = 3840
    max_height: int = 3840
    frame_stride: int = defaults.FRAME_STRIDE  # keep every k-th decoded frame
    open_timeout_s: float = 10.0
    read_timeout_s: float = 10.0


@dataclass(frozen=True)
class VideoInfo:
    """What the container says. ``width``/``height`` include the explicit ``rotate``; rotation
    metadata is read off each decoded frame, so frame shapes are the authority."""

    width: int
    height: int
    fps: float
    frames: int | None
    duration_s: float | None
    rotation: int  # the explicit clockwise rotation asked for


@dataclass(frozen=True)
class Frame:
    """One decoded, upright BGR frame with its index among decoded frames and its time in seconds."""

    index: int
    time_s: float
    image: np.ndarray


def is_network_source(source: str | Path) -> bool:
    return isinstance(source, str) and source.lower().startswith(NETWORK_PREFIXES)


def _reason(error: BaseException) -> str:
    """What went wrong, without the errno number and file name FFmpeg's message carries: messages reach
    API clients, who must learn nothing of the server's folders."""
    text = (getattr(error, "strerror", None) or str(error)).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


class VideoSource:
    """An open video; use as a context manager and iterate :meth:`frames`."""

    def __init__(self, source: str | Path, limits: DecodeLimits = DecodeLimits(), rotate: int = 0) -> None:
        if rotate not in (0, 90, 180, 270):
            raise BadOptionError(f"rotate must be 0, 90, 180 or 270 (clockwise degrees), got {rotate}")
        if limits.frame_stride < 1:
            raise BadOptionError(f"frame stride must be ≥ 1, got {limits.frame_stride}")
        self.source = str(source)
        self.limits = limits
        self.truncated = False  # set when decoding stopped early on corrupt data
        network = is_network_source(source)
        # what messages call the source: a URL as given, a file never by its path on this machine
        self.name = self.source if network else "the file"
        if not network and not Path(source).is_file():
            raise VideoNotFoundError(f"video file {Path(source).name} does not exist or is not a file")
        options = {"rtsp_transport": "tcp"} if self.source.lower().startswith("rtsp") else {}
        try:
            # metadata with invalid UTF-8 (any phone, or a damaged file) must not stop decoding: PyAV's
            # default raises UnicodeDecodeError while opening (found by tests/pipeline/test_fuzz_inputs.py)
            self.container = av.open(
                self.source,
                options=options,
                timeout=(limits.open_timeout_s, limits.read_timeout_s),
                metadata_errors="replace",
            )
        except (av.error.ConnectionRefusedError, av.error.HTTPError, TimeoutError, av.error.ExitError) as error:
            raise SourceUnreachableError(f"{self.name} did not answer: {_reason(error)}") from None
        except av.error.FFmpegError as error:
            if network:
                raise SourceUnreachableError(f"{self.name} cannot be opened: {_reason(error)}") from None
            raise VideoUnreadableError(f"{self.name} is not a readable video: {_reason(error)}") from None
        if not self.container.streams.video:
            self.container.close()
            raise VideoUnreadableError(f"{self.name} has no video stream")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.user_rotation = rotate
        self.info = self._describe()
        self._check_limits()

    def _describe(self) -> VideoInfo:
        ctx = self.stream.codec_context
        duration = None
        if self.stream.duration is not None and self.stream.time_base is not None:
            duration = float(self.stream.duration * self.stream.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / av.time_base
        fps = float(self.stream.average_rate) if self.stream.average_rate else 0.0
        width, height = ctx.width, ctx.height
        if self.user_rotation in (90, 270):
            width, height = height, width
        return VideoInfo(width, height, fps, self.stream.frames or None, duration, self.user_rotation)

    def _check_limits(self) -> None:
        info, limits = self.info, self.limits
        if max(info.width, info.height) > max(limits.max_width, limits.max_height) or (
            min(info.width, info.height) > min(limits.max_width, limits.max_height)
        ):
            self.close()
            raise VideoTooLargeError(
                f"{self.name} is {info.width}×{info.height}; the limit is {limits.max_width}×{limits.max_height}"
            )
        if info.duration_s is not None and info.duration_s > limits.max_duration_s:
            self.close()
            raise VideoTooLongError(
                f"{self.name} lasts {info.duration_s:.1f} s; the limit is {limits.max_duration_s:.0f} s"
            )

    def frames(self) -> Iterator[Frame]:
        """Decoded frames, every ``frame_stride``-th, upright, with times; stops cleanly on corrupt data."""
        decoded = 0
        time_base = float(self.stream.time_base) if self.stream.time_base else 0.0
        fps = self.info.fps or 25.0
        try:
            for frame in self.container.decode(self.stream):
                index = decoded
                decoded += 1
                time_s = float(frame.pts * time_base) if frame.pts is not None and time_base else index / fps
                if time_s > self.limits.max_duration_s:
                    raise VideoTooLongError(f"{self.name} runs past the {self.limits.max_duration_s:.0f} s limit")
                if index % self.limits.frame_stride:
                    continue
                yield Frame(index, time_s, self._upright(frame))
        except av.error.FFmpegError as error:
            if decoded == 0:
                raise VideoUnreadableError(f"{self.name} holds no decodable frame: {_reason(error)}") from None
            self.truncated = True
            log.warning("%s: decoding stopped after %d frames: %s", self.source, decoded, _reason(error))
        if decoded == 0:
            raise VideoUnreadableError(f"{self.name} holds no decodable frame")
        declared = self.stream.frames
        if declared and decoded < declared * TRUNCATION_SHARE and not self.truncated:
            # threaded decoding can end quietly on a cut-off file: the header still tells
            self.truncated = True
            log.warning("%s: decoded %d of the %d frames its header declares", self.source, decoded, declared)

    def _upright(self, frame: av.VideoFrame) -> np.ndarray:
        image = frame.to_ndarray(format="bgr24")
        # frame.rotation: counter-clockwise degrees the display matrix asks for
        clockwise = ((360 - int(frame.rotation or 0)) % 360 + self.user_rotation) % 360
        return cv2.rotate(image, _ROTATIONS[clockwise]) if clockwise else image

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
