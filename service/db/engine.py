"""Engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` so that a committed write survives a crash
of the process or the machine, with foreign keys enforced and a busy timeout so that several
processes (API, CLI) can share the file. PostgreSQL connections are checked before use
(``pool_pre_ping``), so the pool replaces the ones a server restart cut instead of failing a request
with them, and a connection attempt gives up after ``connect_timeout`` seconds (10 unless the URL
says otherwise) rather than hanging on an unreachable host.
"""

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

_CONNECT_TIMEOUT_S = 10


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file's folder is created if missing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # as many connections as requests and jobs can run at once (the API's 40 worker threads plus job
        # threads): the default pool of 15 ran out under a burst of reads and answered 500 after 30 s
        engine = create_engine(
            url, pool_size=10, max_overflow=60, connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    connect_args = {} if "connect_timeout" in parsed.query else {"connect_timeout": _CONNECT_TIMEOUT_S}
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=40, connect_args=connect_args)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
