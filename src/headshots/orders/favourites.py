"""A person marks the variations they like best: the favourites-only zip holds them.

A mark is the person's own note on an order: it changes no image, works
before and after payment and on a variation in any state, and goes with
the order when it is destroyed.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from headshots.orders import service
from headshots.orders.effects import after_commit
from headshots.orders.models import Variation


def mark(
    session: Session, order_id: str, token: str | None, variation_id: str, *, favourite: bool
) -> Variation:
    """Mark a variation a favourite (or not); the variation."""
    order = service.open_order(session, order_id, token)
    variation = service.find_variation(order, variation_id)
    if variation.favourite != favourite:
        variation.favourite = favourite
        # The order's pages (another tab, too) show the mark at once.
        after_commit(session).change(order.id)
    return variation
