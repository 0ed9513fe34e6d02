"""The REST API over real HTTP, on SQLite and PostgreSQL: auth matrix, resources, bad inputs, limits.

One server per database serves the whole module (starting one loads the model and the gallery).
"""

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import mutate, png_zip, run_cli, within
from tests.service.conftest import (
    DATABASES,
    ServerProcess,
    create_key,
    eventually,
    fresh_database,
    npy_upload,
    running_server,
    silhouettes_npy,
)

MAX_UPLOAD_MB = 5
MAX_ACTIVE_JOBS = 3


@pytest.fixture(scope="module", params=DATABASES)
def api(request, tmp_path_factory, shared_cache, weights_env) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    env = {
        **weights_env,
        "GAITID_MAX_UPLOAD_MB": str(MAX_UPLOAD_MB),
        "GAITID_MAX_ACTIVE_JOBS": str(MAX_ACTIVE_JOBS),
        "GAITID_MAX_WAIT_SECONDS": "120",  # generated requests may ask to wait an hour
        # generated streams would point at made-up cameras; reading streams is tested in test_streams.py
        "GAITID_STREAMS": "false",
    }
    with fresh_database(request.param, folder) as url, running_server(url, folder, shared_cache, env) as server:
        yield server


@pytest.fixture(scope="module")
def keys(api: ServerProcess) -> dict[str, str]:
    """The admin key from the real ``gaitid keys create`` (on each database), the others made in this process."""
    made = run_cli("keys", "create", "--role", "admin", "--name", "test-admin", env=api.env)
    assert made.returncode == 0 and "created admin key" in made.stdout, made.stderr
    admin = made.stdout.strip().splitlines()[-1]
    return {"admin": admin} | {role: create_key(api.env, role) for role in ("enroll", "identify", "read")}


def _client(api: ServerProcess, keys: dict[str, str], role: str | None) -> httpx.Client:
    return api.client(keys[role] if role else None)


def test_health_readiness_metrics_openapi(api: ServerProcess):
    with api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ok", ready.text
        assert "gaitid_request_seconds" in client.get("/metrics").text
        spec = client.get("/openapi.json").json()
        assert {"/v1/subjects", "/v1/identify", "/v1/jobs/{job_id}", "/v1/subjects/{subject_id}/enrollments"} <= set(
            spec["paths"]
        )
        response = client.get("/v1/nowhere")
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
        assert response.headers["x-request-id"]


def _matrix_cases(ids: dict[str, str]) -> list[tuple[str, str, str, dict]]:
    """(method, path, permission, request kwargs) for every endpoint under /v1 but the endless event stream
    (see ``test_event_stream_auth``)."""
    subject_id, job_id, key_id, stream_id, hook_id = (ids[k] for k in ("subject", "job", "key", "stream", "hook"))
    return [
        ("POST", "/v1/subjects", "enroll", {"json": {"name": "matrix"}}),
        ("GET", "/v1/subjects", "read", {}),
        ("GET", f"/v1/subjects/{subject_id}", "read", {}),
        ("PATCH", f"/v1/subjects/{subject_id}", "enroll", {"json": {"name": "renamed"}}),
        ("GET", f"/v1/subjects/{subject_id}/sequences", "read", {}),
        ("POST", f"/v1/subjects/{subject_id}/enrollments?wait=120", "enroll", {"files": npy_upload()}),
        ("DELETE", f"/v1/subjects/{subject_id}/sequences/999999", "enroll", {}),
        ("POST", "/v1/identify", "identify", {"json": {"url": "http://127.0.0.1:9/nothing.mp4"}}),
        ("GET", f"/v1/jobs/{job_id}", "read", {}),
        ("GET", "/v1/jobs", "read", {}),
        ("DELETE", f"/v1/jobs/{job_id}", "enroll", {}),
        ("GET", "/v1/keys", "admin", {}),
        ("POST", "/v1/keys", "admin", {"json": {"role": "read", "name": "matrix"}}),
        ("DELETE", f"/v1/keys/{key_id}", "admin", {}),
        ("POST", "/v1/streams", "admin", {"json": {"url": "rtsp://127.0.0.1:9/none", "enabled": False}}),
        ("GET", "/v1/streams", "read", {}),
        ("GET", f"/v1/streams/{stream_id}", "read", {}),
        ("PATCH", f"/v1/streams/{stream_id}", "admin", {"json": {"name": "renamed"}}),
        ("GET", "/v1/events", "read", {}),
        ("GET", "/v1/events/999999", "read", {}),
        ("GET", "/v1/events/999999/snapshot", "read", {}),
        ("POST", "/v1/webhooks", "admin", {"json": {"url": "http://127.0.0.1:9/hook"}}),
        ("GET", "/v1/webhooks", "admin", {}),
        ("GET", f"/v1/webhooks/{hook_id}", "admin", {}),
        ("PATCH", f"/v1/webhooks/{hook_id}", "admin", {"json": {"description": "renamed"}}),
        ("GET", f"/v1/webhooks/{hook_id}/deliveries", "admin", {}),
        ("POST", f"/v1/webhooks/{hook_id}/deliveries/999999/retry", "admin", {}),
        ("POST", f"/v1/webhooks/{hook_id}/secret", "admin", {}),
        ("DELETE", f"/v1/webhooks/{hook_id}", "admin", {}),
        ("DELETE", f"/v1/streams/{stream_id}", "admin", {}),
        ("DELETE", f"/v1/subjects/{subject_id}", "enroll", {}),
    ]


