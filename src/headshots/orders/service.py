"""The order service: every change to an order happens here.

Functions take a Session and never commit: the request or the job that calls
them is the transaction (see docs/decisions). Errors are typed and carry
their HTTP status.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from headshots.config import Settings
from headshots.errors import HeadshotsError
from headshots.orders import scrubbing, shredding
from headshots.orders.models import (
    Order,
    OrderStatus,
    PaymentRecord,
    Tick,
    Variation,
    VariationStatus,
    utcnow,
)
from headshots.payments.base import PaymentEvent
from headshots.storage.vault import EncryptedBlobs
from headshots.tiers import Tier, choose

log = logging.getLogger(__name__)

SELFIE_BLOB = "selfie.png"
ORDER_ID = re.compile(r"[A-Za-z0-9_-]{16,32}")


def is_order_id(value: str) -> bool:
    """Whether ``value`` can be an order's or a draft's id.

    fullmatch, never match with ``$``, which also accepts a trailing newline
    (the rule storage.base writes down).
    """
    return ORDER_ID.fullmatch(value) is not None


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


def new_id() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, 128 bits


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewOrder:
    order: Order
    token: str
    # One job per style: the ids of its variations, in the order chosen.
    jobs: list[list[str]]


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
) -> NewOrder:
    """Record a new order and store its selfie, encrypted.

    On any failure nothing is left behind: the caller's transaction rolls
    back the rows, and the blobs written so far are deleted here.
    """
    tier, style_ids = choose(tiers, tier_id, style_ids)
    order_id = new_id()
    token = secrets.token_urlsafe(32)
    now = utcnow()
    wrapped_key = blobs.new_wrapped_key(order_id)
    order = Order(
        id=order_id,
        token_hash=hash_token(token),
        tier=tier.id,
        styles=style_ids,
        status=OrderStatus.QUEUED,
        engine=engine,
        created_at=now,
        expires_at=now + timedelta(hours=settings.retention_hours),
        wrapped_key=wrapped_key,
        amount_cents=tier.price_cents,
        currency=tier.currency,
        preflight=preflight,
    )
    seeds = secrets.SystemRandom()
    for position, style_id in enumerate(style_ids):
        for index in range(1, settings.variations + 1):
            order.variations.append(
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
            )
    try:
        blobs.put(order_id, wrapped_key, SELFIE_BLOB, selfie_png)
        session.add(order)
        session.flush()
    except BaseException:
        blobs.shred(order_id)
        raise
    jobs: dict[str, list[str]] = {}
    for variation in order.variations:
        jobs.setdefault(variation.style, []).append(variation.id)
    return NewOrder(order=order, token=token, jobs=list(jobs.values()))


def encode_png(image: Image.Image) -> bytes:
    # Level 1 is 5-7x faster than the default and the files ~20% larger:
    # one is written for every variation and kept one day.
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode_pixels(image: Image.Image) -> bytes:
    """The image's pixels as a NumPy .npy array: about 1 ms against PNG's 75.

    A variation's clean image is first stored this way, so its preview can
    be shown at once; the finishing step replaces it with a PNG under the
    same name (see jobs.tasks).
    """
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(image.convert("RGB")), allow_pickle=False)
    return buffer.getvalue()


def decode_image(data: bytes) -> Image.Image:
    """A stored clean image, whichever of the two forms it is in."""
    if data.startswith(PNG_SIGNATURE):
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()
            return image.convert("RGB")
    pixels = np.load(io.BytesIO(data), allow_pickle=False)
    return Image.fromarray(pixels, "RGB")


def clean_png(data: bytes) -> bytes:
    """A stored clean image as PNG bytes, encoding it if it is still raw pixels."""
    return data if data.startswith(PNG_SIGNATURE) else encode_png(decode_image(data))


def token_opens(token_hash: str | None, token: str | None) -> bool:
    """Whether ``token`` matches the stored hash, compared in constant time.

    The comparison runs even when there is nothing to match, so the time
    taken does not tell a missing record from a wrong token.
    """
    matches = hmac.compare_digest(token_hash or "0" * 64, hash_token(token or ""))
    return matches and token_hash is not None and bool(token)


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
    return True


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
    return True


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

    Each one found is stamped as enqueued now, so the next sweep leaves it
    alone for another ``stuck_after_seconds``.
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
    return [variation.id for variation in rows]


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


@dataclass(frozen=True)
class PaymentApplied:
    order_id: str
    unlocked: bool
    duplicate: bool
    needs_refund: bool


def apply_payment(session: Session, event: PaymentEvent) -> PaymentApplied:
    """Apply a verified payment notification, once per event id.

    The only way an order becomes paid. A payment for an order that was
    already shredded is recorded for a refund; the order stays gone.
    """
    if session.get(PaymentRecord, event.event_id) is not None:
        return PaymentApplied(event.order_id, unlocked=False, duplicate=True, needs_refund=False)
    order = session.get(Order, event.order_id) if is_order_id(event.order_id) else None
    paid = event.outcome == "paid"
    needs_refund = paid and (order is None or order.is_tombstone)
    session.add(
        PaymentRecord(
            event_id=event.event_id,
            order_id=event.order_id[:32],
            provider=event.provider,
            outcome=event.outcome,
            amount_cents=event.amount_cents,
            currency=event.currency,
            needs_refund=needs_refund,
        )
    )
    unlocked = False
    if paid and order is not None and not order.is_tombstone and not order.is_paid:
        if event.amount_cents < order.amount_cents:
            log.warning("payment %s below the order's price; not unlocked", event.event_id)
        else:
            order.paid_at = utcnow()
            order.amount_paid_cents = event.amount_cents
            order.payment_provider = event.provider
            unlocked = True
    if needs_refund:
        log.warning("payment %s arrived for a shredded order: refund it", event.event_id)
    session.flush()
    return PaymentApplied(event.order_id, unlocked, duplicate=False, needs_refund=needs_refund)


class AlreadyPaid(HeadshotsError):
    status_code = 409
    code = "already_paid"
    message = "This order is already paid: download your headshots."
