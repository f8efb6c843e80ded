"""The Stripe provider against a local fake of Stripe's API, with the real SDK.

Webhooks are signed with the SDK's own helper, so the real verification runs.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.payments.base import CheckoutRequest, PaymentEvent, WebhookRejected
from headshots.payments.stripe import PaymentProviderUnavailable, StripePayments
from headshots.runtime import Runtime
from tests.fakes.stripe_server import (
    API_KEY,
    WEBHOOK_SECRET,
    FakeStripe,
    checkout_event,
    sign_stripe_event,
)
from tests.support import auth, make_settings, upload, wait_ready

ORDER_ID = "ord_4f9c2b7e1a3d5c6b"
SELFIE = Path(__file__).parents[1] / "fixtures" / "obama.jpg"


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


def stripe_settings(fake: FakeStripe | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "STRIPE_API_KEY": API_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "stripe_api_base": fake.url if fake else None,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(autouse=True)
def no_host_stripe(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys in the host's environment must not leak into these tests."""
    for name in ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "HEADSHOTS_PAYMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("HEADSHOTS_STRIPE_API_BASE", raising=False)


@pytest.fixture
def payments(fake: FakeStripe) -> StripePayments:
    return StripePayments(stripe_settings(fake))


def checkout_request(**overrides: Any) -> CheckoutRequest:
    values: dict[str, Any] = {
        "order_id": ORDER_ID,
        "amount_cents": 2900,
        "currency": "usd",
        "product_name": "Headshots: Professional (3 styles)",
        "success_url": f"https://headshots.example/orders/{ORDER_ID}?paid=1",
        "cancel_url": f"https://headshots.example/orders/{ORDER_ID}",
        **overrides,
    }
    return CheckoutRequest(**values)


def session(**overrides: Any) -> dict[str, Any]:
    """A Checkout Session as Stripe puts it in a webhook."""
    return {
        "id": "cs_test_a1b2c3",
        "object": "checkout.session",
        "amount_total": 2900,
        "currency": "usd",
        "client_reference_id": ORDER_ID,
        "metadata": {"order_id": ORDER_ID},
        "mode": "payment",
        "payment_status": "paid",
        "status": "complete",
        **overrides,
    }


def parse(payments: StripePayments, event: dict[str, Any], **sign: Any) -> PaymentEvent | None:
    body, headers = sign_stripe_event(event, **sign)
    return payments.parse_webhook(body, headers)


# --- opening a checkout ---------------------------------------------------------


def test_checkout_sends_price_name_order_and_return_urls_to_stripe(
    payments: StripePayments, fake: FakeStripe
) -> None:
    request = checkout_request()
    checkout = payments.create_checkout(request)

    [sent] = fake.requests
    assert (sent.method, sent.path) == ("POST", "/v1/checkout/sessions")
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"]
    params = sent.params
    assert params["mode"] == "payment"
    [item] = params["line_items"]
    assert item["quantity"] == "1"
    assert item["price_data"] == {
        "currency": "usd",
        "unit_amount": "2900",
        "product_data": {"name": "Headshots: Professional (3 styles)"},
    }
    assert params["metadata"] == {"order_id": ORDER_ID}
    assert params["payment_intent_data"]["metadata"] == {"order_id": ORDER_ID}
    assert params["client_reference_id"] == ORDER_ID
    assert params["success_url"] == request.success_url
    assert params["cancel_url"] == request.cancel_url
    # Stripe refuses a lifetime outside 30 minutes to 24 hours.
    assert 30 * 60 <= int(params["expires_at"]) - time.time() <= 24 * 3600

    assert checkout.session_id.startswith("cs_test_")
    assert checkout.url == fake.sessions[checkout.session_id]["url"]
    assert fake.sessions[checkout.session_id]["amount_total"] == 2900


def test_a_teams_seats_are_one_line_with_a_quantity(
    payments: StripePayments, fake: FakeStripe
) -> None:
    checkout = payments.create_checkout(checkout_request(amount_cents=12 * 1900, quantity=12))
    [item] = fake.requests[0].params["line_items"]
    assert (item["quantity"], item["price_data"]["unit_amount"]) == ("12", "1900")
    assert fake.sessions[checkout.session_id]["amount_total"] == 12 * 1900
    with pytest.raises(ValueError, match="quantity"):
        payments.create_checkout(checkout_request(amount_cents=1000, quantity=3))


def test_a_rejected_api_key_is_a_configuration_error(fake: FakeStripe) -> None:
    payments = StripePayments(stripe_settings(fake, STRIPE_API_KEY="sk_test_revoked_key_123"))
    with pytest.raises(ConfigurationError, match="STRIPE_API_KEY") as raised:
        payments.create_checkout(checkout_request())
    assert raised.value.status_code == 503
    assert "revoked" not in str(raised.value)


