"""Alembic, driven from the ``gaitid db`` command and the tests, against any database URL."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from service.db.engine import make_engine
from service.errors import NotReadyError

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    make_engine(database_url).dispose()  # creates a SQLite file's folder
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            row = connection.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            return row[0] if row else None
    finally:
        engine.dispose()


def head_revision(database_url: str) -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    assert head is not None
    return head


def require_migrated(database_url: str) -> None:
    """Refuse (``not_migrated``) a database that is not at the code's head revision: the app never creates tables."""
    at, head = current_revision(database_url), head_revision(database_url)
    if at != head:
        raise NotReadyError(
            f"the database is at revision {at}, the code needs {head}: run `gaitid db upgrade`", code="not_migrated"
        )
