"""Inputs from clients that must not hurt the service, over real HTTP on SQLite and PostgreSQL.

- URLs (issue 20.1): a video URL reaches only public addresses and the allowed networks, checked on
  every redirect; cameras only within GAITID_STREAM_ALLOW_NETWORKS.
- Messages (20.2): no answer names a server path or carries an errno or a stack trace.
- Silhouette uploads (20.3): zip bombs and lying .npy headers are refused before they are inflated.

The server here allows 127.0.0.0/8, so that a local HTTP server can stand for a public one; the
default refusal of loopback addresses is checked in test_api.py, on a server with the defaults.
"""

import contextlib
import http.server
import io
import ipaddress
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from service.addresses import AddressPolicy
from tests.service.conftest import (
    DATABASES,
    ServerProcess,
    create_key,
    eventually,
    free_port,
    fresh_database,
    running_server,
    silhouettes_npy,
)

MAX_UPLOAD_MB = 5
LEAKS = ("/tmp", "Errno", "Traceback", 'File "')


class VideoHost:
    """A real HTTP server on 127.0.0.1: ``/video.mp4``, ``/big.avi``, ``/redirect?to=URL``, ``/loop``."""

    def __init__(self, videos: Path) -> None:
        files = {"/video.mp4": videos / "bad" / "no_person.mp4", "/big.avi": videos / "vtest.avi"}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, target = self.path.partition("?to=")
                if path in ("/redirect", "/loop"):
                    self.send_response(302)
                    self.send_header("Location", target or "/loop")
                    self.end_headers()
                elif path in files:
                    body = files[path].read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    with contextlib.suppress(ConnectionError):  # the service stops reading at its size limit
                        self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=DATABASES)