def test_stripe_failing_is_a_502_with_a_sentence_for_the_person(
    payments: StripePayments, fake: FakeStripe
) -> None:
    fake.fail_with = 500
    with pytest.raises(PaymentProviderUnavailable) as raised:
        payments.create_checkout(checkout_request())
    assert raised.value.status_code == 502
    assert str(raised.value) == "The payment provider is not answering; try again in a minute."
    # One retry with the same idempotency key, then the person is told.
    assert len(fake.requests) == 2
    keys = {request.headers["idempotency-key"] for request in fake.requests}
    assert len(keys) == 1


def test_stripe_unreachable_is_a_502() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    payments = StripePayments(stripe_settings(stripe_api_base=closed))
    with pytest.raises(PaymentProviderUnavailable):
        payments.create_checkout(checkout_request())


def test_the_api_key_never_reaches_the_logs(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    StripePayments(stripe_settings(fake)).create_checkout(checkout_request())
    wrong_key = "sk_test_wrong_" + "9" * 24
    with pytest.raises(ConfigurationError):
        StripePayments(stripe_settings(fake, STRIPE_API_KEY=wrong_key)).create_checkout(
            checkout_request()
        )
    fake.fail_with = 500
    with pytest.raises(PaymentProviderUnavailable):
        StripePayments(stripe_settings(fake)).create_checkout(checkout_request())
    assert caplog.records  # the failures were logged...
    for key in (API_KEY, wrong_key, WEBHOOK_SECRET):
        assert key not in caplog.text  # ...without a key


# --- settings ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "test_mode"),
    [
        ("sk_test_abc", True),
        ("rk_test_abc", True),
        ("sk_live_abc", False),
        ("rk_live_abc", False),
    ],
)
def test_test_mode_follows_the_key(key: str, test_mode: bool) -> None:
    assert StripePayments(stripe_settings(STRIPE_API_KEY=key)).test_mode is test_mode


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"STRIPE_API_KEY": None}, "STRIPE_API_KEY"),
        ({"STRIPE_API_KEY": "pk_test_abc"}, "publishable"),
        ({"STRIPE_WEBHOOK_SECRET": None}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": "   "}, "STRIPE_WEBHOOK_SECRET"),
        ({"STRIPE_WEBHOOK_SECRET": "sk_test_abc"}, "whsec_"),
    ],
)
def test_settings_that_cannot_work_stop_start_up(overrides: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigurationError, match=names):
        StripePayments(stripe_settings(**overrides))


# --- webhooks: what each event means ------------------------------------------


@pytest.mark.parametrize(
    ("event_type", "payment_status", "outcome"),
    [
        ("checkout.session.completed", "paid", "paid"),
        ("checkout.session.completed", "no_payment_required", "paid"),
        # A bank debit: the checkout is done, the money is not there yet.
        ("checkout.session.completed", "unpaid", "pending"),
        ("checkout.session.async_payment_succeeded", "paid", "paid"),
        ("checkout.session.async_payment_failed", "unpaid", "failed"),
        ("checkout.session.expired", "unpaid", "failed"),
    ],
)
def test_signed_events_become_payment_events(
    payments: StripePayments, event_type: str, payment_status: str, outcome: str
) -> None:
    event = checkout_event(
        event_type, session(payment_status=payment_status), event_id="evt_1Q2w3E4r"
    )
    assert parse(payments, event) == PaymentEvent(
        event_id="evt_1Q2w3E4r",
        order_id=ORDER_ID,
        outcome=outcome,  # type: ignore[arg-type]
        amount_cents=2900,
        currency="usd",
        provider="stripe",
        session_id="cs_test_a1b2c3",
    )


def test_a_checkout_paid_on_stripe_comes_back_as_that_orders_payment(
    payments: StripePayments, fake: FakeStripe
) -> None:
    checkout = payments.create_checkout(checkout_request(amount_cents=4900))
    paid = fake.complete(checkout.session_id)
    event = parse(payments, checkout_event("checkout.session.completed", paid))
    assert event is not None
    assert (event.order_id, event.outcome, event.amount_cents, event.session_id) == (
        ORDER_ID,
        "paid",
        4900,
        checkout.session_id,
    )


def test_the_order_id_falls_back_to_client_reference_id(payments: StripePayments) -> None:
    event = parse(payments, checkout_event("checkout.session.completed", session(metadata={})))
    assert event is not None
    assert event.order_id == ORDER_ID


@pytest.mark.parametrize(
    "event_type", ["payment_intent.succeeded", "charge.refunded", "customer.created"]
)
def test_other_event_types_are_ignored(payments: StripePayments, event_type: str) -> None:
    assert parse(payments, checkout_event(event_type, session())) is None


