"""Deleting the blobs of a shredded order or draft, and finishing what failed.

Shredding forgets the wrapped key first (in the database, in the caller's
transaction): from then on every copy of the blobs is unreadable. The blobs
are deleted right after. A store that cannot delete them now (a bucket down,
a 500 answer) must not undo the forgetting, so the failure is recorded as a
pending shred, committed with the tombstone, and the sweep tries again until
the store has nothing left under the order's prefix.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Integer, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from headshots.orders.models import Base, utcnow
from headshots.storage.vault import EncryptedBlobs

log = logging.getLogger(__name__)

# Pending shreds retried per sweep, oldest first; the rest wait a period.
RETRY_BATCH = 200


class PendingShred(Base):
    """An order or draft whose key is gone but whose blobs may remain."""

    __tablename__ = "pending_shreds"

    owner_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    since: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=1)


def delete_blobs(session: Session, blobs: EncryptedBlobs, owner_id: str) -> bool:
    """Delete every blob of an order or draft whose key was just forgotten.

    True when they are gone; False when the store failed and the sweep will
    try again (recorded in ``session``, so it commits with the tombstone).
    """
    try:
        blobs.shred(owner_id)
    except Exception as error:
        log.warning("blobs of %s left for the sweep to delete: %s", owner_id, type(error).__name__)
        if session.get(PendingShred, owner_id) is None:
            session.add(PendingShred(owner_id=owner_id, since=utcnow(), attempts=1))
            session.flush()
        return False
    return True


def retry_pending(session: Session, blobs: EncryptedBlobs) -> int:
    """Try the pending shreds again; returns how many are still pending.

    Rows being retried by another consumer are skipped (PostgreSQL), so two
    sweeps never delete the same prefix at once.
    """
    rows = session.scalars(
        select(PendingShred)
        .order_by(PendingShred.since)
        .limit(RETRY_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        try:
            blobs.shred(row.owner_id)
        except Exception as error:
            row.attempts += 1
            log.warning(
                "blobs of %s still not deleted (try %d): %s",
                row.owner_id,
                row.attempts,
                type(error).__name__,
            )
            continue
        session.delete(row)
    session.flush()
    return count_pending(session)


def count_pending(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(PendingShred)) or 0)
