"""The order service: an order is made, opened, finished and shredded here.

Its neighbours hold the rest of the lifecycle: a variation's states in
orders.variations, payment in orders.checkout, expiry and lost work in
orders.sweeping. Functions take a Session and never commit: the request or
the job that calls them is the transaction (see docs/decisions), and what a
change sets off (its jobs, its shred's announcement) is recorded on that
transaction (orders.effects). Errors are typed and carry their HTTP status.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from headshots.backdrops import Backdrop
from headshots.config import Settings
from headshots.engines.base import declared
from headshots.errors import HeadshotsError
from headshots.orders import shredding
from headshots.orders.effects import FinishedOrder, after_commit
from headshots.orders.ids import hash_token, is_order_id, new_id, new_token, token_opens
from headshots.orders.models import (
    Order,
    OrderStatus,
    Variation,
    VariationStatus,
    utcnow,
)
from headshots.storage.vault import EncryptedBlobs
from headshots.tiers import Tier, choose

log = logging.getLogger(__name__)

SELFIE_BLOB = "selfie.png"


class OrderNotFound(HeadshotsError):
    # The same answer for "no such order" and "wrong token", so a caller
    # cannot learn whether an order exists.
    status_code = 404
    code = "not_found"
    message = "There is no order here, or your link is not valid for it."


class PaymentRequired(HeadshotsError):
    status_code = 402
    code = "payment_required"
    message = "Pay for this order to download the full-resolution images without watermark."


class NotReady(HeadshotsError):
    status_code = 409
    code = "not_ready"
    message = "This image is not ready yet."


class BackdropNotOffered(HeadshotsError):
    status_code = 422
    code = "backdrop_not_offered"
    message = (
        "The image engine of this service cannot paint a backdrop colour you choose: "
        "leave the backdrop as each style's own."
    )


@dataclass(frozen=True)
class NewOrder:
    order: Order
    token: str


def create_order(
    session: Session,
    blobs: EncryptedBlobs,
    settings: Settings,
    tiers: tuple[Tier, ...],
    *,
    selfie_png: bytes,
    tier_id: str,
    style_ids: list[str],
    engine: str,
    preflight: list[dict[str, Any]] | None = None,
    backdrop: Backdrop | None = None,
) -> NewOrder:
    """Record a new order and store its selfie, encrypted; its jobs go out at commit.

    On any failure nothing is left behind: the caller's transaction rolls
    back the rows, and the blobs written so far are deleted here.
    """
    tier, style_ids = choose(tiers, tier_id, style_ids)
    if backdrop is not None and not declared(settings, engine).takes_backdrop_colour:
        raise BackdropNotOffered()
    order_id = new_id()
    token = new_token()
    now = utcnow()
    wrapped_key = blobs.new_wrapped_key(order_id)
    order = Order(
        id=order_id,
        token_hash=hash_token(token),
        tier=tier.id,
        styles=style_ids,
        status=OrderStatus.QUEUED,
        engine=engine,
        backdrop=backdrop.name if backdrop else None,
        created_at=now,
        expires_at=now + timedelta(hours=settings.retention_hours),
        wrapped_key=wrapped_key,
        amount_cents=tier.price_cents,
        currency=tier.currency,
        preflight=preflight,
        redos_left=settings.redos_per_order,
    )
    order.variations.extend(_variations(style_ids, settings.variations, now))
    try:
        blobs.put(order_id, wrapped_key, SELFIE_BLOB, selfie_png)
        session.add(order)
        session.flush()
    except BaseException:
        blobs.shred(order_id)
        raise
    # One job per style: the ids of its variations, in the order chosen.
    after_commit(session).enqueue(
        [v.id for v in order.variations if v.style == style_id] for style_id in style_ids
    )
    return NewOrder(order=order, token=token)


def _variations(style_ids: list[str], per_style: int, now: datetime) -> list[Variation]:
    """The variations of a new order, waiting, each with its own random seed."""
    seeds = secrets.SystemRandom()
    return [
        Variation(
            id=new_id(),
            style=style_id,
            style_position=position,
            index=index,
            seed=seeds.randrange(2**31),
            status=VariationStatus.PENDING,
            enqueued_at=now,
            details={},
        )
        for position, style_id in enumerate(style_ids)
        for index in range(1, per_style + 1)
    ]


def find_order(session: Session, order_id: str, token: str | None) -> Order:
    """The order if ``token`` opens it; OrderNotFound otherwise (same answer)."""
    if not token or not is_order_id(order_id):
        raise OrderNotFound()
    order = session.get(Order, order_id)
    if not token_opens(order.token_hash if order else None, token) or order is None:
        raise OrderNotFound()
    return order


def open_order(session: Session, order_id: str, token: str | None) -> Order:
    """A live order that ``token`` opens; OrderNotFound otherwise.

    A destroyed order is 404 like any other, not 410: shredding removed the
    token's hash, so nobody can prove it was theirs (decision 0003).
    """
    order = find_order(session, order_id, token)
    if order.is_tombstone:  # unreachable while shred clears token_hash; kept as a guard
        raise OrderNotFound()
    return order


def find_variation(order: Order, variation_id: str) -> Variation:
    for variation in order.variations:
        if variation.id == variation_id:
            return variation
    raise OrderNotFound("There is no such image in this order.")


UNFINISHED = (VariationStatus.PENDING, VariationStatus.RUNNING, VariationStatus.FINISHING)


def finish_if_complete(session: Session, order: Order) -> bool:
    """Mark the order ready once none of its variations is left to run; whether it did.

    Two workers finishing the last two variations at once would each see the
    other's as still running (PostgreSQL reads committed data only) and
    neither would finish the order. Locking the order row first serialises
    them: the second counts after the first has committed.

    The lock is FOR NO KEY UPDATE, not FOR UPDATE: a transaction that
    updated one variation row twice holds a key-share lock on its order
    (PostgreSQL re-checks the foreign key), and two of those each asking
    for FOR UPDATE would deadlock. NO KEY UPDATE does not conflict with key
    share, but does with itself, which is all the serialising needs.
    """
    if order.status != OrderStatus.QUEUED:
        return False
    session.execute(select(Order.id).where(Order.id == order.id).with_for_update(key_share=True))
    unfinished = session.scalar(
        select(func.count())
        .select_from(Variation)
        .where(Variation.order_id == order.id, Variation.status.in_(UNFINISHED))
    )
    if unfinished:
        return False
    order.status = OrderStatus.READY
    order.finished_at = utcnow()
    cost = order_cost(session, order)
    after_commit(session).finish(
        order.id, FinishedOrder(engine=order.engine, tier=order.tier, cost_usd=cost)
    )
    return True


def order_cost(session: Session, order: Order) -> float:
    """What the provider charged for the order: its variations' costs, each every call's sum."""
    total = 0.0
    for details in session.scalars(select(Variation.details).where(Variation.order_id == order.id)):
        cost = (details or {}).get("cost_usd")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            total += cost
    return round(total, 6)


def delete_order(session: Session, blobs: EncryptedBlobs, order_id: str, token: str | None) -> None:
    """A person deletes their order: shredded now, whatever its state."""
    order = find_order(session, order_id, token)
    if not shred(session, blobs, order, OrderStatus.DELETED):
        raise OrderNotFound()  # another request shredded it first


def shred(session: Session, blobs: EncryptedBlobs, order: Order, status: OrderStatus) -> bool:
    """Destroy everything of a person in an order; keep its tombstone.

    The wrapped key goes first (crypto-shredding makes every copy of every
    blob unreadable, also in backups), then the blobs and the variations.
    """
    if order.is_tombstone:
        return False
    # Claim the shred with a conditional UPDATE: of two requests deleting
    # the same order at once, the second waits for the first's row lock and
    # then matches nothing, and leaves the order alone (404 to its caller).
    now = utcnow()
    claimed = session.execute(
        update(Order)
        .where(Order.id == order.id, Order.shredded_at.is_(None))
        .values(shredded_at=now)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        session.expire(order)
        return False
    order.wrapped_key = None
    order.token_hash = None
    order.preflight = None
    order.checkout_session_id = None
    order.status = status
    order.shredded_at = now
    order.variations.clear()
    session.flush()
    shredding.delete_blobs(session, blobs, order.id)
    if status == OrderStatus.DELETED:
        # A member who deletes their order takes back what they gave their
        # team; at expiry a pick outlives its order (docs/decisions/0017).
        from headshots.orders.teams.shredding import shred_picks_of_order

        shred_picks_of_order(session, blobs, order.id)
    # Once committed, every process lets go of the order (its jobs stop).
    after_commit(session).shred(order.id)
    return True