def api(request, tmp_path_factory, shared_cache, weights_env) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp(f"safety-{request.param}")
    env = {
        **weights_env,
        "GAITID_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "GAITID_URL_ALLOW_NETWORKS": "127.0.0.0/8",
        "GAITID_STREAM_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    with fresh_database(request.param, folder) as url, running_server(url, folder, shared_cache, env) as server:
        yield server


@pytest.fixture(scope="module")
def admin(api: ServerProcess) -> Iterator[httpx.Client]:
    with api.client(create_key(api.env, "admin")) as client:
        yield client


@pytest.fixture(scope="module")
def host(videos_dir: Path) -> Iterator[VideoHost]:
    server = VideoHost(videos_dir)
    yield server
    server.close()


def _closed_port_url(path: str = "/x.mp4") -> str:
    return f"http://127.0.0.1:{free_port()}{path}"


def _job_count(client: httpx.Client) -> int:
    return client.get("/v1/jobs", params={"limit": 500}).json()["total"]


def _assert_no_leak(api: ServerProcess, *bodies: str) -> None:
    for body in bodies:
        for leak in (*LEAKS, api.env["GAITID_DATA_DIR"]):
            assert leak not in body, (leak, body)


def _code(response: httpx.Response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("address", "permitted"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("::1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("fc00::1", False),
        ("169.254.169.254", False),
        ("fd00:ec2::254", False),
        ("fe80::1", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("ff0e::1", False),
        ("0.0.0.0", False),
        ("::", False),
        ("240.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("2002:7f00:1::1", False),  # 6to4 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
    ],
)
def test_default_policy_reaches_public_addresses_only(address: str, permitted: bool):
    policy = AddressPolicy((), public=True, setting="GAITID_URL_ALLOW_NETWORKS")
    assert policy.permits(ipaddress.ip_address(address)) is permitted


def test_allowed_networks_never_open_the_metadata_endpoint():
    allowed = (ipaddress.ip_network("169.254.0.0/16"), ipaddress.ip_network("fd00::/8"))
    policy = AddressPolicy(allowed, public=False, setting="GAITID_STREAM_ALLOW_NETWORKS")
    assert policy.permits(ipaddress.ip_address("169.254.1.1"))
    assert not policy.permits(ipaddress.ip_address("169.254.169.254"))
    assert not policy.permits(ipaddress.ip_address("fd00:ec2::254"))
    assert not policy.permits(ipaddress.ip_address("8.8.8.8"))  # public=False: only the allowed networks


def test_video_urls_reach_only_allowed_addresses_on_every_hop(api: ServerProcess, admin: httpx.Client, host: VideoHost):
    subject_id = admin.post("/v1/subjects", json={"name": "by-url"}).json()["id"]
    before = _job_count(admin)
    refused = [
        "http://10.1.2.3/video.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        f"http://[::1]:{free_port()}/video.mp4",
        f"http://0.0.0.0:{free_port()}/video.mp4",
        f"{host.url}/redirect?to=http://169.254.169.254/latest/meta-data/",
        f"{host.url}/redirect?to=http://10.0.0.1/x.mp4",
        f"{host.url}/redirect?to=http://[::1]:{free_port()}/x.mp4",
        f"{host.url}/redirect?to=file:///etc/passwd",
    ]
    for url in refused:
        response = admin.post("/v1/identify", json={"url": url})
        assert response.status_code == 422 and _code(response) == "url_not_allowed", (url, response.text)
        _assert_no_leak(api, response.text)
    for path in (f"/v1/subjects/{subject_id}/enrollments", "/v1/identify"):  # JSON and form fields alike
        response = admin.post(path, data={"url": f"{host.url}/redirect?to=http://192.168.0.1/x.mp4"})
        assert response.status_code == 422 and _code(response) == "url_not_allowed", response.text
    loop = admin.post("/v1/identify", json={"url": f"{host.url}/loop"})
    assert loop.status_code == 422 and _code(loop) == "source_unreachable", loop.text
    big = admin.post("/v1/identify", json={"url": f"{host.url}/big.avi"})  # 8.1 MB > 5 MB
    assert big.status_code == 413 and _code(big) == "payload_too_large", big.text
    assert _job_count(admin) == before, "a refused URL must not leave a job behind"

    # an allowed host, reached through a redirect: the video is fetched and processed
    response = admin.post("/v1/identify?wait=120", json={"url": f"{host.url}/redirect?to=/video.mp4"})
    assert response.status_code == 200, response.text
    assert response.json()["result"]["frames"] == 60 and response.json()["result"]["tracks"] == []
    jobs = Path(api.env["GAITID_DATA_DIR"]) / "jobs"
    eventually(lambda: not list(jobs.glob("*/*")), 30, "the downloaded video removed when its job ended")


def test_cameras_only_within_the_stream_networks(api: ServerProcess, admin: httpx.Client):
    for url in ("rtsp://10.1.2.3/stream", "rtsp://169.254.169.254/", "rtsp://no-such-camera.invalid/s"):
        response = admin.post("/v1/streams", json={"url": url, "enabled": False})
        assert response.status_code == 422, response.text
        assert _code(response) in ("url_not_allowed", "source_unreachable"), response.text
    stream = admin.post("/v1/streams", json={"url": f"rtsp://127.0.0.1:{free_port()}/s", "enabled": False})
    assert stream.status_code == 201, stream.text
    moved = admin.patch(f"/v1/streams/{stream.json()['id']}", json={"url": "rtsp://10.1.2.3/stream"})
    assert moved.status_code == 422 and _code(moved) == "url_not_allowed", moved.text
    renamed = admin.patch(f"/v1/streams/{stream.json()['id']}", json={"name": "door"})
    assert renamed.status_code == 200, renamed.text


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _png_zip(frames: int = 30) -> bytes:
    sils = np.load(io.BytesIO(silhouettes_npy(frames)))
    return _zip({f"f{i:04d}.png": cv2.imencode(".png", sil)[1].tobytes() for i, sil in enumerate(sils)})


def _npy_header(shape: tuple[int, ...], descr: str = "|u1") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def _lying_zip(actual_bytes: int, declared_bytes: int, members: int = 5) -> bytes:
    """Members holding ``actual_bytes`` of zeros each, whose headers declare ``declared_bytes``."""
    data = bytearray(_zip({f"f{i:04d}.png": bytes(actual_bytes) for i in range(members)}))
    real, declared = struct.pack("<I", actual_bytes), struct.pack("<I", declared_bytes)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local headers, central directory
        at = data.find(signature)
        for _ in range(members):
            assert data[at + offset : at + offset + 4] == real
            data[at + offset : at + offset + 4] = declared
            at = data.find(signature, at + 4)
    return bytes(data)


def _huge_png() -> bytes:
    """A PNG that declares 100 000 × 100 000 pixels in a few bytes."""
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + b"\0\0\0\0"


SILHOUETTE_UPLOADS = {
    "valid zip": ("walk.zip", _png_zip(), 201, None),
    "valid npy": ("walk.npy", silhouettes_npy(), 201, None),
    "npy of 1200 frames (the first 1000 are read)": ("long.npy", silhouettes_npy(1200), 201, None),
    "npy declaring 10^9 frames": ("huge.npy", _npy_header((10**9, 64, 64)) + bytes(4096), 422, "bad_silhouettes"),
    "npy of 4096×4096 frames": ("wide.npy", _npy_header((8, 4096, 4096)) + bytes(4096), 422, "bad_silhouettes"),
    "npy of float64": ("float.npy", _npy_header((8, 64, 64), "<f8") + bytes(8 * 4096 * 8), 422, "bad_silhouettes"),
    "npy of objects": ("pickle.npy", _npy_header((8, 64, 64), "|O") + bytes(64), 422, "bad_silhouettes"),
    "zip bomb: 20 MB of zeros": ("bomb.zip", _zip({"f0000.png": bytes(20_000_000)}), 413, "silhouettes_too_large"),
    "zip bomb declared small": ("liar.zip", _lying_zip(4_000_000, 4000), 422, "bad_silhouettes"),
    "zip of 5000 members": ("many.zip", _zip({f"{i}.png": b"" for i in range(5000)}), 413, "silhouettes_too_large"),
    "PNGs of 100000×100000": ("wide.zip", _zip({f"{i}.png": _huge_png() for i in range(8)}), 422, "bad_silhouettes"),
}


@pytest.mark.parametrize("case", SILHOUETTE_UPLOADS)
def test_silhouette_uploads_are_bounded(api: ServerProcess, admin: httpx.Client, case: str):
    name, data, status, code = SILHOUETTE_UPLOADS[case]
    subject_id = admin.post("/v1/subjects", json={"name": case}).json()["id"]
    response = admin.post(
        f"/v1/subjects/{subject_id}/enrollments?wait=120", files={"file": (name, data, "application/octet-stream")}
    )
    assert response.status_code == status, response.text
    if code:
        assert _code(response) == code, response.text
    _assert_no_leak(api, response.text)


def _bad_inputs(videos: Path, host: VideoHost) -> list[tuple[str, str, dict]]:
    """(name, path, request kwargs): every kind of broken input, the smallest of each."""
    clip = (videos / "bad" / "no_person.mp4").read_bytes()
    uploads = [(f"bad/{p.name}", p.name, p.read_bytes()) for p in sorted((videos / "bad").iterdir())]
    uploads += [
        ("text named .mp4", "notes.mp4", b"Meeting notes, Tuesday.\n"),
        ("empty file", "nothing.avi", b""),
        ("truncated mp4", "cut.mp4", clip[: len(clip) // 3]),
    ]
    cases = [(name, "/v1/identify?wait=120", {"files": {"file": (f, data, "video/mp4")}}) for name, f, data in uploads]
    cases += [
        ("refused connection", "/v1/identify?wait=60", {"json": {"url": _closed_port_url()}}),
        ("404 with a password", "/v1/identify?wait=60", {"json": {"url": f"{host.url.replace('//', '//u:pw@')}/no"}}),
        ("not a url", "/v1/identify", {"json": {"url": "not a url"}}),
        ("unresolvable host", "/v1/identify", {"json": {"url": "http://no-such-host.invalid/x.mp4"}}),
        ("garbage .npy", "ENROLL?wait=60", {"files": {"file": ("x.npy", b"\x93NUMPY\x01\x00garbage")}}),
        ("garbage .zip", "ENROLL?wait=60", {"files": {"file": ("x.zip", b"PK\x03\x04garbage")}}),
    ]
    return cases


def test_no_answer_names_a_server_path_or_an_errno(
    api: ServerProcess, admin: httpx.Client, host: VideoHost, videos_dir: Path
):
    subject_id = admin.post("/v1/subjects", json={"name": "bad inputs"}).json()["id"]
    for name, path, kwargs in _bad_inputs(videos_dir, host):
        response = admin.post(path.replace("ENROLL", f"/v1/subjects/{subject_id}/enrollments"), **kwargs)
        assert response.status_code < 500, (name, response.text)
        job = response.json().get("job") or response.json()
        bodies = [response.text]
        if "id" in job and "status" in job:
            bodies.append(admin.get(f"/v1/jobs/{job['id']}").text)
        _assert_no_leak(api, *bodies)
        assert "pw@" not in response.text, response.text  # the password is redacted
    # a camera that cannot be reached shows why, in the same words
    stream = admin.post("/v1/streams", json={"url": _closed_port_url("/cam"), "name": "dead"}).json()

    def last_error() -> str | None:
        return admin.get(f"/v1/streams/{stream['id']}").json()["status"]["last_error"]

    _assert_no_leak(api, eventually(last_error, 60, "the dead camera's error"))
    assert admin.delete(f"/v1/streams/{stream['id']}").status_code == 204
