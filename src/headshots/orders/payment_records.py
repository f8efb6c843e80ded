"""One verified payment applied to what it paid for: an order or a team.

The record (once per event id), the refund flag for something already gone,
and the unlock when the amount covers the price are the same for both;
orders.checkout and orders.teams say what is paid for and whether it is
still there.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session

from headshots.orders.models import PaymentRecord, utcnow
from headshots.payments.base import PaymentApplied, PaymentEvent

log = logging.getLogger(__name__)


class Payable(Protocol):
    """What an order and a team have in common for a payment."""

    amount_cents: int
    paid_at: datetime | None
    amount_paid_cents: int | None
    payment_provider: str | None

    @property
    def is_paid(self) -> bool: ...


def record_payment(
    session: Session, event: PaymentEvent, owner_id: str, payable: Payable | None, *, what: str
) -> PaymentApplied:
    """Record ``event`` once and unlock ``payable`` (None or gone: flagged for a refund).

    ``what`` names it in the operator's log ("order", "team").
    """
    paid = event.outcome == "paid"
    needs_refund = paid and payable is None
    session.add(
        PaymentRecord(
            event_id=event.event_id,
            order_id=owner_id,
            provider=event.provider,
            outcome=event.outcome,
            amount_cents=event.amount_cents,
            currency=event.currency,
            needs_refund=needs_refund,
        )
    )
    unlocked = False
    if paid and payable is not None and not payable.is_paid:
        if event.amount_cents < payable.amount_cents:
            log.warning("payment %s below the %s's price; not unlocked", event.event_id, what)
        else:
            payable.paid_at = utcnow()
            payable.amount_paid_cents = event.amount_cents
            payable.payment_provider = event.provider
            unlocked = True
    if needs_refund:
        log.warning("payment %s arrived for a gone %s: refund it", event.event_id, what)
    session.flush()
    return PaymentApplied(owner_id, unlocked, duplicate=False, needs_refund=needs_refund)