ROLE_FOR = {"read": "read", "enroll": "enroll", "identify": "identify", "admin": "admin"}
WRONG_ROLE = {"read": None, "enroll": "identify", "identify": "enroll", "admin": "enroll"}


def test_auth_matrix(api: ServerProcess, keys: dict[str, str]):
    """Every endpoint × {no key, wrong role, right role}: 401, 403, and neither (nor a 5xx)."""
    with _client(api, keys, "admin") as admin:
        subject_id = admin.post("/v1/subjects", json={"name": "auth"}).json()["id"]
        job = admin.post(f"/v1/subjects/{subject_id}/enrollments?wait=120", files=npy_upload())
        assert job.status_code == 201, job.text
        ids = {
            "subject": subject_id,
            "job": job.json()["id"],
            "key": admin.post("/v1/keys", json={"role": "read"}).json()["id"],
            "stream": admin.post("/v1/streams", json={"url": "rtsp://127.0.0.1:9/x", "enabled": False}).json()["id"],
            "hook": admin.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}).json()["id"],
        }
    with httpx.Client(base_url=api.url) as anonymous:
        bogus = {"X-API-Key": "gid_000000000000_not-a-real-key"}
        for method, path, permission, kwargs in _matrix_cases(ids):
            assert anonymous.request(method, path, **kwargs).status_code == 401, (method, path)
            assert anonymous.request(method, path, headers=bogus, **kwargs).status_code == 401, (method, path)
            wrong = WRONG_ROLE[permission]
            if wrong:
                with _client(api, keys, wrong) as client:
                    response = client.request(method, path, **kwargs)
                assert response.status_code == 403, (method, path, response.text)
                assert response.json()["error"]["code"] == "forbidden"
            with _client(api, keys, ROLE_FOR[permission]) as client:
                response = client.request(method, path, **kwargs)
            assert response.status_code not in (401, 403) and response.status_code < 500, (method, path, response.text)


def test_event_stream_auth(api: ServerProcess, keys: dict[str, str]):
    """The Server-Sent Events endpoint never ends by itself, so it is checked apart from the matrix."""
    with httpx.Client(base_url=api.url, timeout=10) as anonymous:
        assert anonymous.get("/v1/events/stream").status_code == 401
    with _client(api, keys, "read") as client, client.stream("GET", "/v1/events/stream") as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        assert next(response.iter_lines()).startswith("retry:")

    with _client(api, keys, "admin") as admin:
        created = admin.post("/v1/keys", json={"role": "read", "name": "revoked while following"}).json()
    with api.client(created["key"]) as client, client.stream("GET", "/v1/events/stream") as response:
        lines = response.iter_lines()
        assert next(lines).startswith("retry:")
        with _client(api, keys, "admin") as admin:
            assert admin.delete(f"/v1/keys/{created['id']}").status_code == 204
        # the server ends the stream (it would otherwise follow forever): the deadline only stops a hang
        rest = within(120, lambda: list(lines), "the event stream of a revoked key")
        assert "event: error" in rest and any('"key_revoked"' in line for line in rest), rest
    with api.client(created["key"]) as client:
        assert client.get("/v1/events/stream").status_code == 401


