"""The stream reader on a real local MJPEG stream: bounded memory when the consumer is slow, reconnects
with back-off when the source goes away, and a clear error for a source that never answers."""

import itertools
import time
from pathlib import Path

import pytest

from bench.stream_source import ClipStreamServer, encode_clip
from service.streams.reader import FrameBuffer, LiveFrame, RateMeter, StreamReader
from tests.service.conftest import eventually, free_port

CLIP = "walk_indoor_a_probe.mp4"
HANG_S = 60  # the waits below take a few seconds; this only stops a hang


@pytest.fixture(scope="module")
def small_clip(videos_dir: Path) -> tuple[list[bytes], float]:
    return encode_clip(videos_dir / CLIP, width=320)


def stop(reader: StreamReader) -> None:
    """Stop the reader and wait for its thread, so that the buffer can be counted without a race."""
    reader.stop()
    eventually(lambda: not reader.running, HANG_S, "the reader thread ending after stop()")


def test_a_slow_consumer_drops_frames_instead_of_queueing_them(small_clip):
    """A 30 fps source and a consumer that only takes a frame after the source has lapped it: the buffer
    never holds more than its capacity, the consumer gets the newest frames (gaps in the indexes, not a
    backlog), and every frame read is accounted for: consumed, dropped, or still buffered."""
    frames, fps = small_clip
    buffer = FrameBuffer(capacity=2)
    with ClipStreamServer(frames, fps) as camera:
        reader = StreamReader(camera.url, max_fps=60, buffer=buffer)
        reader.start()
        consumed: list[LiveFrame] = []
        most_held = 0
        try:
            for _ in range(6):
                # a slow pipeline: by the time it asks again, the reader has had to drop frames
                lapped = buffer.dropped + 3
                eventually(lambda n=lapped: buffer.dropped >= n, HANG_S, "frames dropped for a slow consumer")
                most_held = max(most_held, len(buffer))
                item = buffer.get(timeout=HANG_S)
                assert item is not None, "a full buffer gave no frame"
                consumed.append(item)
        finally:
            stop(reader)
    left = []
    while (item := buffer.get(timeout=0)) is not None:
        left.append(item)
    assert most_held <= 2 and len(left) <= 2
    indexes = [item.frame.index for item in consumed + left]
    assert indexes == sorted(set(indexes)), "frames came out in order, each once"
    assert all(b - a >= 4 for a, b in itertools.pairwise([i.frame.index for i in consumed])), (
        "after the source lapped the consumer, it got the newest frames, not the next ones in a backlog"
    )
    assert indexes[-1] + 1 == len(indexes) + buffer.dropped, "every frame read was consumed, dropped or buffered"


def test_frame_rate_cap(small_clip):
    """A 30 fps source read with ``max_fps=5``: on the reader's own clock, frame k comes at least k/5 s
    (less a catch-up allowance of 1.5 frames) after the first, and nothing is dropped from a roomy buffer."""
    frames, fps = small_clip
    buffer = FrameBuffer(capacity=1000)
    with ClipStreamServer(frames, fps) as camera:
        reader = StreamReader(camera.url, max_fps=5, buffer=buffer)
        reader.start()
        try:
            eventually(lambda: len(buffer) >= 12, HANG_S, "12 frames from the capped reader")
        finally:
            stop(reader)
    assert buffer.dropped == 0
    got = []
    while (item := buffer.get(timeout=0)) is not None:
        got.append(item.frame)
    assert [f.index for f in got] == list(range(len(got)))
    times = [f.time_s for f in got]
    late = [(k, round(t - times[0], 3)) for k, t in enumerate(times) if t - times[0] < (k - 1.5) / 5 - 1e-6]
    assert not late, f"frames passed on faster than 5 fps: (frame, seconds after the first) {late}"
    # the source sent far more than was passed on: the cap thinned it, it was not the source's pace
    assert camera.frames_sent >= 2 * len(got), (camera.frames_sent, len(got))


def test_reconnects_with_backoff_when_the_source_comes_back(small_clip):
    frames, fps = small_clip
    buffer = FrameBuffer(capacity=2)
    camera = ClipStreamServer(frames, fps).start()
    reader = StreamReader(camera.url, max_fps=10, buffer=buffer)
    reader.start()
    try:
        eventually(lambda: reader.state == "connected" and reader.last_frame_wall is not None, HANG_S)
        camera.stop()
        eventually(lambda: reader.state == "reconnecting", HANG_S)
        assert reader.last_error
        time.sleep(2.0)  # a few failed attempts while the camera is down
        camera.start()
        eventually(lambda: reader.state == "connected" and reader.connections == 2, HANG_S)
        before = reader.last_frame_wall or 0
        eventually(lambda: (reader.last_frame_wall or 0) > before, HANG_S)
    finally:
        reader.stop()
        camera.stop()
    assert len(camera.connections) == 2


def test_a_source_that_never_answers_reports_why():
    reader = StreamReader(f"http://127.0.0.1:{free_port()}/none", max_fps=10, buffer=FrameBuffer())
    reader.start()
    try:
        eventually(lambda: reader.last_error is not None, HANG_S)
    finally:
        reader.stop()
    assert reader.state in ("connecting", "reconnecting")
    assert "source_unreachable" in (reader.last_error or "")


def test_rate_meter_counts_a_sliding_window():
    meter = RateMeter(window_s=2.0)
    for i in range(20):
        meter.tick(100.0 + i * 0.1)  # 10 fps for 2 s
    assert meter.current(101.9) == pytest.approx(10.0)
    assert meter.current(105.0) == 0.0  # the source stalled
