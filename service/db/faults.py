"""Telling a database fault — an outage (a restart, a failover, a cut connection) or a full disk —
from a wrong statement, and riding one out.

A request meets an unreachable database with 503 ``database_unavailable`` and a full one with 507
``insufficient_storage`` (the client retries later). A job's writes are retried for :data:`RETRY_S`
instead of failing the job for a fault that is not its own (its failure could not even be recorded
on a full disk), so a PostgreSQL restart or a disk filling up in the middle of a job costs a pause,
not the job. Each retried call opens its own session: the pool (``pool_pre_ping``) replaces the
connections a restart cut.
"""

import errno
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.errors import describe

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_S = 120.0  # how long a job's writes wait for the database before the job is left to be retried later
_FIRST_PAUSE_S, _MAX_PAUSE_S = 0.5, 5.0
_DISK_FULL_SQLSTATE = "53100"  # PostgreSQL's disk_full
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def database_full(error: BaseException) -> bool:
    """The database could not write because its disk is full (PostgreSQL's ``disk_full``, SQLite's
    ``SQLITE_FULL``): a 507, not a retry."""
    if not isinstance(error, DBAPIError):
        return False
    orig = error.orig
    return getattr(orig, "sqlstate", None) == _DISK_FULL_SQLSTATE or "database or disk is full" in str(orig)


def database_unreachable(error: BaseException) -> bool:
    """The database cannot be reached or used right now (stopped, restarting, connection cut, SQLite
    busy past its timeout, no free connection in the pool under a burst), as opposed to a statement it
    refused: worth retrying later."""
    if isinstance(error, PoolTimeoutError):
        return True
    if not isinstance(error, DBAPIError) or database_full(error):
        return False
    return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)


def database_fault(error: BaseException) -> bool:
    """A fault of the database's machine (unreachable, or its disk full) that passes: retry the write later."""
    return database_unreachable(error) or database_full(error)


def disk_full(error: BaseException) -> bool:
    """An ``OSError`` saying the file system (or the user's quota) has no room left."""
    return isinstance(error, OSError) and error.errno in _NO_SPACE


def retry_database(call: Callable[[], T], what: str, retry_s: float = RETRY_S) -> T:
    """``call()``, called again (with growing pauses) while the database is unreachable or full (see
    :func:`database_fault`), for up to ``retry_s`` seconds; then its error. ``call`` must open its own
    session and be safe to repeat."""
    deadline = time.monotonic() + retry_s
    pause = _FIRST_PAUSE_S
    while True:
        try:
            return call()
        except (DBAPIError, PoolTimeoutError) as error:
            if not database_fault(error) or time.monotonic() + pause > deadline:
                raise
            fault = "full" if database_full(error) else "unreachable"
            log.warning("%s: the database is %s (%s); trying again in %.1f s", what, fault, describe(error), pause)
        time.sleep(pause)
        pause = min(2 * pause, _MAX_PAUSE_S)