def test_streams_crud_and_validation(api: ServerProcess, keys: dict[str, str]):
    with _client(api, keys, "admin") as client:
        for bad in (
            {"url": "file:///etc/passwd"},  # never a local file
            {"url": "/dev/video0"},
            {"url": "rtsp://cam/1", "roi": [0.5, 0.1, 0.4, 0.9]},
            {"url": "rtsp://cam/1", "roi": [0, 0, 1]},
            {"url": "rtsp://cam/1", "roi": [0.5, 0.5, 0.5001, 0.6]},  # would crop to nothing
            {"url": "rtsp://cam/1", "max_fps": 0},
            {"url": "rtsp://cam/1", "colour": "red"},
        ):
            response = client.post("/v1/streams", json=bad)
            assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", bad
        created = client.post(
            "/v1/streams",
            json={"url": "rtsp://cam-1.local/stream", "name": "door", "roi": [0.1, 0, 0.9, 1], "enabled": False},
        )
        assert created.status_code == 201, created.text
        stream = created.json()
        assert stream["status"]["state"] == "disabled" and not stream["status"]["connected"]
        assert stream["roi"] == [0.1, 0, 0.9, 1] and stream["max_fps"] == 10
        listed = client.get("/v1/streams", params={"enabled": False}).json()
        assert stream["id"] in [s["id"] for s in listed["items"]]
        patched = client.patch(f"/v1/streams/{stream['id']}", json={"roi": None, "max_fps": 5, "name": "back door"})
        assert patched.status_code == 200 and patched.json()["roi"] is None and patched.json()["max_fps"] == 5
        assert client.patch(f"/v1/streams/{stream['id']}", json={"url": "ftp://x"}).status_code == 422
        assert client.patch(f"/v1/streams/{stream['id']}", json={"url": None}).status_code == 422
        secret = client.patch(f"/v1/streams/{stream['id']}", json={"url": "rtsp://viewer:s3cret@cam-1.local/s"})
        assert secret.json()["url"] == "rtsp://viewer:***@cam-1.local/s"
        assert client.delete(f"/v1/streams/{stream['id']}").status_code == 204
        missing = client.get(f"/v1/streams/{stream['id']}")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "stream_not_found"
        assert client.get("/v1/events/1").json()["error"]["code"] == "event_not_found"
        assert client.get("/v1/events", params={"decision": "maybe"}).status_code == 422
        assert client.get("/v1/events").json()["total"] == 0


def test_subjects_crud_and_sequences(api: ServerProcess, keys: dict[str, str]):
    with _client(api, keys, "enroll") as client:
        created = client.post("/v1/subjects", json={"external_id": "crud-1", "name": "Ada", "metadata": {"k": 1}})
        assert created.status_code == 201, created.text
        subject = created.json()
        assert client.post("/v1/subjects", json={"external_id": "crud-1"}).status_code == 409
        listed = client.get("/v1/subjects", params={"external_id": "crud-1"}).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == subject["id"]
        assert client.get("/v1/subjects", params={"name": "ad", "limit": 1}).json()["items"][0]["name"] == "Ada"
        patched = client.patch(f"/v1/subjects/{subject['id']}", json={"name": "Ada L.", "metadata": {"k": 2}})
        assert patched.json()["name"] == "Ada L." and patched.json()["metadata"] == {"k": 2}
        for seed in (1, 2):
            enrolled = client.post(f"/v1/subjects/{subject['id']}/enrollments?wait=120", files=npy_upload(seed))
            assert enrolled.status_code == 201, enrolled.text
        sequences = client.get(f"/v1/subjects/{subject['id']}/sequences").json()["items"]
        assert len(sequences) == 2 and client.get(f"/v1/subjects/{subject['id']}").json()["sequences"] == 2
        assert client.delete(f"/v1/subjects/{subject['id']}/sequences/{sequences[0]['id']}").status_code == 204
        assert client.get(f"/v1/subjects/{subject['id']}").json()["sequences"] == 1
        assert client.delete(f"/v1/subjects/{subject['id']}").status_code == 204
        assert client.get(f"/v1/subjects/{subject['id']}").status_code == 404
        assert client.post("/v1/subjects", json={"unknown_field": 1}).status_code == 422


def _counts(client: httpx.Client) -> tuple[int, int]:
    subjects = client.get("/v1/subjects", params={"limit": 500}).json()["items"]
    return len(subjects), sum(s["sequences"] for s in subjects)


BAD_VIDEOS = {
    "bad/empty.mp4": "empty_upload",
    "bad/text.mp4": "video_unreadable",
    "bad/truncated_no_moov.mp4": "video_unreadable",
}


