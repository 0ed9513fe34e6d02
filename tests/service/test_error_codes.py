"""Error codes and request options provoked through the real API (``gaitid serve``, real HTTP), on SQLite
and PostgreSQL: each request that should be refused is refused with its own status and code.

Also what the other modules leave out: an Idempotency-Key reused with another body, ``?threshold=`` and
``?top_k=`` on identify, the event list's filters on real rows, cancelling a running job, and a job
failed as ``interrupted`` once the service died under it ``GAITID_JOB_MAX_ATTEMPTS`` times.
The error-code inventory itself is ``tests/test_error_code_coverage.py``.
"""

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from service.auth import create_key as new_key
from service.db.engine import make_engine, make_session_factory
from tests.conftest import run_cli
from tests.service.conftest import (
    DATABASES,
    ServerProcess,
    create_key,
    eventually,
    fresh_database,
    npy_upload,
    running_server,
    silhouettes_npy,
    wait_for_job,
)
from tests.service.test_webhooks import add_event, add_stream

PROBE = "walk_indoor_a_probe.mp4"  # one walker (J), 83 frames: the pipeline result is cached for the session
WAIT = "wait=600"


class Api:
    def __init__(self, server: ServerProcess, sessions: sessionmaker[Session], keys: dict[str, str], admin_id: str):
        self.server, self.sessions, self.keys, self.admin_id = server, sessions, keys, admin_id

    def client(self, role: str | None) -> httpx.Client:
        return self.server.client(self.keys[role] if role else None)


@pytest.fixture(scope="module", params=DATABASES)
def api(request, tmp_path_factory, shared_cache, weights_env) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp(f"codes-{request.param}")
    env = {
        **weights_env,
        "GAITID_STREAMS": "false",  # the events below belong to made-up cameras
    }
    with fresh_database(request.param, folder) as url, running_server(url, folder, shared_cache, env) as server:
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with sessions() as session, session.begin():  # as `gaitid keys create` makes them, without 4 CLI runs
            made = {role: new_key(session, role, f"codes-{role}") for role in ("admin", "enroll", "identify", "read")}
            session.flush()
            keys, admin_id = {role: plain for role, (_, plain) in made.items()}, made["admin"][0].id
        try:
            yield Api(server, sessions, keys, admin_id)
        finally:
            engine.dispose()


