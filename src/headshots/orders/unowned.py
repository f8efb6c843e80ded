"""Deleting blobs that no order or draft owns.

A new order's selfie is stored before its row commits. A process that dies
in between, or a rollback whose delete fails (the store is down), leaves
blobs under an id no row has. They are sealed with a key that was never
committed, so nobody can read them, but they must not stay either: an hourly
sweep lists the store and deletes them.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from headshots.orders import shredding
from headshots.orders.drafts import Draft
from headshots.orders.models import Order, OrderStatus, utcnow
from headshots.orders.teams.models import Pick
from headshots.storage.vault import EncryptedBlobs

# Far longer than the moment between a put and its commit.
GRACE = timedelta(minutes=10)
EVERY_SECONDS = 3600.0


def delete_unowned(
    session: Session, blobs: EncryptedBlobs, *, grace: timedelta | None = None
) -> int:
    """Delete the blobs of every id with no live order or draft; how many ids.

    Only blobs untouched for ``grace`` (GRACE by default) are considered.
    A shredded order's late leftovers go too. A store that fails leaves a
    pending shred, as a shred would.
    """
    stored = blobs.owners(utcnow() - (GRACE if grace is None else grace))
    if not stored:
        return 0
    live = set(
        session.scalars(
            select(Order.id).where(
                Order.id.in_(stored),
                Order.status.not_in([OrderStatus.EXPIRED, OrderStatus.DELETED]),
            )
        )
    )
    live.update(session.scalars(select(Draft.id).where(Draft.id.in_(stored))))
    live.update(session.scalars(select(Pick.id).where(Pick.id.in_(stored))))
    unowned = [owner for owner in stored if owner not in live]
    for owner in unowned:
        shredding.delete_blobs(session, blobs, owner)
    return len(unowned)
