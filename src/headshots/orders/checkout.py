"""Checkout and payment: the use-cases the pages and the API share.

Opening a checkout records the provider's session on the order; a payment
only ever unlocks an order through a verified provider notification
(:func:`receive_payment`), whichever page or webhook it came through.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headshots.errors import HeadshotsError
from headshots.orders import ids, service
from headshots.orders.db import transaction
from headshots.orders.effects import after_commit
from headshots.orders.models import Order, PaymentRecord
from headshots.orders.payment_records import record_payment
from headshots.orders.teams import service as teams
from headshots.payments.base import CheckoutRequest, PaymentApplied, PaymentEvent, Payments
from headshots.tiers import Tier


class AlreadyPaid(HeadshotsError):
    status_code = 409
    code = "already_paid"
    message = "This order is already paid: download your headshots."


def open_checkout(
    session: Session,
    payments: Payments,
    tiers: tuple[Tier, ...],
    order_id: str,
    token: str | None,
    *,
    base_url: str,
    cancel_query: str,
) -> str:
    """Open the provider's checkout for an order; the URL to send the person to.

    The provider's own URL (Stripe's) is absolute; the local checkout's is a
    path on this service, left relative so a redirect never names a host.
    """
    order = service.open_order(session, order_id, token)
    if order.is_paid:
        raise AlreadyPaid()
    # An operator may have removed the order's tier from HEADSHOTS_TIERS
    # since; the order keeps the price it was made with.
    tier = next((t for t in tiers if t.id == order.tier), None)
    title = tier.title if tier is not None else order.tier.replace("_", " ").title()
    base = base_url.rstrip("/")
    opened = payments.create_checkout(
        CheckoutRequest(
            order_id=order.id,
            amount_cents=order.amount_cents,
            currency=order.currency,
            product_name=f"Headshots: {title} ({len(order.styles)} styles)",
            success_url=f"{base}/orders/{order.id}?paid=1",
            cancel_url=f"{base}/orders/{order.id}{cancel_query}",
        )
    )
    order.checkout_session_id = opened.session_id
    return opened.url


def start_checkout(
    sessions: sessionmaker[Session],
    payments: Payments,
    tiers: tuple[Tier, ...],
    order_id: str,
    token: str | None,
    *,
    base_url: str,
    cancel_query: str,
) -> str:
    """A person starts paying, from the order page or the API: where to send them."""
    with transaction(sessions) as session:
        return open_checkout(
            session,
            payments,
            tiers,
            order_id,
            token,
            base_url=base_url,
            cancel_query=cancel_query,
        )


def apply_payment(session: Session, event: PaymentEvent) -> PaymentApplied:
    """Apply a verified payment notification, once per event id.

    The only way an order becomes paid. A payment for an order that was
    already shredded is recorded for a refund; the order stays gone.
    """
    if session.get(PaymentRecord, event.event_id) is not None:
        return PaymentApplied(event.order_id, unlocked=False, duplicate=True, needs_refund=False)
    order = session.get(Order, event.order_id) if ids.is_order_id(event.order_id) else None
    live = order if order is not None and not order.is_tombstone else None
    applied = record_payment(session, event, event.order_id[:32], live, what="order")
    if applied.unlocked:
        # The page that says "confirming payment" learns at once, in
        # whichever process it is served.
        after_commit(session).change(event.order_id, final=True)
    return applied


def receive_payment(
    sessions: sessionmaker[Session],
    payments: Payments,
    payload: bytes,
    headers: dict[str, str],
) -> dict[str, Any]:
    """Every payment confirmation, from any provider, comes through here."""
    event = payments.parse_webhook(payload, headers)
    if event is None:
        return {"ignored": True}
    with transaction(sessions) as session:
        # A team's seats are paid through the same notifications (orders.teams).
        applied = teams.apply_payment(session, event) or apply_payment(session, event)
    return {"duplicate": applied.duplicate, "unlocked": applied.unlocked}