def test_headers_are_matched_whatever_their_case(payments: StripePayments) -> None:
    body, headers = sign_stripe_event(checkout_event("checkout.session.completed", session()))
    lower = {name.lower(): value for name, value in headers.items()}
    assert payments.parse_webhook(body, lower) is not None


# --- webhooks: what is refused ---------------------------------------------------


def test_a_tampered_body_is_rejected(payments: StripePayments) -> None:
    body, headers = sign_stripe_event(checkout_event("checkout.session.completed", session()))
    tampered = body.replace(b'"amount_total": 2900', b'"amount_total": 290000')
    assert tampered != body
    with pytest.raises(WebhookRejected) as raised:
        payments.parse_webhook(tampered, headers)
    assert raised.value.status_code == 400


def test_a_wrong_secret_is_rejected(payments: StripePayments) -> None:
    event = checkout_event("checkout.session.completed", session())
    with pytest.raises(WebhookRejected):
        parse(payments, event, secret="whsec_someone_else_" + "2" * 24)


def test_a_stale_timestamp_is_rejected(payments: StripePayments) -> None:
    event = checkout_event("checkout.session.completed", session())
    with pytest.raises(WebhookRejected, match="too old"):
        parse(payments, event, timestamp=int(time.time()) - 301)


def test_a_recent_timestamp_is_accepted(payments: StripePayments) -> None:
    event = checkout_event("checkout.session.completed", session())
    assert parse(payments, event, timestamp=int(time.time()) - 240) is not None


@pytest.mark.parametrize(
    "headers",
    [{}, {"Stripe-Signature": ""}, {"Stripe-Signature": "garbage"}, {"X-Other": "t=1,v1=ab"}],
)
def test_a_missing_or_garbled_signature_is_rejected(
    payments: StripePayments, headers: dict[str, str]
) -> None:
    body, _ = sign_stripe_event(checkout_event("checkout.session.completed", session()))
    with pytest.raises(WebhookRejected):
        payments.parse_webhook(body, headers)


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"id": "evt_1", "type": "checkout.session.completed"}', b"\xff"],
)
def test_a_signed_body_that_is_not_a_stripe_event_is_rejected(
    payments: StripePayments, body: bytes
) -> None:
    import stripe

    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(errors="replace"), WEBHOOK_SECRET
    )
    with pytest.raises(WebhookRejected):
        payments.parse_webhook(body, {"Stripe-Signature": header})


def test_a_checkout_this_service_did_not_open_is_ignored(payments: StripePayments) -> None:
    # A payment link or another app on the same Stripe account: not ours, but
    # refusing it would make Stripe retry for days and disable the endpoint.
    other = session(metadata={"sku": "mug"}, client_reference_id=None)
    assert parse(payments, checkout_event("checkout.session.completed", other)) is None


@pytest.mark.parametrize("amount", [None, "2900", True])
def test_a_session_without_a_whole_amount_is_rejected(
    payments: StripePayments, amount: Any
) -> None:
    broken = session(amount_total=amount)
    with pytest.raises(WebhookRejected):
        parse(payments, checkout_event("checkout.session.completed", broken))


def test_a_live_event_cannot_pay_on_a_test_key(payments: StripePayments) -> None:
    event = checkout_event("checkout.session.completed", session(), livemode=True)
    with pytest.raises(WebhookRejected, match="other Stripe mode"):
        parse(payments, event)


def test_the_same_event_parses_the_same_each_time(payments: StripePayments) -> None:
    # Replays are refused by the order service, which records event ids: the
    # provider must give a redelivery the same id for that to work.
    body, headers = sign_stripe_event(checkout_event("checkout.session.completed", session()))
    first = payments.parse_webhook(body, headers)
    assert first is not None
    assert first == payments.parse_webhook(body, headers)
    assert first.event_id == json.loads(body)["id"]


# --- through the app: only a verified webhook unlocks ---------------------------


@pytest.fixture
def stripe_app(tmp_path: Path, fake: FakeStripe) -> Iterator[tuple[TestClient, Runtime]]:
    """The real app and order service on SQLite, paying through the fake Stripe."""
    from headshots.runtime import build_runtime
    from headshots.web.app import create_app

    settings = make_settings(
        tmp_path,
        None,
        STRIPE_API_KEY=API_KEY,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        stripe_api_base=fake.url,
    )
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            yield client, runtime
    finally:
        runtime.close()


def webhook(client: TestClient, event: dict[str, Any], **sign: Any) -> Any:
    body, headers = sign_stripe_event(event, **sign)
    return client.post("/api/webhooks/stripe", content=body, headers=headers)


