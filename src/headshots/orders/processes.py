"""Which processes are alive: a heartbeat row each, so their leases can be told apart.

A lease names the process that holds it by a random id. Host names and pids
cannot do that: two containers with the same host name (host networking, a
fixed ``hostname:``) have separate pid namespaces, so one would take the
other's live pids for dead ones, release its leases and buy its predictions
again. Each process that claims work instead writes its heartbeat here every
BEAT_SECONDS; one whose heartbeat is older than LAPSED_SECONDS has stopped,
wherever it ran, and its leases can be released at once instead of when they
run out. The functions take a Session and never commit.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import String, delete, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from headshots.orders.models import Base, utcnow

BEAT_SECONDS = 2.0
# Five missed beats: a process starved of CPU for a moment (a busy machine,
# a long garbage collection) keeps its work; a killed one loses it within
# seconds, sooner than its leases would run out.
LAPSED_SECONDS = 10.0
# A row this old names no lease any more (leases last an hour at most).
FORGOTTEN_AFTER = timedelta(days=1)


class Process(Base):
    """A process that claims work, and when it last said it was alive."""

    __tablename__ = "processes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


def new_id() -> str:
    return secrets.token_hex(16)


def beat(session: Session, process_id: str, now: datetime | None = None) -> None:
    """This process is alive now (its row is made on the first beat)."""
    now = now or utcnow()
    changed = session.execute(
        update(Process)
        .where(Process.id == process_id)
        .values(seen_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not changed:
        # Only this process writes its row: no other insert can race this one.
        session.add(Process(id=process_id, seen_at=now))
        session.flush()


def lapsed_before(now: datetime | None = None) -> datetime:
    """A process last seen before this has stopped."""
    return (now or utcnow()) - timedelta(seconds=LAPSED_SECONDS)


def forget_stopped(session: Session, now: datetime | None = None) -> int:
    """Delete the rows of processes stopped long ago; how many."""
    result = session.execute(
        delete(Process).where(Process.seen_at < (now or utcnow()) - FORGOTTEN_AFTER)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
