"""Scale-out jobs with a real Celery worker on the real Redis, results in the real PostgreSQL.

An identify job submitted through the API is run by the worker; a worker killed (-9) in the
middle of an enrollment leaves the job to a second worker, which finishes it without enrolling twice.
Live streams are read by the workers, each stream by exactly one of them, and a dead worker's
streams are taken over.
"""

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from bench.stream_source import ClipStreamServer, encode_clip
from tests.conftest import REPO, missing
from tests.service.conftest import create_key, db_scalar, eventually, fresh_database, running_server, wait_for_job

REDIS_URL = os.environ.get("GAITID_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _require_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
        return
    except redis.RedisError as error:
        why = " ".join(str(error).split())[:200]
    missing(
        "redis",
        f"Redis not reachable at {REDIS_URL}: {why}",
        "start Redis on 127.0.0.1:6379 or point GAITID_TEST_REDIS at one",
    )


def _start_worker(env: dict[str, str], name: str, log_path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", "--hostname", f"{name}@%h"],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill reaches the pool's child too
    )


def _stop(worker: subprocess.Popen[bytes], sig: int) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, sig)
        worker.wait(timeout=60)


def _celery_env(weights_env: dict[str, str]) -> dict[str, str]:
    _require_redis()
    return {
        **weights_env,
        "GAITID_JOBS": "celery",
        "GAITID_REDIS_URL": REDIS_URL,
        "GAITID_CELERY_QUEUE": f"gaitid-test-{uuid.uuid4().hex[:8]}",
        "GAITID_JOB_REDELIVERY_SECONDS": "5",
        "GAITID_JOB_LEASE_SECONDS": "3",
    }


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_worker_runs_jobs_and_a_killed_workers_job_is_redone_once(tmp_path, weights_env, videos_dir):
    env = _celery_env(weights_env)
    with fresh_database("postgres", tmp_path) as url, running_server(url, tmp_path, tmp_path / "cache", env) as api:
        worker_env = {**api.env}
        first = _start_worker(worker_env, "first", tmp_path / "worker-first.log")
        second = None
        try:
            client = api.client(create_key(api.env, "admin"))
            probe = (videos_dir / "walk_indoor_a_probe.mp4").read_bytes()
            identified = client.post("/v1/identify?wait=300", files={"file": ("probe.mp4", probe, "video/mp4")})
            assert identified.status_code == 200, identified.text + (tmp_path / "worker-first.log").read_text()[-3000:]
            job_id = identified.json()["id"]
            assert db_scalar(url, "SELECT status FROM jobs WHERE id = :id", id=job_id) == "succeeded"
            assert len(identified.json()["result"]["tracks"]) == 1

            subject = client.post("/v1/subjects", json={"name": "J"}).json()["id"]
            clip = (videos_dir / "walk_indoor_a_enroll.mp4").read_bytes()
            enroll = client.post(f"/v1/subjects/{subject}/enrollments", files={"file": ("j.mp4", clip, "video/mp4")})
            assert enroll.status_code == 202, enroll.text
            enroll_id = enroll.json()["id"]
            wait_for_job(client, enroll_id, lambda j: j["status"] == "running" and j["progress"] > 0.05, 120)
            _stop(first, signal.SIGKILL)
            second = _start_worker(worker_env, "second", tmp_path / "worker-second.log")
            done = wait_for_job(client, enroll_id, lambda j: j["status"] not in ("queued", "running"), 300)
            assert done["status"] == "succeeded", done
            assert db_scalar(url, "SELECT attempts FROM jobs WHERE id = :id", id=enroll_id) >= 2
            assert db_scalar(url, "SELECT count(*) FROM sequences WHERE job_id = :id", id=enroll_id) == 1
            assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 1
        finally:
            _stop(first, signal.SIGKILL)
            if second is not None:
                _stop(second, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_each_stream_is_read_by_one_worker_and_a_dead_workers_stream_is_taken_over(tmp_path, weights_env, videos_dir):
    env = {**_celery_env(weights_env), "GAITID_STREAM_LEASE_SECONDS": "4"}
    frames, fps = encode_clip(videos_dir / "walk_indoor_a_probe.mp4", width=360)
    cameras = [ClipStreamServer(frames, fps).start() for _ in range(2)]
    workers: dict[str, subprocess.Popen[bytes]] = {}
    with fresh_database("postgres", tmp_path) as url, running_server(url, tmp_path, tmp_path / "cache", env) as api:
        try:
            for name in ("one", "two"):
                workers[name] = _start_worker(api.env, name, tmp_path / f"worker-{name}.log")
            client = api.client(create_key(api.env, "admin"))
            ids = [client.post("/v1/streams", json={"url": c.url, "max_fps": 5}).json()["id"] for c in cameras]

            def owners() -> dict[str, str] | None:
                statuses = {i: client.get(f"/v1/streams/{i}").json()["status"] for i in ids}
                if all(s["state"] == "connected" for s in statuses.values()):
                    return {i: s["owner"] for i, s in statuses.items()}
                return None

            first = eventually(owners, 180, "both streams connected")
            assert all(str(api.process.pid) not in owner.split(":") for owner in first.values()), first  # not the API
            time.sleep(6)  # several lease renewals later, still one reader per camera
            assert [len(c.connections) for c in cameras] == [1, 1]

            victim_pid = int(first[ids[0]].split(":")[1])
            victim = next(w for w in workers.values() if victim_pid != w.pid and _is_child(victim_pid, w.pid))
            _stop(victim, signal.SIGKILL)
            survivor = next(w for w in workers.values() if w is not victim)

            def taken_over() -> bool:
                status = client.get(f"/v1/streams/{ids[0]}").json()["status"]
                return status["state"] == "connected" and _is_child(int(status["owner"].split(":")[1]), survivor.pid)

            eventually(taken_over, 60, "the dead worker's stream taken over")
            assert len(cameras[0].connections) == 2
        finally:
            for worker in workers.values():
                _stop(worker, signal.SIGTERM)
            for camera in cameras:
                camera.stop()


def _is_child(pid: int, parent: int) -> bool:
    """Whether ``pid`` is a pool process of the worker whose main process is ``parent``."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1]) == parent
    except (OSError, ValueError, IndexError):
        return False
