"""Database engine, sessions and migrations.

SQLite in the data dir by default; ``HEADSHOTS_DATABASE_URL`` selects
PostgreSQL. The schema is owned by Alembic and brought up to date at start-up
of the web service and of every worker.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.orders import effects, scrubbing

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# One advisory lock per schema: databases in other schemas never wait on it.
_SCHEMA_LOCK = text(
    "SELECT pg_advisory_xact_lock(hashtext('headshots.migrate.' || current_schema()))"
)


def database_url(settings: Settings) -> str:
    if settings.database_url:
        url = settings.database_url
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            # psycopg 3 is the driver we ship.
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        if not (url.startswith("postgresql+psycopg://") or url.startswith("sqlite")):
            raise ConfigurationError(
                "HEADSHOTS_DATABASE_URL must be a postgresql:// or sqlite:/// URL."
            )
        return url
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return f"sqlite:///{settings.data_dir / 'headshots.db'}"


def make_engine(settings: Settings) -> Engine:
    url = database_url(settings)
    options: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        # Worker threads and the web server share one file; WAL lets readers
        # go on while a job writes, and the busy timeout waits out the writer.
        options["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        options.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
    engine = create_engine(url, **options)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Deleted content is overwritten with zeros, so a shredded key does not
    # linger in a freed part of a page (see orders.scrubbing).
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent).

    Processes started together on a fresh database (two web processes and a
    worker) would each create the tables and all but one die at start; so
    one migrates at a time and the others wait for it, then find the schema
    current and change nothing.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _migrating_alone(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Held until this transaction, which creates the schema, commits.
            connection.execute(_SCHEMA_LOCK)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _migrating_alone(engine: Engine) -> Iterator[None]:
    """On a SQLite file, an exclusive lock on a file beside it, held while migrating.

    SQLite's own locking cannot serve: the driver runs DDL outside any
    transaction, so two processes each see no table and create it.
    """
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrating", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    factory = sessionmaker(engine, expire_on_commit=False)
    scrubbing.install(factory)
    return factory


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits at the end, rolls back on any error.

    What the work set off (orders.effects: jobs to enqueue, shreds to
    announce, pages to wake) runs once the commit succeeded and the session
    is closed; on a rollback, or a commit that fails, it is dropped.
    """
    with factory() as session:
        with session.begin():
            yield session
        run_effects = effects.committed(session)
    run_effects()


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
