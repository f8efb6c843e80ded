"""Checkout and payment: the use-cases the pages and the API share.

Opening a checkout records the provider's session on the order; a payment
only ever unlocks an order through a verified provider notification
(:func:`receive_payment`), whichever page or webhook it came through.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headshots.orders import service
from headshots.orders.changes import OrderChanges
from headshots.orders.db import transaction
from headshots.orders.teams import service as teams
from headshots.payments.base import CheckoutRequest, Payments
from headshots.tiers import Tier


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
        raise service.AlreadyPaid()
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


def receive_payment(
    sessions: sessionmaker[Session],
    payments: Payments,
    payload: bytes,
    headers: dict[str, str],
    changes: OrderChanges,
) -> dict[str, Any]:
    """Every payment confirmation, from any provider, comes through here.

    An unlocked order is announced on ``changes``: the page that says
    "confirming payment" learns at once, in whichever process it is served.
    """
    event = payments.parse_webhook(payload, headers)
    if event is None:
        return {"ignored": True}
    with transaction(sessions) as session:
        # A team's seats are paid through the same notifications (orders.teams).
        applied = teams.apply_payment(session, event) or service.apply_payment(session, event)
    if applied.unlocked:
        changes.announce(applied.order_id, final=True)
    return {"duplicate": applied.duplicate, "unlocked": applied.unlocked}
