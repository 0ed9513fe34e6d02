"""Faults of the machine under a running service: a PostgreSQL restart in the middle of a job, a disk
that fills up during an upload, Redis going away under Celery.

Each fault is real: a private PostgreSQL cluster (``initdb``/``pg_ctl``, never the shared server) is
stopped and started again; the data folder is a small tmpfs that really runs out of space; a
private ``redis-server`` (never the shared one) is stopped and started again on the same port. The
service must answer each with a clear status and code (503 ``database_unavailable``, 507
``insufficient_storage``, 503 ``queue_unavailable``), keep what it had acknowledged, and serve again
without a restart once the fault is gone. The measured times are printed (``pytest -s``), never
asserted: the deadlines only stop hangs.

Mounting a tmpfs needs root (CAP_SYS_ADMIN): without it the disk test skips, saying why, as the GPU
and docker tests do without their hardware.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, missing
from tests.service.conftest import (
    ServerProcess,
    create_key,
    db_scalar,
    eventually,
    free_port,
    fresh_database,
    npy_upload,
    running_server,
    wait_for_job,
)
from tests.service.test_celery import _start_worker, _stop

TERMINAL = ("succeeded", "failed", "cancelled")


def _assert_error(response: httpx.Response, status: int, code: str) -> dict:
    """The error envelope with ``status`` and ``code``, and nothing of the server's insides."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    server_paths = f"{REPO.parent}/"  # the folder holding the checkout and ../shared
    for leak in ("Traceback", server_paths, "site-packages"):
        assert leak not in response.text, response.text
    return body


# --- PostgreSQL restarted during an identify job -------------------------------------------------------------------


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on its own port, run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                missing("postgres", f"{tool} not found on PATH", "install the PostgreSQL server binaries")
        self.folder = Path(tempfile.mkdtemp(prefix="gaitid-faults-pg-"))  # not under pytest's root-only tmp
        self.data = self.folder / "data"
        self.port = free_port()
        self._as = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/gaitid"

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as, *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{command[0]} failed: {result.stderr[-2000:]}"

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as admin:
            admin.execute("CREATE DATABASE gaitid")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "-t", "120",
                  "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "120", "stop")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            stop = [*self._as, "pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"]
            subprocess.run(stop, capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.create()
        yield server
    finally:
        server.remove()


@pytest.mark.slow
@pytest.mark.postgres
def _identify_in_pipeline(client: httpx.Client, videos_dir: Path, before_what: str) -> str:
    """Submit an identify job of a real clip and wait until its pipeline runs; returns its id."""
    probe = (videos_dir / "walk_indoor_a_probe.mp4").read_bytes()
    submitted = client.post("/v1/identify", files={"file": ("probe.mp4", probe, "video/mp4")})
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    before = wait_for_job(client, job_id, lambda j: j["stage"] == "pipeline" or j["status"] in TERMINAL, 180)
    assert before["status"] == "running", f"the job ended before {before_what}: {before}"
    return job_id


def test_postgresql_restart_mid_identify_job_loses_nothing(tmp_path, shared_cache, weights_env, videos_dir):
    # the pipeline really runs (no cached result), so the restart falls inside the job
    env = {**weights_env, "GAITID_PIPELINE_CACHE": "false"}
    with private_postgres() as postgres, running_server(postgres.url, tmp_path, shared_cache, env) as api:
        client = api.client(create_key(api.env, "admin"), timeout=120)
        subject = client.post("/v1/subjects", json={"name": "Stored before the restart"}).json()["id"]
        enrolled = client.post(f"/v1/subjects/{subject}/enrollments?wait=120", files=npy_upload())
        assert enrolled.status_code == 201, enrolled.text

        job_id = _identify_in_pipeline(client, videos_dir, "the restart")

        stopped_at = time.monotonic()
        postgres.stop()
        # while the database is down: 503 with a code, never a 500
        down = _assert_error(client.get(f"/v1/jobs/{job_id}"), 503, "database_unavailable")
        assert "Retry-After" in client.get(f"/v1/subjects/{subject}").headers
        _assert_error(client.post("/v1/subjects", json={"name": "refused"}), 503, "database_unavailable")
        _assert_error(
            client.post("/v1/identify", files={"file": ("p.mp4", b"\0" * 64, "video/mp4")}), 503, down["error"]["code"]
        )
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200
        time.sleep(3)  # the job works on without its database
        postgres.start()
        started_at = time.monotonic()

        back = eventually(lambda: client.get(f"/v1/jobs/{job_id}").status_code == 200, 60, "reads after the restart")
        recovered_s = time.monotonic() - started_at
        done = wait_for_job(client, job_id, lambda j: j["status"] in TERMINAL, 300)
        print(
            f"\nPostgreSQL restart: down {started_at - stopped_at:.1f} s; reads answered again {recovered_s:.2f} s "
            f"after the start; the job ended {done['status']} ({done['error']}) "
            f"{time.monotonic() - started_at:.1f} s after it"
        )
        assert back
        assert done["status"] == "succeeded" or (done["status"] == "failed" and done["error"]["code"]), done
        if done["status"] == "succeeded":
            assert len(done["result"]["tracks"]) == 1
        # nothing stored before is lost, and the server serves on (no 5xx)
        for _ in range(20):
            assert client.get(f"/v1/subjects/{subject}").status_code == 200
        assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 1
        assert db_scalar(postgres.url, "SELECT count(*) FROM jobs") == 2
        assert client.get("/readyz").status_code == 200
        again = client.post(f"/v1/subjects/{subject}/enrollments?wait=120", files=npy_upload(seed=1))
        assert again.status_code == 201, again.text
        assert "internal_error" not in api.log_tail(200_000)


# --- the disk fills up during an upload ----------------------------------------------------------------------------


@contextmanager
def small_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on ``folder`` (root only), unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill up needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()[:200]}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _used_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _fill(folder: Path) -> Path:
    """Write a file into ``folder`` until its file system has no room left; returns the file."""
    filler = folder / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


