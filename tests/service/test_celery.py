"""Scale-out jobs with a real Celery worker on the real Redis, results in the real PostgreSQL.

An identify job submitted through the API is run by the worker; a worker killed (-9) in the
middle of an enrollment leaves the job to a second worker, which finishes it without enrolling twice.
"""

import os
import signal
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO
from tests.service.conftest import create_key, db_scalar, fresh_database, running_server, wait_for_job

REDIS_URL = os.environ.get("GAITID_TEST_REDIS", "redis://127.0.0.1:6379/15")


def _redis_unavailable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        return f"Redis not reachable at {REDIS_URL}: {error}"
    return None


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


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_worker_runs_jobs_and_a_killed_workers_job_is_redone_once(tmp_path, detector_weights, pose_model, videos_dir):
    reason = _redis_unavailable()
    if reason:
        pytest.skip(reason)
    env = {
        "GAITID_DETECTOR_WEIGHTS": str(detector_weights),
        "GAITID_POSE_MODEL": str(pose_model),
        "GAITID_JOBS": "celery",
        "GAITID_REDIS_URL": REDIS_URL,
        "GAITID_CELERY_QUEUE": f"gaitid-test-{uuid.uuid4().hex[:8]}",
        "GAITID_JOB_REDELIVERY_SECONDS": "5",
        "GAITID_JOB_LEASE_SECONDS": "3",
    }
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