def _refused(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    error = response.json()["error"]
    assert error["code"] == code, response.text
    assert error["message"], response.text
    return error


def _video(videos_dir: Path, name: str) -> dict:
    return {"file": (name, (videos_dir / name).read_bytes(), "video/mp4")}


def test_request_errors_have_their_codes(api: Api):
    with api.client("admin") as admin:
        subject = admin.post("/v1/subjects", json={"name": "coded", "external_id": "coded-1"}).json()
        enroll = f"/v1/subjects/{subject['id']}/enrollments"
        _refused(admin.post("/v1/subjects", json={"external_id": "coded-1"}), 409, "external_id_taken")
        _refused(admin.post(enroll, files=npy_upload(), data={"track_id": "two"}), 422, "bad_track_id")
        _refused(admin.post(enroll, files=npy_upload(), data={"track_id": "-1"}), 422, "bad_track_id")
        _refused(admin.post("/v1/identify", json={"url": "ftp://cam.example/walk.mp4"}), 422, "bad_url")
        _refused(admin.post("/v1/identify", data={"url": ""}), 422, "missing_input")
        _refused(admin.post("/v1/identify", data={"track_id": "1"}), 422, "bad_track_id")  # enrollment only
        _refused(
            admin.post("/v1/previews", json={"url": "https://cam.example/a.mp4", "track_id": 1}), 422, "bad_track_id"
        )
        text = {"file": ("a.txt", b"hi", "text/plain")}
        _refused(admin.post("/v1/identify", files=text), 415, "unsupported_media_type")
        broken = admin.post(  # a form part without a name: the multipart parser refuses it
            "/v1/identify",
            content=b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n",
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        _refused(broken, 400, "malformed_body")
        _refused(admin.put("/v1/subjects"), 405, "method_not_allowed")
        _refused(admin.get("/v1/jobs/no-such-job"), 404, "job_not_found")
        _refused(admin.delete("/v1/jobs/no-such-job"), 404, "job_not_found")
        _refused(admin.post("/v1/subjects/no-such-subject/enrollments", files=npy_upload()), 404, "subject_not_found")
        _refused(admin.delete(f"/v1/subjects/{subject['id']}/sequences/999999"), 404, "sequence_not_found")
        _refused(admin.delete("/v1/keys/no-such-key"), 404, "key_not_found")
        _refused(admin.delete(f"/v1/keys/{api.admin_id}"), 409, "own_key")
        assert admin.get("/v1/keys").status_code == 200, "the admin key still works"


def test_idempotency_key_reused_with_another_body(api: Api):
    """The same key and body replay the first job; the same key with another body is refused, no job made."""
    with api.client("enroll") as client:
        subject = client.post("/v1/subjects", json={"name": "idem"}).json()["id"]
        path = f"/v1/subjects/{subject}/enrollments?wait=120"
        headers = {"Idempotency-Key": "walk-2024-05-01"}
        first = client.post(path, files=npy_upload(seed=1), headers=headers)
        assert first.status_code == 201, first.text
        again = client.post(path, files=npy_upload(seed=1), headers=headers)
        assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
        _refused(client.post(path, files=npy_upload(seed=2), headers=headers), 422, "idempotency_key_reused")
        other = client.post(f"/v1/subjects/{subject}/enrollments?wait=120&", files=npy_upload(seed=1), headers=headers)
        assert other.json()["id"] == first.json()["id"]  # the query string is not part of the request's identity
        assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 1


def test_threshold_and_top_k_on_identify(api: Api, videos_dir: Path):
    """``top_k`` caps the candidates; ``threshold`` decides: at -1 (the lowest) the best candidate is a
    match, at 1 (no score reaches it) the same walk is unknown; the answer says which threshold it used."""
    with api.client("admin") as admin:
        for seed in (11, 12, 13):
            subject = admin.post("/v1/subjects", json={"name": f"blob-{seed}"}).json()["id"]
            enrolled = admin.post(f"/v1/subjects/{subject}/enrollments?wait=120", files=npy_upload(seed=seed))
            assert enrolled.status_code == 201, enrolled.text
        subjects = admin.get("/v1/subjects", params={"limit": 500}).json()["items"]
        enrolled_count = sum(1 for s in subjects if s["sequences"])  # the candidates: subjects with a walk

        def identify(query: str) -> dict:
            response = admin.post(f"/v1/identify?{WAIT}&{query}", files=_video(videos_dir, PROBE))
            assert response.status_code == 200, response.text
            [track] = [t for t in response.json()["result"]["tracks"] if t["decision"] != "insufficient"]
            return {**track, "threshold": response.json()["result"]["threshold"]}

        low, high, default = identify("threshold=-1&top_k=2"), identify("threshold=1"), identify("")
    assert len(low["candidates"]) == 2 and len(high["candidates"]) == len(default["candidates"])
    assert len(default["candidates"]) == min(5, enrolled_count) > 2
    assert low["decision"] == "match" and low["subject"]["id"] == low["candidates"][0]["subject"]["id"]
    assert high["decision"] == "unknown" and high["subject"] is None
    assert (low["threshold"], high["threshold"]) == (-1, 1) and default["threshold"] not in (-1, 1)
    assert low["candidates"] == default["candidates"][:2], "the threshold changes the decision, not the ranking"
    with api.client("identify") as client:
        for bad in ("threshold=1.5", "threshold=-2", "top_k=0", "top_k=101"):
            _refused(client.post(f"/v1/identify?{bad}", files=_video(videos_dir, PROBE)), 422, "invalid_request")


def test_enrolling_a_track_the_video_does_not_have(api: Api, videos_dir: Path):
    with api.client("enroll") as client:
        subject = client.post("/v1/subjects", json={"name": "no such track"}).json()["id"]
        response = client.post(
            f"/v1/subjects/{subject}/enrollments?{WAIT}", files=_video(videos_dir, PROBE), data={"track_id": "99"}
        )
        error = _refused(response, 422, "track_not_found")
        assert error["details"]["tracks"] and all(t["track_id"] != 99 for t in error["details"]["tracks"])
        assert response.json()["job"]["status"] == "failed"
        assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 0


def test_event_filters_and_a_missing_snapshot(api: Api):
    """Events of two cameras, matches of two subjects and unknowns: each filter returns exactly its rows."""
    with api.client("admin") as admin:
        ada, bo = (admin.post("/v1/subjects", json={"name": name}).json()["id"] for name in ("Ada", "Bo"))
    door, gate = add_stream(api.sessions, "filter-door"), add_stream(api.sessions, "filter-gate")
    ids = {
        "door-ada": add_event(api.sessions, door, "match", ada),
        "door-unknown": add_event(api.sessions, door, "unknown"),
        "gate-ada": add_event(api.sessions, gate, "match", ada),
        "gate-bo": add_event(api.sessions, gate, "match", bo),
        "gate-unknown": add_event(api.sessions, gate, "unknown"),
    }
    with api.client("read") as client:

        def listed(**params: object) -> list[str]:
            page = client.get("/v1/events", params={"limit": 500, **params})
            assert page.status_code == 200, page.text
            names = {event_id: name for name, event_id in ids.items()}
            body = page.json()
            assert body["total"] == len(body["items"]) or "limit" in params or "offset" in params, body
            return [names[e["id"]] for e in body["items"] if e["id"] in names]

        assert listed(stream_id=door) == ["door-unknown", "door-ada"]  # newest first
        assert listed(stream_id=gate, decision="match") == ["gate-bo", "gate-ada"]
        assert listed(subject_id=ada) == ["gate-ada", "door-ada"]
        assert listed(subject_id=ada, stream_id=gate) == ["gate-ada"]
        assert listed(decision="unknown", stream_id=gate) == ["gate-unknown"]
        assert listed(stream_id=door, limit=1) == ["door-unknown"]
        assert listed(stream_id=door, offset=1) == ["door-ada"]
        assert client.get("/v1/events", params={"stream_id": door, "limit": 1}).json()["total"] == 2
        all_events = client.get("/v1/events", params={"limit": 500}).json()
        at = {e["id"]: e["created_at"] for e in all_events["items"]}
        since = listed(stream_id=gate, since=at[ids["gate-bo"]])
        assert since == ["gate-unknown", "gate-bo"], since
        assert listed(stream_id=gate, until=at[ids["gate-bo"]]) == ["gate-ada"]
        assert listed(subject_id="no-such-subject") == []
        event = client.get(f"/v1/events/{ids['gate-bo']}").json()
        assert event["subject"]["id"] == bo and event["snapshot"] is None
        _refused(client.get(f"/v1/events/{ids['gate-bo']}/snapshot"), 404, "snapshot_not_found")
        _refused(client.get("/v1/events/999999999"), 404, "event_not_found")


def test_command_line_client_errors(api: Api, tmp_path: Path):
    """The ``gaitid`` client's own refusals: no key, no file, no server; exit status 2 and the code."""
    walk = tmp_path / "walk.npy"
    walk.write_bytes(silhouettes_npy(seed=4))
    no_key = run_cli("identify", str(walk), env={"GAITID_SERVER": api.server.url, "GAITID_API_KEY": ""})
    assert no_key.returncode == 2 and "[missing_api_key]" in no_key.stderr, no_key.stderr
    env = {"GAITID_SERVER": api.server.url, "GAITID_API_KEY": api.keys["identify"]}
    no_file = run_cli("identify", str(tmp_path / "nope.mp4"), env=env)
    assert no_file.returncode == 2 and "[video_not_found]" in no_file.stderr, no_file.stderr
    closed = ServerProcess({}, tmp_path / "none.log").url  # a free port nobody listens on
    down = run_cli("identify", str(walk), env={**env, "GAITID_SERVER": closed})
    assert down.returncode == 2 and "[server_unreachable]" in down.stderr, down.stderr


# --- jobs that are running: cancelled, or interrupted for good ------------------------------------------

RUNNING_CLIP = "toward_camera.mp4"  # one walker for 6 s: a pipeline run long enough to be caught running


@pytest.mark.slow
def test_cancel_a_running_job_then_a_job_interrupted_too_often_fails(tmp_path, weights_env, videos_dir):
    """A running enrollment is cancelled: the waiting request gets 409 ``job_cancelled``, nothing is
    enrolled, a second cancel is ``job_finished``. Then, with ``GAITID_JOB_MAX_ATTEMPTS=1``, the server is
    killed (-9) under a running job: after the restart the job is ``failed`` with ``interrupted``."""
    env = {
        **weights_env,
        "GAITID_JOB_MAX_ATTEMPTS": "1",
        "GAITID_STREAMS": "false",
    }
    # its own cache: a cached pipeline result would end the job before it could be cancelled or killed
    with (
        fresh_database("sqlite", tmp_path) as url,
        running_server(url, tmp_path, tmp_path / "cache", env) as server,
        server.client(create_key(server.env, "admin")) as client,
    ):
        subject = client.post("/v1/subjects", json={"name": "cancelled"}).json()["id"]
        path = f"/v1/subjects/{subject}/enrollments"
        waited: list[httpx.Response] = []
        waiting = threading.Thread(
            target=lambda: waited.append(client.post(f"{path}?{WAIT}", files=_video(videos_dir, RUNNING_CLIP)))
        )
        waiting.start()
        job = eventually(
            lambda: client.get("/v1/jobs", params={"status": "running"}).json()["items"], 120, "a running job"
        )[0]
        cancelled = client.delete(f"/v1/jobs/{job['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
        waiting.join(120)
        assert not waiting.is_alive(), "the waiting request was answered"
        error = _refused(waited[0], 409, "job_cancelled")
        assert waited[0].json()["job"]["id"] == job["id"] and not error["details"]
        _refused(client.delete(f"/v1/jobs/{job['id']}"), 409, "job_finished")
        # the runner is free again and the cancelled job wrote nothing: the next enrollment is the only one
        assert client.post(f"{path}?wait=120", files=npy_upload()).status_code == 201
        assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "cancelled"
        assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 1

        identify = client.post("/v1/identify", files=_video(videos_dir, RUNNING_CLIP))
        assert identify.status_code == 202, identify.text
        job_id = identify.json()["id"]
        wait_for_job(client, job_id, lambda j: j["status"] == "running" and j["progress"] > 0.05, timeout_s=120)
        server.kill()  # SIGKILL: the job's one allowed attempt dies with the process
        server.start()
        failed = wait_for_job(client, job_id, lambda j: j["status"] not in ("queued", "running"), timeout_s=120)
        assert failed["status"] == "failed" and failed["error"]["code"] == "interrupted", failed
        assert failed["result"] is None and "1 times" in failed["error"]["message"], failed