@pytest.mark.slow
def test_full_disk_during_an_upload_or_a_job_is_507_and_loses_nothing(tmp_path, shared_cache, weights_env, videos_dir):
    env = {**weights_env, "GAITID_PIPELINE_CACHE": "false"}
    with (
        small_filesystem(tmp_path / "data", "8m") as data,
        small_filesystem(tmp_path / "spool", "16m") as spool,
        small_filesystem(tmp_path / "db", "32m") as db_disk,
        running_server(
            f"sqlite:///{db_disk / 'gaitid.db'}", tmp_path, shared_cache, {**env, "TMPDIR": str(spool)}
        ) as api,
    ):
        database = api.env["GAITID_DATABASE_URL"]
        client = api.client(create_key(api.env, "admin"), timeout=120)
        subject = client.post("/v1/subjects", json={"name": "S"}).json()["id"]
        baseline = _used_bytes(data), _used_bytes(spool)

        # 12 MB: the request's temporary copy fits in the spool, the job's input not in the 8 MB data folder
        large = os.urandom(12_000_000)
        refused = client.post("/v1/identify", files={"file": ("big.mp4", large, "video/mp4")})
        _assert_error(refused, 507, "insufficient_storage")
        assert _files(data) == [] and _used_bytes(data) == baseline[0]
        assert _used_bytes(spool) == baseline[1]

        # 20 MB: the parser's own temporary file runs out of room first
        try:
            huge = client.post("/v1/identify", files={"file": ("huge.mp4", os.urandom(20_000_000), "video/mp4")})
            _assert_error(huge, 507, "insufficient_storage")
        except httpx.TransportError as error:  # the server may answer and close before the client has sent it all
            print(f"\nthe 20 MB upload's connection was closed early: {error!r}")
        assert eventually(lambda: _used_bytes(spool) == baseline[1], 30, "the spool emptied")
        assert _files(data) == [] and _used_bytes(data) == baseline[0]

        # an enrollment refused for want of space leaves no job either
        filler = _fill(data)
        enroll = client.post(f"/v1/subjects/{subject}/enrollments", files=npy_upload())
        _assert_error(enroll, 507, "insufficient_storage")
        assert client.get("/v1/jobs").json()["items"] == []
        assert db_scalar(database, "SELECT count(*) FROM jobs") == 0

        # room again: the same server takes work at once
        filler.unlink()
        enrolled = client.post(f"/v1/subjects/{subject}/enrollments?wait=120", files=npy_upload())
        assert enrolled.status_code == 201, enrolled.text

        # the database's disk fills up while a job runs: requests that write get 507, reads go on, and the
        # job's result is written once there is room again
        job_id = _identify_in_pipeline(client, videos_dir, "the disk filled up")
        db_filler = _fill(db_disk)
        _assert_error(client.post("/v1/subjects", json={"name": "no room"}), 507, "insufficient_storage")
        assert client.get(f"/v1/jobs/{job_id}").status_code == 200
        waiting = f"job {job_id}: storing the result: the database is full"
        eventually(lambda: waiting in api.log_tail(200_000), 180, "the job waiting for room to store its result")
        db_filler.unlink()
        freed_at = time.monotonic()
        done = wait_for_job(client, job_id, lambda j: j["status"] in TERMINAL, 120)
        print(
            f"\nfull database disk: the job ended {done['status']} {time.monotonic() - freed_at:.1f} s after the room"
        )
        assert done["status"] == "succeeded", done
        assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 1
        assert client.post("/v1/subjects", json={"name": "room again"}).status_code == 201
        assert "internal_error" not in api.log_tail(200_000)


