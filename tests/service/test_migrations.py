"""Alembic migrations on both databases: upgrade head, step back a revision, downgrade base, upgrade again."""

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from service.db.engine import make_engine
from service.db.migrate import upgrade
from service.db.tables import Base
from tests.conftest import REPO, run_cli

STREAM_TABLES = {"streams", "events", "webhooks", "webhook_deliveries"}
TABLES = {"subjects", "sequences", "gallery_changes", "jobs", "api_keys", "audit_log", "job_admission", *STREAM_TABLES}


def _columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    env = {"GAITID_DATABASE_URL": database_url}
    upgraded = run_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database at revision 0004" in upgraded.stdout
    assert _tables(database_url) == TABLES
    stepped = run_cli("db", "downgrade", "0003", env=env)  # one revision back: the admission table goes
    assert stepped.returncode == 0, stepped.stderr
    assert _tables(database_url) == TABLES - {"job_admission"}
    stepped = run_cli("db", "downgrade", "0002", env=env)  # the events lose their confidence column
    assert stepped.returncode == 0, stepped.stderr
    assert "confidence" not in _columns(database_url, "events")
    stepped = run_cli("db", "downgrade", "0001", env=env)  # the stream tables go
    assert stepped.returncode == 0, stepped.stderr
    assert _tables(database_url) == TABLES - STREAM_TABLES - {"job_admission"}
    downgraded = run_cli("db", "downgrade", "base", env=env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert _tables(database_url) == set()
    # the plain alembic command line works too, with the URL from GAITID_DATABASE_URL
    alembic = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )
    assert alembic.returncode == 0, alembic.stderr
    assert _tables(database_url) == TABLES


def test_migrations_match_the_tables(tmp_path):
    """Autogenerate finds nothing to add: the revisions create exactly what service.db.tables declares."""
    url = f"sqlite:///{tmp_path / 'compare.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_commands_refuse_an_unmigrated_database(tmp_path):
    env = {"GAITID_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    result = run_cli("keys", "create", "--role", "admin", env=env)
    assert result.returncode == 2
    assert "[not_migrated]" in result.stderr and "gaitid db upgrade" in result.stderr
