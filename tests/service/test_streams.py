"""Live streams end to end: a real HTTP camera stream of a real clip, the real pipeline and model, a
real server process; events arrive over Server-Sent Events and at a webhook receiver.

The "camera" is ``bench.stream_source.ClipStreamServer``: an MJPEG stream on 127.0.0.1 that plays
a clip in a loop, as IP cameras serve them, here in slow motion (``CAMERA_FPS``): a stream worker
keeps only the newest frames, so on a busy 2-core host processing 3-4 frames a second, a walk shown
at 30 fps would leave too few good frames per pass for an identification. Nothing here asserts a
wall-clock budget; the time from 2 s in view to the match event is recorded, and `gaitid bench
stream` measures it properly.
"""

import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from bench.stream_source import ClipStreamServer, encode_clip
from service.streams.webhooks import verify
from tests.service.conftest import ServerProcess, create_key, eventually, free_port, running_server

STREAM_CLIP = "walk_indoor_a_probe.mp4"  # J walks in view from its first frame
# J is enrolled from the walk the camera then shows: this tests the stream machinery (events, SSE,
# webhooks, reconnects), while recognition across walks is measured by the real-clip protocol and the
# end-to-end test. Partial stream tracks of another walk sit at the default (far_1e-3) threshold.
ENROLL_CLIP = STREAM_CLIP
CAMERA_FPS = 6.0  # the clip is 30 fps: a 2.4-s walk takes 12 s per pass
IN_VIEW_S = 2.0  # recorded: when the match event came, after the person had walked 2 s (of the clip) in view


