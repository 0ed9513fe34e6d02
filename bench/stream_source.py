"""A live camera stand-in: serves a video clip as an endless MJPEG-over-HTTP stream on 127.0.0.1.

Many IP cameras serve ``multipart/x-mixed-replace`` JPEG streams; FFmpeg (and so GaitID's
stream reader) reads them like any camera URL. Frames go out paced at the clip's own frame rate
(or a given one), looping, so the stream behaves like a camera: a reader that falls behind gets
newer frames, not a backlog. ``stop()`` and ``start()`` drop and bring back the "camera" on the
same port, which is how the reconnect test and ``gaitid bench stream`` simulate an outage.
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import BinaryIO

import cv2

from pipeline.decode import VideoSource

BOUNDARY = "gaitidframe"
JPEG_QUALITY = 85


def encode_clip(path: Path, width: int | None = None) -> tuple[list[bytes], float]:
    """The clip's frames as JPEG bytes (optionally resized to ``width``) and its frame rate."""
    jpegs: list[bytes] = []
    with VideoSource(path) as video:
        fps = video.info.fps or 25.0
        for frame in video.frames():
            image = frame.image
            if width and image.shape[1] != width:
                height = round(image.shape[0] * width / image.shape[1])
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                jpegs.append(data.tobytes())
    return jpegs, fps


class ClipStreamServer:
    """Serve ``frames`` (JPEG bytes) at ``fps`` on ``http://127.0.0.1:PORT/stream.mjpg`` until stopped.

    ``loop=False`` ends the stream after one pass, like a camera that goes away.
    """

    def __init__(self, frames: list[bytes], fps: float, port: int = 0, loop: bool = True) -> None:
        if not frames:
            raise ValueError("no frames to stream")
        self.frames, self.fps, self.loop = frames, fps, loop
        self.port = port
        self.frames_sent = 0
        self.connections: list[float] = []  # Unix time at which each client connection began
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> "ClipStreamServer":
        """Start serving (again); every new connection starts at the clip's first frame."""
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/stream.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                source._serve(self.wfile)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._running.set()
        self._thread = threading.Thread(target=self._server.serve_forever, name="clip-stream", daemon=True)
        self._thread.start()
        return self

    def _serve(self, out: BinaryIO) -> None:
        period = 1.0 / self.fps
        self.connections.append(time.time())
        began = time.monotonic()
        sent = 0
        while self._running.is_set():
            if sent >= len(self.frames) and not self.loop:
                return
            due = began + sent * period
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            jpeg = self.frames[sent % len(self.frames)]
            header = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            try:
                out.write(header.encode() + jpeg + b"\r\n")
                out.flush()
            except (BrokenPipeError, ConnectionResetError):
                return
            sent += 1
            self.frames_sent += 1

    def stop(self) -> None:
        """Close the listening socket and every open connection: the camera is gone."""
        self._running.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "ClipStreamServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
