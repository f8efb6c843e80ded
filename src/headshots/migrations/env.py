"""Alembic environment: migrations run on a connection handed in by db.migrate."""

from __future__ import annotations

from alembic import context

# Every module that defines tables must be imported, or autogenerate would
# propose dropping its tables (tests/orders/test_migrations.py checks this).
from headshots.orders import drafts, processes  # noqa: F401
from headshots.orders.models import Base
from headshots.orders.teams import models as team_models  # noqa: F401

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