class SseListener:
    """Follows ``GET /v1/events/stream`` in a thread, as a browser's EventSource does: when the connection
    drops (a server restart) it reconnects with ``Last-Event-ID``. Keeps (arrival time, event) pairs."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self.events: list[tuple[float, dict]] = []
        self.connections = 0
        self.connected = threading.Event()
        self._response: httpx.Response | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "SseListener":
        self._thread.start()
        assert self.connected.wait(30), "the SSE endpoint did not answer"
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            headers = {"X-API-Key": self.key}
            if self.events:
                headers["Last-Event-ID"] = str(self.events[-1][1]["id"])
            try:
                self._follow(headers)
            except (httpx.HTTPError, ConnectionRefusedError):
                time.sleep(0.5)  # the server is away: try again, as EventSource does

    def _follow(self, headers: dict[str, str]) -> None:
        with httpx.stream("GET", f"{self.url}/v1/events/stream", headers=headers, timeout=None) as response:
            if response.status_code != 200:  # a server still starting up: retry
                raise ConnectionRefusedError(f"HTTP {response.status_code}")
            assert response.headers["content-type"].startswith("text/event-stream")
            self._response = response
            self.connections += 1
            self.connected.set()
            data: list[str] = []
            for line in response.iter_lines():
                if line.startswith("data: "):
                    data.append(line[6:])
                elif line == "" and data:
                    self.events.append((time.time(), json.loads("\n".join(data))))
                    data = []

    def wait_for(self, predicate, timeout_s: float) -> tuple[float, dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for arrived, event in list(self.events):
                if predicate(event):
                    return arrived, event
            time.sleep(0.05)
        raise AssertionError(f"no such event within {timeout_s} s; got {[e for _, e in self.events]}")

    def stop(self) -> None:
        """Hang up, as a browser tab closing would."""
        self._stop.set()
        if self._response is not None:
            self._response.close()


class WebhookReceiver:
    """A local webhook endpoint that checks every signature and keeps the verified bodies."""

    def __init__(self) -> None:
        self.secret = ""
        self.received: list[tuple[float, dict]] = []
        self.bad_signatures = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(
                    receiver.secret, self.headers["X-GaitID-Timestamp"], body, self.headers["X-GaitID-Signature"]
                )
                if ok:
                    receiver.received.append((time.time(), json.loads(body)))
                else:
                    receiver.bad_signatures += 1
                self.send_response(204 if ok else 401)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def stream_server(
    database_url: str, tmp_path: Path, shared_cache: Path, weights_env: dict[str, str]
) -> Iterator[ServerProcess]:
    env = {
        **weights_env,
        "GAITID_STREAM_LEASE_SECONDS": "5",
    }
    with running_server(database_url, tmp_path, shared_cache, env) as process:
        yield process


def _status(client: httpx.Client, stream_id: str) -> dict:
    return client.get(f"/v1/streams/{stream_id}").json()["status"]


def _wait_status(client: httpx.Client, stream_id: str, predicate, timeout_s: float) -> dict:
    def matching() -> dict | None:
        status = _status(client, stream_id)
        return status if predicate(status) else None

    return eventually(matching, timeout_s, f"stream {stream_id} status", every_s=0.2)


@pytest.mark.slow
def test_live_stream_match_event_over_sse_and_webhook_and_reconnect(
    stream_server: ServerProcess, videos_dir: Path, record_property
):
    admin = create_key(stream_server.env, "admin")
    client = stream_server.client(admin)
    subject = client.post("/v1/subjects", json={"name": "J"}).json()
    with (videos_dir / ENROLL_CLIP).open("rb") as clip:
        enrolled = client.post(
            f"/v1/subjects/{subject['id']}/enrollments?wait=900", files={"file": (ENROLL_CLIP, clip, "video/mp4")}
        )
    assert enrolled.status_code == 201 and enrolled.json()["status"] == "succeeded", enrolled.text

    receiver = WebhookReceiver()
    hook = client.post("/v1/webhooks", json={"url": receiver.url, "description": "test receiver"})
    assert hook.status_code == 201, hook.text
    receiver.secret = hook.json()["secret"]
    listener = SseListener(stream_server.url, admin).start()

    frames, fps = encode_clip(videos_dir / STREAM_CLIP)
    camera = ClipStreamServer(frames, CAMERA_FPS).start()
    try:
        # a camera that does not exist, registered first: it must show its error and harm nothing
        dead = client.post("/v1/streams", json={"url": f"http://127.0.0.1:{free_port()}/none", "name": "dead"}).json()
        stream = client.post("/v1/streams", json={"url": camera.url, "name": "lobby", "max_fps": 15})
        assert stream.status_code == 201, stream.text
        stream_id = stream.json()["id"]

        def is_match(event: dict) -> bool:
            return event["stream"]["id"] == stream_id and event["decision"] == "match"

        arrived, event = listener.wait_for(is_match, timeout_s=120)
        connected_at = camera.connections[0]
        latency = arrived - (connected_at + IN_VIEW_S * fps / CAMERA_FPS)
        record_property("event_after_2s_in_view_s", round(latency, 2))
        status = _status(client, stream_id)
        record_property("stream_fps_in_out", f"{status['fps_in']}/{status['fps_out']}")
        assert event["subject"]["id"] == subject["id"], event
        assert client.get(event["snapshot"]).headers["content-type"] == "image/jpeg"

        hooked = eventually(lambda: [b for _, b in receiver.received if b["id"] == event["id"]], 10)
        assert hooked[0] == event and receiver.bad_signatures == 0

        dead_status = _wait_status(client, dead["id"], lambda s: s["last_error"], 30)
        assert dead_status["state"] in ("connecting", "reconnecting") and not dead_status["connected"], dead_status
        live = _wait_status(client, stream_id, lambda s: s["fps_out"] > 0, 30)
        assert live["connected"] and live["fps_in"] > 0, live

        # the camera goes away: the stream says so, then reconnects when it is back, and events resume
        camera.stop()
        down = _wait_status(client, stream_id, lambda s: s["state"] == "reconnecting", 30)
        assert down["last_error"], down
        seen = max(e["id"] for _, e in listener.events)
        camera.start()
        _wait_status(client, stream_id, lambda s: s["state"] == "connected", 60)
        listener.wait_for(lambda e: is_match(e) and e["id"] > seen, timeout_s=60)
        assert len(camera.connections) >= 2

        # the service restarts: the stream is read again, and the SSE client resumes where it was
        stream_server.kill(signal.SIGTERM)
        seen = max(e["id"] for _, e in listener.events)
        stream_server.start()
        _wait_status(client, stream_id, lambda s: s["state"] == "connected", 120)
        listener.wait_for(lambda e: is_match(e) and e["id"] > seen, timeout_s=60)
        assert listener.connections >= 2
        stored = {e["id"] for e in client.get("/v1/events", params={"limit": 500}).json()["items"]}
        eventually(lambda: stored <= {e["id"] for _, e in listener.events}, 10)
        ids = [e["id"] for _, e in listener.events]
        assert ids == sorted(set(ids)), "an event repeated or out of order over the reconnects"
    finally:
        listener.stop()
        camera.stop()
        receiver.close()