def test_bad_inputs_get_4xx_and_lose_nothing(api: ServerProcess, keys: dict[str, str], videos_dir: Path):
    with _client(api, keys, "admin") as client:
        subject_id = client.post("/v1/subjects", json={"name": "kept"}).json()["id"]
        assert client.post(f"/v1/subjects/{subject_id}/enrollments?wait=120", files=npy_upload()).status_code == 201
        before = _counts(client)
        for name, code in BAD_VIDEOS.items():
            with (videos_dir / name).open("rb") as handle:
                response = client.post("/v1/identify?wait=120", files={"file": (Path(name).name, handle, "video/mp4")})
            assert response.status_code == 422, (name, response.text)
            assert response.json()["error"]["code"] == code, (name, response.text)
        with (videos_dir / "bad/no_person.mp4").open("rb") as handle:
            response = client.post("/v1/identify?wait=300", files={"file": ("no_person.mp4", handle, "video/mp4")})
        assert response.status_code == 200 and response.json()["result"]["tracks"] == [], response.text
        checks = [
            (client.post("/v1/identify", content=b"x", headers={"content-type": "text/plain"}), 415),
            (client.post("/v1/identify", files={"file": ("a.txt", b"hello", "text/plain")}), 415),
            (client.post("/v1/identify", files={"file": ("s.npy", silhouettes_npy(), "application/x-npy")}), 415),
            (client.post("/v1/identify", json={"url": "file:///etc/passwd"}), 422),
            (client.post("/v1/identify", json={"url": "rtsp://cam.example/stream"}), 422),  # cameras: /v1/streams
            (client.post("/v1/identify", json={"nope": 1}), 422),
            (client.post("/v1/identify", data={"track_id": "1"}), 422),
            (client.post(f"/v1/subjects/{subject_id}/enrollments", files={"file": ("z.npy", b"\x93NUMPYxx")}), 202),
            (client.post("/v1/subjects/no-such-subject/enrollments", files=npy_upload()), 404),
            (client.post("/v1/identify?wait=-1", json={"url": "http://127.0.0.1:9/x.mp4"}), 422),
            (client.get("/v1/jobs/no-such-job"), 404),
        ]
        for response, status in checks:
            assert response.status_code == status, response.text
            if status >= 400:
                assert response.json()["error"]["code"], response.text
        # by default a URL reaches public addresses only, the host's name resolved (see test_input_safety.py)
        for url in ("http://127.0.0.1:9/x.mp4", "http://localhost:9/x.mp4", "http://169.254.169.254/latest/"):
            response = client.post("/v1/identify", json={"url": url})
            assert response.status_code == 422 and response.json()["error"]["code"] == "url_not_allowed", response.text
        big = videos_dir / "vtest.avi"  # 8.1 MB > the 5 MB limit of this server
        with big.open("rb") as handle:
            response = client.post("/v1/identify", files={"file": ("vtest.avi", handle, "video/x-msvideo")})
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
        assert _counts(client) == before


def test_too_many_jobs_429_and_cancel(api: ServerProcess, keys: dict[str, str], videos_dir: Path):
    clip = (videos_dir / "walk_outdoor.mp4").read_bytes()
    with _client(api, keys, "identify") as client:
        jobs = []
        for _ in range(MAX_ACTIVE_JOBS):
            response = client.post("/v1/identify", files={"file": ("w.mp4", clip, "video/mp4")})
            assert response.status_code == 202, response.text
            jobs.append(response.json()["id"])
        refused = client.post("/v1/identify", files={"file": ("w.mp4", clip, "video/mp4")})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0, refused.text
        assert refused.json()["error"]["code"] == "too_many_jobs", refused.text
        for job_id in jobs:
            cancelled = client.delete(f"/v1/jobs/{job_id}")
            assert cancelled.status_code in (200, 409), cancelled.text
        for job_id in jobs:
            assert client.get(f"/v1/jobs/{job_id}").json()["status"] in ("cancelled", "succeeded")
        text = {"file": ("notes.mp4", b"not a video", "video/mp4")}  # accepted again, failing at once
        assert client.post("/v1/identify", files=text).status_code == 202


def test_mutated_uploads_never_get_a_server_error(api: ServerProcess, keys: dict[str, str], videos_dir: Path):
    """Seeded mutations of a real clip, an .npy and a zip of PNGs through the real API: every answer is a
    2xx or a 4xx with a code, and every job ends in success or a named refusal, never internal_error."""
    rng = np.random.default_rng(int(os.environ.get("GAITID_FUZZ_SEED", "0")))

    def pick(low: int, high: int) -> int:
        return int(rng.integers(low, high + 1))

    walk = np.load(io.BytesIO(silhouettes_npy(seed=3)))
    seeds = {
        "npy": ("walk.npy", silhouettes_npy(seed=3)),
        "zip": ("walk.zip", png_zip(walk)),
        "mp4": ("clip.mp4", (videos_dir / "bad" / "no_person.mp4").read_bytes()),
    }
    with _client(api, keys, "admin") as client:
        subject_id = client.post("/v1/subjects", json={"name": "fuzzed"}).json()["id"]
        for kind, count in (("npy", 8), ("zip", 8), ("mp4", 1)):  # other mutations: FUZZ_SEED=N make fuzz
            name, data = seeds[kind]
            for _ in range(count):
                files = {"file": (name, mutate(data, pick), "application/octet-stream")}
                path = "/v1/identify?wait=300" if kind == "mp4" else f"/v1/subjects/{subject_id}/enrollments?wait=120"
                response = client.post(path, files=files)
                assert response.status_code < 500, (kind, response.text)
                body = response.json()
                if response.status_code >= 400:
                    assert body["error"]["code"] not in ("", "internal_error"), (kind, response.text)
                else:
                    assert body["status"] in ("succeeded", "queued", "running"), (kind, response.text)


