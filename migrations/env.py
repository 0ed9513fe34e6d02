"""Alembic environment: runs revisions against ``sqlalchemy.url`` or ``GAITID_DATABASE_URL``."""

from alembic import context

from service.db.engine import make_engine
from service.db.tables import Base
from service.settings import load_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or load_settings().database_url

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
