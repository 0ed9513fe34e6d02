"""Fixtures for the service: real databases (SQLite file, PostgreSQL server) and a real server process.

The server runs as users run it — ``gaitid serve`` in a subprocess, uvicorn, real HTTP — on a
database migrated by ``gaitid db upgrade``'s code and keys made by ``gaitid keys create``'s code, both run in
this process (tests/service/test_migrations.py runs those two commands for real).
"""

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import numpy as np
import pytest
from sqlalchemy import text

from service.auth import issue_key
from service.db.engine import make_engine, make_session_factory
from service.db.migrate import upgrade
from tests.conftest import REPO, missing, walking_blob

if TYPE_CHECKING:
    from fastapi import FastAPI

POSTGRES_ADMIN_URL = os.environ.get("GAITID_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
READY_TIMEOUT_S = 180


def require_postgres() -> None:
    """Fail (see :func:`tests.conftest.missing`) when the PostgreSQL server is not reachable."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
            return
    except psycopg.Error as error:
        why = " ".join(str(error).split())[:200]
    missing(
        "postgres",
        f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {why}",
        "start PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth, database `test`) "
        "or point GAITID_TEST_POSTGRES at one",
    )


@contextmanager
def fresh_database(kind: str, folder: Path) -> Iterator[str]:
    """A new, empty database: a SQLite file in ``folder``, or a PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'gaitid.db'}"
        return
    import psycopg

    require_postgres()
    name = f"gaitid_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs on SQLite and on PostgreSQL."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``gaitid serve`` in a subprocess; can be killed (-9) and restarted on the same database."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(self.port)],
            cwd=REPO,
            env={**os.environ, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"server not ready after {READY_TIMEOUT_S} s: {self.log_tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def client(self, key: str | None = None, timeout: float = 600) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


@contextmanager
def serve_in_process(app: "FastAPI") -> Iterator[str]:
    """``app`` behind a real uvicorn server on 127.0.0.1, in a thread of this process (so that a test can
    reach the app's state, e.g. its database engine); yields the URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), 180, "the in-process server to start")
        assert server.started, "the in-process server did not start (see the log above)"
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(30)


def eventually(probe: Callable[[], object], timeout_s: float, what: str = "the condition", every_s: float = 0.1):
    """Poll ``probe`` until it returns something truthy, and return that; fail saying ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(every_s)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def wait_for_job(client: httpx.Client, job_id: str, until: Callable[[dict], bool], timeout_s: float = 300) -> dict:
    """Poll ``GET /v1/jobs/{id}`` until ``until(job)`` holds; fail with the last state after ``timeout_s``."""
    last: list[dict] = [{}]

    def reached() -> dict | None:
        last[0] = client.get(f"/v1/jobs/{job_id}").json()
        return last[0] if until(last[0]) else None

    try:
        return eventually(reached, timeout_s, f"job {job_id}", every_s=0.25)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {last[0]}") from None


def db_scalar(database_url: str, sql: str, **params: object) -> object:
    """One value read straight from the database, behind the service's back."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text(sql), params).scalar_one()
    finally:
        engine.dispose()


def service_env(database_url: str, tmp_path: Path, cache: Path) -> dict[str, str]:
    return {
        "GAITID_DATABASE_URL": database_url,
        "GAITID_DATA_DIR": str(tmp_path / "data"),
        "GAITID_CACHE_DIR": str(cache),
        "GAITID_MODELS_DIR": str(tmp_path / "models"),
        "GAITID_LOG_LEVEL": "info",
        # reuse the pipeline results of the clips the pipeline tests already processed in this session
        "GAITID_PIPELINE_CACHE": "true",
    }


def create_key(env: dict[str, str], role: str) -> str:
    """A key made as ``gaitid keys create --role ROLE`` makes it (the same service code, audit row included),
    in this process: each CLI run costs ~2.7 s of start-up (tests/service/test_migrations.py runs the real one)."""
    engine = make_engine(env["GAITID_DATABASE_URL"])
    try:
        with make_session_factory(engine)() as session:
            _, plaintext = issue_key(session, role, f"test-{role}")  # type: ignore[arg-type]
            session.commit()
    finally:
        engine.dispose()
    return plaintext


@contextmanager
def running_server(
    database_url: str, folder: Path, cache: Path, extra_env: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """Migrate the database as ``gaitid db upgrade`` does (in this process: the CLI's start-up costs seconds;
    tests/service/test_migrations.py runs the real command) and run ``gaitid serve`` on it until the block ends."""
    env = {**service_env(database_url, folder, cache), **(extra_env or {})}
    upgrade(database_url)
    process = ServerProcess(env, folder / "server.log")
    process.start()
    try:
        yield process
    finally:
        process.kill(signal.SIGTERM)


@pytest.fixture()
def server(
    database_url: str, tmp_path: Path, shared_cache: Path, weights_env: dict[str, str]
) -> Iterator[ServerProcess]:
    """A migrated database and a running server on it (SQLite and PostgreSQL in turn)."""
    with running_server(database_url, tmp_path, shared_cache, weights_env) as process:
        yield process


def silhouettes_npy(frames: int = 30, seed: int = 0) -> bytes:
    """A synthetic walking-blob sequence (:func:`tests.conftest.walking_blob`) as an .npy file."""
    buffer = io.BytesIO()
    np.save(buffer, walking_blob(frames, seed))
    return buffer.getvalue()


def npy_upload(seed: int = 0) -> dict:
    return {"file": ("walk.npy", silhouettes_npy(seed=seed), "application/octet-stream")}
