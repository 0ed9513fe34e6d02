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


@pytest.fixture(scope="module")
def small_clip(videos_dir: Path) -> tuple[list[bytes], float]:
    return encode_clip(videos_dir / CLIP, width=320)


def test_a_slow_consumer_drops_frames_instead_of_queueing_them(small_clip):
    """A 30 fps source and a pipeline capped at 4 fps: the buffer never holds more than its capacity."""
    frames, fps = small_clip
    buffer = FrameBuffer(capacity=2)
    with ClipStreamServer(frames, fps) as camera:
        reader = StreamReader(camera.url, max_fps=60, buffer=buffer)
        reader.start()
        consumed: list[LiveFrame] = []
        most_held = 0
        try:
            deadline = time.monotonic() + 4.0
            while time.monotonic() < deadline:
                most_held = max(most_held, len(buffer))
                item = buffer.get(timeout=1.0)
                if item is not None:
                    consumed.append(item)
                time.sleep(0.25)  # the capped pipeline
        finally:
            reader.stop()
    delivered = consumed[-1].frame.index + 1
    assert most_held <= 2
    assert 10 <= len(consumed) <= 20
    assert delivered > 3 * len(consumed), "the source ran faster than the consumer"
    assert buffer.dropped >= delivered - len(consumed) - 2
    indexes = [item.frame.index for item in consumed]
    assert indexes == sorted(indexes) and max(b - a for a, b in itertools.pairwise(indexes)) > 1
    newest_age = time.time() - consumed[-1].wall
    assert newest_age < 1.5, "what the consumer gets is recent, not a backlog"


def test_frame_rate_cap(small_clip):
    frames, fps = small_clip
    buffer = FrameBuffer(capacity=1000)
    with ClipStreamServer(frames, fps) as camera:
        reader = StreamReader(camera.url, max_fps=5, buffer=buffer)
        reader.start()
        time.sleep(3.0)
        reader.stop()
    assert 10 <= len(buffer) <= 18, len(buffer)  # about 5 fps for 3 s, from a 30 fps source
    assert buffer.dropped == 0


def test_reconnects_with_backoff_when_the_source_comes_back(small_clip):
    frames, fps = small_clip
    buffer = FrameBuffer(capacity=2)
    camera = ClipStreamServer(frames, fps).start()
    reader = StreamReader(camera.url, max_fps=10, buffer=buffer)
    reader.start()
    try:
        eventually(lambda: reader.state == "connected" and reader.last_frame_wall is not None, 20)
        camera.stop()
        eventually(lambda: reader.state == "reconnecting", 20)
        assert reader.last_error
        time.sleep(2.0)  # a few failed attempts while the camera is down
        camera.start()
        eventually(lambda: reader.state == "connected" and reader.connections == 2, 30)
        before = reader.last_frame_wall or 0
        eventually(lambda: (reader.last_frame_wall or 0) > before, 10)
    finally:
        reader.stop()
        camera.stop()
    assert len(camera.connections) == 2


def test_a_source_that_never_answers_reports_why():
    reader = StreamReader(f"http://127.0.0.1:{free_port()}/none", max_fps=10, buffer=FrameBuffer())
    reader.start()
    try:
        eventually(lambda: reader.last_error is not None, 20)
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
