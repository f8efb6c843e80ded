"""Checkout and payments: an order unlocks only through a payment, once."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from headshots.orders import checkout
from headshots.orders.db import transaction
from headshots.orders.models import Order, PaymentRecord
from headshots.payments.base import PaymentEvent
from headshots.runtime import Runtime
from tests.support import (
    auth,
    confirm_local_payment,
    upload,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


def test_a_payment_for_a_shredded_order_is_recorded_for_refund(
    client: TestClient, runtime: Runtime
) -> None:
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    assert (
        client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"])).status_code == 204
    )
    event = PaymentEvent(
        event_id="evt_late",
        order_id=order["id"],
        outcome="paid",
        amount_cents=900,
        currency="usd",
        provider="local",
    )
    with transaction(runtime.sessions) as session:
        applied = checkout.apply_payment(session, event)
    assert applied.needs_refund and not applied.unlocked
    with runtime.sessions() as session:
        record = session.get(PaymentRecord, "evt_late")
        assert record is not None and record.needs_refund
        tombstone = session.get(Order, order["id"])
        assert tombstone is not None
        assert tombstone.status == "deleted" and tombstone.paid_at is None


def test_checkout_still_opens_after_the_operator_removed_the_orders_tier(
    client: TestClient, runtime: Runtime
) -> None:
    order = upload(client, SELFIE, tier="professional", styles=("corporate",)).json()
    runtime.tiers = tuple(tier for tier in runtime.tiers if tier.id != "professional")
    answer = client.post(f"/api/orders/{order['id']}/checkout", headers=auth(order["token"]))
    assert answer.status_code == 200, answer.text
    # The order keeps the price it was made with.
    confirm_local_payment(client, answer.json()["checkout_url"])
    body = client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).json()
    assert body["paid"] is True and body["amount_cents"] == 1900
