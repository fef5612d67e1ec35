"""Alembic environment: migrations run only through ``jobs.store`` (``Store(url)`` upgrades on open).

``jobs.store._engine.upgrade`` passes an open connection, already inside a transaction (and,
on PostgreSQL, holding the migration advisory lock), in ``config.attributes["connection"]``.
New revisions are written by hand in ``versions/`` (next: ``0002_<what>.py`` with
``down_revision = "0001"``); ``tests/jobs/test_store.py`` fails if the models and the migrated
schema differ.
"""

from alembic import context

from jobs.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through jobs.store.Store(url), which passes a connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
)
with context.begin_transaction():
    context.run_migrations()
