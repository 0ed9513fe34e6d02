"""Decoding real files, broken files and unreachable URLs: frames or a typed error, never a hang.

No test here asserts how fast decoding is (``gaitid bench`` measures that); a generous deadline
(``HANG_S``) only turns a hang into a failure that says so.
"""

import socket
import threading

import pytest

from pipeline.decode import DecodeLimits, VideoSource
from pipeline.errors import (
    BadOptionError,
    SourceUnreachableError,
    VideoNotFoundError,
    VideoTooLargeError,
    VideoTooLongError,
    VideoUnreadableError,
)
from tests.conftest import serve_folder, within

HANG_S = 120  # the calls below take a second or two; this only stops a hang


@pytest.fixture(scope="module")
def videos(videos_dir):
    return videos_dir


def test_frames_are_streamed_with_real_times(videos):
    with VideoSource(videos / "walk_indoor_a_enroll.mp4") as video:
        assert (video.info.width, video.info.height) == (720, 1280)
        times = [frame.time_s for frame in video.frames()]
    assert len(times) == 118
    assert times == sorted(times) and times[-1] == pytest.approx(3.97, abs=0.05)


def test_explicit_rotation_and_stride(videos):
    with VideoSource(videos / "rotated_group.mp4", DecodeLimits(frame_stride=10), rotate=90) as video:
        assert (video.info.width, video.info.height) == (720, 1280)
        frames = list(video.frames())
    assert [f.index for f in frames[:3]] == [0, 10, 20]
    assert frames[0].image.shape == (1280, 720, 3)


@pytest.mark.parametrize("name", ["empty.mp4", "text.mp4", "truncated_no_moov.mp4"])
def test_unreadable_files_are_refused(videos, name):

    def decode() -> None:
        with VideoSource(videos / "bad" / name) as video:
            list(video.frames())

    with pytest.raises(VideoUnreadableError) as refused:
        within(HANG_S, decode, f"decoding bad/{name}")
    # the message reaches API clients: neither the server's folders nor FFmpeg's errno
    assert str(videos) not in str(refused.value) and "Errno" not in str(refused.value), refused.value


def test_truncated_file_gives_its_frames_and_says_so(videos):
    with VideoSource(videos / "bad" / "truncated.mp4") as video:
        frames = list(video.frames())
        assert video.truncated
    assert 50 <= len(frames) <= 60


def test_missing_file_and_bad_options(videos, tmp_path):
    with pytest.raises(VideoNotFoundError) as missing:
        VideoSource(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(missing.value) and str(tmp_path) not in str(missing.value)
    with pytest.raises(BadOptionError):
        VideoSource(videos / "walk_outdoor.mp4", rotate=45)


def test_limits(videos):
    with pytest.raises(VideoTooLongError):
        VideoSource(videos / "walk_outdoor.mp4", DecodeLimits(max_duration_s=5))
    with pytest.raises(VideoTooLargeError):
        VideoSource(videos / "walk_outdoor.mp4", DecodeLimits(max_width=640, max_height=640))


def test_refused_connection_is_a_typed_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    limits = DecodeLimits(open_timeout_s=2, read_timeout_s=2)
    with pytest.raises(SourceUnreachableError):
        within(HANG_S, lambda: VideoSource(f"http://127.0.0.1:{port}/walk.mp4", limits), "opening a refused URL")


def test_silent_server_times_out():
    """A server that accepts the connection and never answers must not hang the pipeline."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.getsockname()[1]}/walk.mp4"
        limits = DecodeLimits(open_timeout_s=2, read_timeout_s=2)
        with pytest.raises(SourceUnreachableError):  # the read timeout gives up; without it, this would hang
            within(HANG_S, lambda: VideoSource(url, limits), "opening a URL whose server never answers")
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_http_url_is_streamed(videos):
    """A clip served over HTTP on 127.0.0.1 decodes like the file."""
    with serve_folder(videos) as base_url, VideoSource(f"{base_url}/walk_indoor_a_probe.mp4") as video:
        frames = sum(1 for _ in video.frames())
    assert frames == 83
