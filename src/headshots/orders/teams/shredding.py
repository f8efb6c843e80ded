"""Every end of a pick, done as an order's shred is done.

The pick's wrapped key row is deleted first, in the caller's transaction
(the scrub after commit wipes it from the database files, see
orders.scrubbing); then its blobs are deleted, or left to the sweep as a
pending shred if the store fails (orders.shredding). A pick ends when its
team ends, when the organiser deletes it, when the member takes it back or
deletes their order, and at the latest 14 days after it was made.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from headshots.orders import shredding
from headshots.orders.models import DataKey
from headshots.orders.teams.models import Pick
from headshots.storage.vault import EncryptedBlobs


def shred_picks(session: Session, blobs: EncryptedBlobs, picks: Iterable[Pick]) -> list[str]:
    """Destroy each pick: its row, its key row, then its blobs; the ids destroyed.

    Each row is claimed by a conditional DELETE: of two requests ending the
    same pick at once (the organiser deleting it as the member takes it
    back), the second waits for the first's row lock, then deletes nothing
    and leaves the pick to the first.
    """
    ids = [pick.id for pick in picks]
    destroyed = []
    for pick_id in ids:
        claimed = session.execute(delete(Pick).where(Pick.id == pick_id))
        if not claimed.rowcount:  # type: ignore[attr-defined]
            continue
        # Through the ORM, so the scrub after commit knows a key went.
        key = session.get(DataKey, pick_id)
        if key is not None:
            session.delete(key)
        destroyed.append(pick_id)
    session.flush()
    for pick_id in destroyed:
        shredding.delete_blobs(session, blobs, pick_id)
    return destroyed


def shred_picks_of_order(session: Session, blobs: EncryptedBlobs, order_id: str) -> list[str]:
    """The member deleted their order: every picture they picked from it goes too."""
    picks = session.scalars(select(Pick).where(Pick.order_id == order_id)).all()
    return shred_picks(session, blobs, picks)


def shred_old_picks(session: Session, blobs: EncryptedBlobs, now: datetime) -> list[str]:
    """Picks past their 14 days (or their team's end), for the sweep."""
    picks = session.scalars(select(Pick).where(Pick.expires_at <= now)).all()
    return shred_picks(session, blobs, picks)