# --- Redis goes away under Celery ----------------------------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` of our own on a free port, with an append-only file, stopped and started at will."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("redis-server") is None:
            missing("redis", "redis-server not found on PATH", "install the Redis server")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--appendonly", "yes", "--save", "", "--protected-mode", "no"],
            stdout=(self.folder / "redis.log").open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip

        def answers() -> bool:
            try:
                return bool(redis.Redis.from_url(self.url, socket_connect_timeout=1).ping())
            except redis.RedisError:
                return False

        eventually(answers, 30, "the private redis-server answering")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # saves the append-only file, then exits
            self.process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.postgres
def test_redis_down_under_celery_refuses_jobs_with_503_and_recovers_without_restart(
    tmp_path, shared_cache, weights_env
):
    broker = PrivateRedis(tmp_path / "redis")
    broker.start()
    env = {**weights_env, "GAITID_JOBS": "celery", "GAITID_REDIS_URL": broker.url}
    try:
        with fresh_database("postgres", tmp_path) as url, running_server(url, tmp_path, shared_cache, env) as api:
            worker = _start_worker(api.env, "faults", tmp_path / "worker.log")
            try:
                _redis_outage(api, url, broker, tmp_path)
            finally:  # before the database is dropped
                _stop(worker, signal.SIGTERM)
    finally:
        broker.stop()


def _redis_outage(api: ServerProcess, url: str, broker: PrivateRedis, tmp_path: Path) -> None:
    client = api.client(create_key(api.env, "admin"), timeout=120)
    subject = client.post("/v1/subjects", json={"name": "R"}).json()["id"]
    first = client.post(f"/v1/subjects/{subject}/enrollments?wait=180", files=npy_upload())
    assert first.status_code == 201, first.text + (tmp_path / "worker.log").read_text()[-3000:]
    eventually(lambda: _files(tmp_path / "data" / "jobs") == [], 30, "the first job's input removed")

    broker.stop()
    stopped_at = time.monotonic()
    key = {"Idempotency-Key": "after-the-outage"}
    down = client.post(f"/v1/subjects/{subject}/enrollments", files=npy_upload(seed=1), headers=key)
    refused_s = time.monotonic() - stopped_at
    _assert_error(down, 503, "queue_unavailable")
    assert "Retry-After" in down.headers
    # the refused job was taken back: no row, no staged input; the API serves on
    assert db_scalar(url, "SELECT count(*) FROM jobs") == 1
    assert _files(tmp_path / "data" / "jobs") == []
    assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 1

    broker.start()
    started_at = time.monotonic()
    attempts: list[int] = []

    def accepted() -> httpx.Response | None:
        response = client.post(f"/v1/subjects/{subject}/enrollments?wait=180", files=npy_upload(seed=1), headers=key)
        attempts.append(response.status_code)
        return response if response.status_code != 503 else None

    again = eventually(accepted, 120, "a job accepted after Redis came back", every_s=1)
    accepted_s = time.monotonic() - started_at
    print(
        f"\nRedis down: a new job refused after {refused_s:.2f} s; after the restart, answers {attempts} "
        f"until accepted ({accepted_s:.1f} s after the restart, including the job's run)"
    )
    # the same Idempotency-Key makes a new job: the refused one was never acknowledged
    assert again.status_code == 201, again.text + (tmp_path / "worker.log").read_text()[-3000:]
    assert client.get(f"/v1/subjects/{subject}").json()["sequences"] == 2
    assert db_scalar(url, "SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 2
    assert "internal_error" not in api.log_tail(200_000)


def test_a_pool_with_no_free_connection_is_a_passing_fault(tmp_path):
    """Under a burst every pooled connection can be busy past the pool's timeout (bench load found 500s):
    that is an overload to retry (503 database_unavailable), not a bug."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import TimeoutError as PoolTimeoutError

    from service.db.faults import database_fault, database_unreachable

    engine = create_engine(f"sqlite:///{tmp_path / 'one.db'}", pool_size=1, max_overflow=0, pool_timeout=0.1)
    with engine.connect() as held:
        held.execute(text("select 1"))
        try:
            with engine.connect():
                raise AssertionError("a second connection from a pool of one")
        except PoolTimeoutError as error:
            assert database_unreachable(error) and database_fault(error)
    engine.dispose()