def test_a_burst_gets_exactly_the_job_limit(api: ServerProcess, keys: dict[str, str], videos_dir: Path):
    """Requests sent at once all pass the early check; admission one at a time lets exactly the limit in."""
    clip = (videos_dir / "walk_outdoor.mp4").read_bytes()
    with _client(api, keys, "identify") as client:

        def idle() -> bool:
            return all(not client.get("/v1/jobs", params={"status": s}).json()["items"] for s in ("queued", "running"))

        eventually(idle, 300, "earlier jobs ending")
        start = threading.Barrier(MAX_ACTIVE_JOBS + 5)

        def post(_: int) -> httpx.Response:
            with _client(api, keys, "identify") as own:
                start.wait()
                return own.post("/v1/identify", files={"file": ("w.mp4", clip, "video/mp4")})

        with ThreadPoolExecutor(MAX_ACTIVE_JOBS + 5) as pool:
            answers = list(pool.map(post, range(MAX_ACTIVE_JOBS + 5)))
        statuses = sorted(r.status_code for r in answers)
        assert statuses == [202] * MAX_ACTIVE_JOBS + [429] * 5, [r.text for r in answers]
        assert all(int(r.headers["retry-after"]) > 0 for r in answers if r.status_code == 429)
        assert all(r.json()["error"]["code"] == "too_many_jobs" for r in answers if r.status_code == 429)
        for response in answers:
            if response.status_code == 202:
                assert client.delete(f"/v1/jobs/{response.json()['id']}").status_code in (200, 409)


def test_command_line_client(api: ServerProcess, keys: dict[str, str], videos_dir: Path, tmp_path: Path):
    """`gaitid enroll` / `gaitid identify` against the server, as the README's walkthrough uses them."""
    walk = tmp_path / "walk.npy"
    walk.write_bytes(silhouettes_npy(seed=5))
    env = {"GAITID_SERVER": api.url, "GAITID_API_KEY": keys["enroll"]}
    enrolled = run_cli("enroll", str(walk), "--external-id", "cli-1", "--name", "Cli", env=env)
    assert enrolled.returncode == 0 and "enrolled subject" in enrolled.stdout, enrolled.stderr
    again = run_cli("enroll", str(walk), "--external-id", "cli-1", env=env)  # finds the subject by its id
    assert again.returncode == 0 and "created subject" not in again.stderr, again.stderr
    with _client(api, keys, "read") as client:
        assert client.get("/v1/subjects", params={"external_id": "cli-1"}).json()["items"][0]["sequences"] == 2
    env["GAITID_API_KEY"] = keys["identify"]
    found = run_cli("identify", str(videos_dir / "bad" / "no_person.mp4"), env=env)
    assert found.returncode == 0 and "no person found" in found.stdout, found.stderr
    refused = run_cli("identify", str(videos_dir / "bad" / "text.mp4"), env=env)
    assert refused.returncode == 2 and "[video_unreadable]" in refused.stderr
    forbidden = run_cli("enroll", str(walk), "--external-id", "cli-2", env=env)
    assert forbidden.returncode == 2 and "[forbidden]" in forbidden.stderr


SCHEMATHESIS_EXAMPLES = 15


def test_schemathesis_finds_no_server_error(api: ServerProcess, keys: dict[str, str], tmp_path: Path):
    """Property-based requests generated from /openapi.json (bounded): never a 5xx. Runs last in the module."""
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            str(SCHEMATHESIS_EXAMPLES),
            "--seed",
            "7",
            "--header",
            f"X-API-Key: {keys['admin']}",
            "--request-timeout",
            "60",
            "--workers",
            "1",
            "--exclude-path",
            "/v1/events/stream",  # an endless event stream: every request would run into the timeout
        ],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout
