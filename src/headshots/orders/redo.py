"""A person has one variation made again with a new seed: the redo use case.

    done ──redo──> pending ──claim──> running ──preview_stored──> finishing ──> done
    failed ─┘      (redo_seed set: the image made before stays shown)   (the new image
                                     │                                   replaced the old)
                                     +──failed / given up──> done with the image it had
                                                             (or failed, as before);
                                                             the redo is given back

An order may have ``redos_left`` variations made again, set from
HEADSHOTS_REDOS_PER_ORDER when the order is made and kept, as its price is.
A redo works before and after payment. It is taken from the order with a
conditional UPDATE, so two requests racing for the last redo cannot both
pass, and the order's row is changed before its variation's, the lock order
of orders.variations. The variation goes back through the style job's own
lifecycle (orders.variations, jobs.tasks) with its new seed: the new image
is stored under the same names and so replaces the old one the moment it
lands; a redo that fails leaves the old image and gives the redo back. The
order is queued again while it is made, so the sweep hands its job out
again if it is lost, and the order's page follows it live
(docs/decisions/0018-redo-and-favourites.md).
"""

from __future__ import annotations

import secrets

from sqlalchemy import update
from sqlalchemy.orm import Session

from headshots.errors import HeadshotsError
from headshots.orders import service
from headshots.orders.effects import after_commit
from headshots.orders.models import Order, OrderStatus, Variation, VariationStatus, utcnow

# A redo starts from a variation that has ended, with an image or without.
FINISHED = (VariationStatus.DONE, VariationStatus.FAILED)


class NotFinished(HeadshotsError):
    status_code = 409
    code = "not_finished"
    message = "This image is still being made; it can be made again once it is finished."


class NoRedosLeft(HeadshotsError):
    status_code = 409
    code = "no_redos_left"
    message = "This order has no redo left: every image it may have made again has been."


def redo(session: Session, order_id: str, token: str | None, variation_id: str) -> Variation:
    """Have a finished variation made again with a new seed; the variation, now pending.

    Its job is enqueued once the transaction commits (orders.effects).
    """
    order = service.open_order(session, order_id, token)
    variation = service.find_variation(order, variation_id)
    if variation.status not in FINISHED:
        raise NotFinished()
    if order.redos_left <= 0:
        raise NoRedosLeft()
    taken = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.redos_left > 0, Order.shredded_at.is_(None))
        .values(redos_left=Order.redos_left - 1, status=OrderStatus.QUEUED)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not taken:
        # Another request took the last redo, or deleted the order, meanwhile.
        session.refresh(order)
        if order.is_tombstone:
            raise service.OrderNotFound()
        raise NoRedosLeft()
    now = utcnow()
    seed = _new_seed({v.seed for v in order.variations})
    started = session.execute(
        update(Variation)
        .where(Variation.id == variation.id, Variation.status.in_(FINISHED))
        .values(
            status=VariationStatus.PENDING,
            redo_seed=seed,
            attempts=0,
            lease_until=None,
            lease_owner=None,
            enqueued_at=now,
            finished_at=None,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if not started:
        raise NotFinished()  # a redo racing this one started first; this one rolls back
    session.refresh(order)
    session.refresh(variation)
    if variation.image_blob is None:
        # A failed variation has no image to keep: nothing is shown while it is made.
        variation.preview_blob = None
    variation.details = {k: v for k, v in variation.details.items() if k != "redo_failure"}
    pending = after_commit(session)
    pending.enqueue([[variation.id]])
    pending.change(order.id)
    return variation


def _new_seed(used: set[int]) -> int:
    """A seed none of the order's variations has: a redo is a different image."""
    seeds = secrets.SystemRandom()
    while True:
        seed = seeds.randrange(2**31)
        if seed not in used:
            return seed