def test_only_a_verified_webhook_unlocks_downloads(
    stripe_app: tuple[TestClient, Runtime], fake: FakeStripe
) -> None:
    client, runtime = stripe_app
    assert runtime.payments.name == "stripe"
    order = upload(client, SELFIE.read_bytes(), tier="starter", styles=("corporate",)).json()
    order_id, token = order["id"], order["token"]
    ready = wait_ready(client, order_id, token)
    download = ready["variations"][0]["preview_url"].replace("/preview", "/download")
    zip_url = f"/api/orders/{order_id}/download.zip"

    opened = client.post(f"/api/orders/{order_id}/checkout", headers=auth(token))
    assert opened.status_code == 200, opened.text
    [session] = fake.sessions.values()
    assert opened.json()["checkout_url"] == session["url"]
    assert session["amount_total"] == order["amount_cents"]
    assert session["metadata"] == {"order_id": order_id}

    # The person comes back from Stripe, but no webhook has landed yet.
    client.get(session["success_url"], headers=auth(token))
    assert client.get(f"/api/orders/{order_id}", headers=auth(token)).json()["paid"] is False
    assert client.get(zip_url, headers=auth(token)).status_code == 402

    # Forged, stale or foreign notifications are refused and unlock nothing.
    paid = fake.complete(session["id"])
    completed = checkout_event("checkout.session.completed", paid)
    assert webhook(client, completed, secret="whsec_guessed_" + "3" * 24).status_code == 400
    assert webhook(client, completed, timestamp=int(time.time()) - 600).status_code == 400
    body, headers = sign_stripe_event(completed)
    tampered = body.replace(order_id.encode(), b"ord_someone_else")
    assert client.post("/api/webhooks/stripe", content=tampered, headers=headers).status_code == 400
    assert client.get(zip_url, headers=auth(token)).status_code == 402

    first = webhook(client, completed)
    assert first.status_code == 200, first.text
    assert first.json()["unlocked"] is True
    assert client.get(zip_url, headers=auth(token)).status_code == 200
    assert client.get(download, headers=auth(token)).status_code == 200

    # Stripe delivers at least once: the redelivery is recognised by its event id.
    replayed = webhook(client, completed)
    assert replayed.json() == {"received": True, "duplicate": True, "unlocked": False}


def test_a_bank_debit_unlocks_when_the_money_arrives_not_before(
    stripe_app: tuple[TestClient, Runtime], fake: FakeStripe
) -> None:
    client, _ = stripe_app
    order = upload(client, SELFIE.read_bytes(), tier="starter", styles=("corporate",)).json()
    order_id, token = order["id"], order["token"]
    wait_ready(client, order_id, token)
    client.post(f"/api/orders/{order_id}/checkout", headers=auth(token))
    [session] = fake.sessions.values()
    zip_url = f"/api/orders/{order_id}/download.zip"

    waiting = fake.complete(session["id"], payment_status="unpaid")
    assert (
        webhook(client, checkout_event("checkout.session.completed", waiting)).json()["unlocked"]
        is False
    )
    assert client.get(zip_url, headers=auth(token)).status_code == 402

    failed = checkout_event("checkout.session.async_payment_failed", waiting)
    assert webhook(client, failed).json()["unlocked"] is False
    assert client.get(zip_url, headers=auth(token)).status_code == 402

    arrived = fake.complete(session["id"], payment_status="paid")
    succeeded = checkout_event("checkout.session.async_payment_succeeded", arrived)
    assert webhook(client, succeeded).json()["unlocked"] is True
    assert client.get(zip_url, headers=auth(token)).status_code == 200


def test_a_payment_for_a_deleted_order_is_flagged_for_refund_not_revived(
    stripe_app: tuple[TestClient, Runtime], fake: FakeStripe
) -> None:
    from headshots.orders.models import Order, PaymentRecord

    client, runtime = stripe_app
    order = upload(client, SELFIE.read_bytes(), tier="starter", styles=("corporate",)).json()
    order_id, token = order["id"], order["token"]
    wait_ready(client, order_id, token)
    client.post(f"/api/orders/{order_id}/checkout", headers=auth(token))
    [session] = fake.sessions.values()
    # The person deletes the order while the payment is still on its way.
    assert client.delete(f"/api/orders/{order_id}", headers=auth(token)).status_code == 204

    event = checkout_event("checkout.session.completed", fake.complete(session["id"]))
    answer = webhook(client, event)
    # 200, so Stripe stops redelivering: the payment is recorded, not lost.
    assert answer.status_code == 200
    assert answer.json()["unlocked"] is False
    with runtime.sessions() as db:
        record = db.get(PaymentRecord, event["id"])
        assert record is not None
        assert record.needs_refund is True
        assert record.amount_cents == order["amount_cents"]
        gone = db.get(Order, order_id)
        assert gone is not None and gone.is_tombstone and not gone.is_paid
    zip_url = f"/api/orders/{order_id}/download.zip"
    assert client.get(zip_url, headers=auth(token)).status_code == 404
