"""Scrubbing shredded keys out of the database's files, the moment the shred commits.

Setting a key to NULL or deleting its row is not enough on its own: the
bytes stay where the database wrote them. SQLite keeps them in the freed
part of the page and in older frames of its write-ahead log until a
checkpoint; PostgreSQL keeps the old row version in the table file until
VACUUM reuses its space (and a plain VACUUM does not zero it).

So keys live in a table of their own (``data_keys``) and, after every
commit that deleted one, this module scrubs it from the files:

- SQLite runs with ``secure_delete``, which overwrites deleted content with
  zeros, and a ``wal_checkpoint(TRUNCATE)`` after the commit writes the
  zeroed pages into the database file and empties the log.
- PostgreSQL runs ``VACUUM FULL data_keys``, which writes the live keys to a
  new file and removes the old one; the table is small (one row per live
  order or draft), so this takes milliseconds.

What remains is written in docs/decisions/0012-shredding-reaches-every-file.md:
on PostgreSQL the write-ahead log segments that recorded the key's insert,
until the server recycles them, and any backup or WAL archive.

The hook is a pair of session events, so every path that shreds (DELETE,
the expiry sweep, drafts) gets it without calling anything.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, object_session, sessionmaker

from headshots.errors import HeadshotsError
from headshots.orders.models import DataKey

log = logging.getLogger(__name__)

_PENDING = "headshots.keys_deleted"
# A scrub waits at most this long for another transaction's lock on
# data_keys (PostgreSQL) or for readers to leave the log (SQLite).
LOCK_TIMEOUT_SECONDS = 10
# One try of the PostgreSQL scrub waits this long for its lock.
ATTEMPT_LOCK_MS = 200


# Set when a scrub failed in this process; the next sweep scrubs again.
_owed = False


class ScrubFailed(HeadshotsError):
    """The shred committed, but a copy of the key may still be in a database file."""

    status_code = 503
    code = "scrub_pending"
    message = (
        "Your order is deleted and can no longer be opened, but wiping its key from the "
        "database files has not finished; it is retried within minutes."
    )


def install(factory: sessionmaker[Session]) -> None:
    """Scrub after every commit, through sessions of ``factory``, that deleted a key."""
    event.listen(factory, "after_commit", _scrub_after_commit)
    event.listen(factory, "after_rollback", _forget)


def scrub_if_owed(session: Session) -> None:
    """Have the commit of ``session`` scrub again if an earlier scrub here failed."""
    if _owed:
        session.info[_PENDING] = True


@event.listens_for(DataKey, "after_delete")
def _note_deleted_key(_mapper: Any, _connection: Any, key: DataKey) -> None:
    # Orphaned keys (an order's key set to None) are deleted by the flush
    # without ever being listed in session.deleted; this sees every one.
    session = object_session(key)
    if session is not None:
        session.info[_PENDING] = True


def _forget(session: Session) -> None:
    session.info.pop(_PENDING, None)


def _scrub_after_commit(session: Session) -> None:
    if not session.info.pop(_PENDING, False):
        return
    global _owed
    bind = session.get_bind()
    try:
        scrub(bind if isinstance(bind, Engine) else bind.engine)
    except ScrubFailed:
        _owed = True
        log.error("a shredded key is not yet scrubbed from the database files")
        raise
    _owed = False


def scrub(engine: Engine) -> None:
    """Remove every deleted key's bytes from the database's files, now.

    Raises ScrubFailed when it could not, so the request that shredded
    answers an error instead of a promise that does not hold; the shred
    itself stays committed, and the next scrub (the next shred or the
    periodic sweep) removes what is left.
    """
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        if engine.dialect.name == "sqlite":
            # Readers still on an older snapshot make the checkpoint wait
            # (the busy timeout), then report busy rather than truncate.
            # Two checkpoints at once (two shreds) make one answer busy at
            # once, without waiting: try again until the deadline.
            deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
            while True:
                busy, _, _ = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if not busy:
                    break
                if time.monotonic() > deadline:
                    raise ScrubFailed()
                time.sleep(0.02)
            log.debug("shredded keys scrubbed (SQLite checkpoint, log truncated)")
        elif engine.dialect.name == "postgresql":
            _vacuum_keys(connection)


def _vacuum_keys(connection: Connection) -> None:
    """VACUUM FULL data_keys, in short tries.

    Its exclusive lock, while it waits, queues every other transaction that
    reads a key behind it; one of those may hold a row another key reader
    needs, and the deadlock detector would then kill a request. So each try
    gives up long before the detector looks (deadlock_timeout, 1 s by
    default), and the tries go on until the deadline.
    """
    deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
    _wait_for_older_transactions(connection, deadline)
    connection.execute(text(f"SET lock_timeout = '{ATTEMPT_LOCK_MS}ms'"))
    try:
        while True:
            try:
                connection.execute(text("VACUUM FULL data_keys"))
                return
            except OperationalError as error:
                if time.monotonic() > deadline:
                    log.error("VACUUM FULL data_keys failed: %s", type(error.orig).__name__)
                    raise ScrubFailed() from error
                time.sleep(0.05)
    finally:
        connection.execute(text("RESET lock_timeout"))


# Transactions begun before the scrub that still hold an id or a snapshot.
_OLDER = text(
    "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid()"
    " AND (backend_xid IS NOT NULL OR backend_xmin IS NOT NULL) AND xact_start < :since"
)


def _wait_for_older_transactions(connection: Connection, deadline: float) -> None:
    """Wait until every transaction that was running when the key was deleted has ended.

    VACUUM FULL copies a deleted row into the new file while any transaction
    older than the delete is still running (the row is "recently dead" to
    it): a job's write, the heartbeat, another request. The key would then
    stay on disk until some later scrub. Such transactions are short; past
    the deadline the scrub fails and the sweep scrubs again.
    """
    since = connection.execute(text("SELECT clock_timestamp()")).scalar_one()
    while connection.execute(_OLDER, {"since": since}).scalar_one():
        if time.monotonic() > deadline:
            log.error("a transaction older than a shred is still running; scrub postponed")
            raise ScrubFailed()
        time.sleep(0.01)
