"""The periodic sweep: expired orders shredded, lost work found, stalled orders finished.

Huey runs a periodic task on every consumer, so the sweep first claims its
tick (:func:`claim_tick`): one consumer per period does the work, across
every process and machine. Each function takes a Session and never commits;
jobs.tasks runs them in their own transactions, in the order that keeps
their locks apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from headshots.config import Settings
from headshots.orders import scrubbing, shredding, variations
from headshots.orders.effects import after_commit
from headshots.orders.models import Order, OrderStatus, Tick, Variation, VariationStatus, utcnow
from headshots.orders.service import UNFINISHED, finish_if_complete, shred
from headshots.storage.vault import EncryptedBlobs

# A job that stores an image just as its order is shredded stops within a
# lease renewal (seconds) and deletes what it wrote; this catches a job that
# died in between.
LATE_WRITES_WINDOW = timedelta(minutes=2)


def sweep_expired(
    session: Session, blobs: EncryptedBlobs, now: datetime | None = None
) -> list[str]:
    """Shred every order past its expiry; the ids shredded."""
    now = now or utcnow()
    expired = session.scalars(
        select(Order).where(
            Order.expires_at <= now,
            Order.status.in_([OrderStatus.QUEUED, OrderStatus.READY]),
        )
    ).all()
    for order in expired:
        shred(session, blobs, order, OrderStatus.EXPIRED)
    # A job that was storing an image when its order was shredded can write
    # it after the blobs were deleted: sealed with a key that no longer
    # exists, unreadable, but a file all the same. Delete again what recent
    # shreds may have left.
    recent = session.scalars(
        select(Order.id).where(Order.shredded_at >= now - LATE_WRITES_WINDOW)
    ).all()
    for order_id in recent:
        shredding.delete_blobs(session, blobs, order_id)
    # Blobs a store could not delete at an earlier shred.
    shredding.retry_pending(session, blobs)
    scrubbing.scrub_if_owed(session)
    return [order.id for order in expired]


def stuck_variations(
    session: Session, settings: Settings, now: datetime | None = None
) -> list[str]:
    """Variations whose job was lost: never picked up, or its worker died.

    Each one found is stamped as enqueued now, and enqueued at commit, so
    the next sweep leaves it alone for another ``stuck_after_seconds``.
    """
    now = now or utcnow()
    deadline = now - timedelta(seconds=settings.stuck_after_seconds)
    rows = session.scalars(
        select(Variation)
        .join(Order)
        .where(
            Order.status == OrderStatus.QUEUED,
            ((Variation.status == VariationStatus.PENDING) & (Variation.enqueued_at <= deadline))
            | (
                Variation.status.in_([VariationStatus.RUNNING, VariationStatus.FINISHING])
                & (Variation.lease_until <= now)
            ),
        )
    ).all()
    for variation in rows:
        variation.enqueued_at = now
    found = [variation.id for variation in rows]
    after_commit(session).enqueue(variations.styles_of(session, found))
    return found


def claim_tick(session: Session, name: str, every_seconds: float) -> bool:
    """True for exactly one caller per period, across every consumer.

    A conditional UPDATE is atomic on SQLite and PostgreSQL alike: of two
    consumers racing for the same tick, one updates the row and the other
    sees zero rows changed. The rows are created by the migrations.
    """
    now = utcnow()
    result = session.execute(
        update(Tick)
        .where(Tick.name == name, Tick.last_run <= now - timedelta(seconds=every_seconds))
        .values(last_run=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_stalled(session: Session) -> int:
    """Finish orders whose variations all ended but that were never marked ready."""
    stalled = session.scalars(
        select(Order).where(
            Order.status == OrderStatus.QUEUED,
            ~select(Variation.id)
            .where(Variation.order_id == Order.id, Variation.status.in_(UNFINISHED))
            .exists(),
        )
    ).all()
    for order in stalled:
        finish_if_complete(session, order)
    return len(stalled)
