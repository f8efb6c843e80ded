"""Stripe Checkout: one hosted checkout session per order, confirmed by signed webhooks.

The person's return to the success URL proves nothing (anyone can open it);
only an event whose signature checks out against ``STRIPE_WEBHOOK_SECRET``
becomes a :class:`PaymentEvent`, and only a PaymentEvent unlocks an order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import stripe
from stripe.params.checkout import SessionCreateParams

from headshots.config import Settings
from headshots.errors import ConfigurationError, HeadshotsError
from headshots.payments.base import (
    Checkout,
    CheckoutRequest,
    PaymentEvent,
    PaymentOutcome,
    WebhookRejected,
)

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "stripe-signature"
# The SDK's default: an event signed longer ago than this is a replay.
TOLERANCE_SECONDS = stripe.Webhook.DEFAULT_TOLERANCE
# Bound each API call: a person is waiting on the checkout button, and a
# slow provider must fail fast rather than hold a web worker.
REQUEST_TIMEOUT_SECONDS = 20.0
# One retry covers a dropped connection; the SDK reuses the idempotency key.
NETWORK_RETRIES = 1
# Stripe allows 30 minutes to 24 hours. Far shorter than an order's life, so a
# payment that lands after the order is gone (and must be refunded) is rare.
CHECKOUT_LIFETIME_SECONDS = 3600

TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
SECRET_KEY_PREFIXES = ("sk_", "rk_")

# Checkout Session payment_status values that mean the money is there.
SETTLED = frozenset({"paid", "no_payment_required"})


class PaymentProviderUnavailable(HeadshotsError):
    status_code = 502
    code = "payment_provider_unavailable"
    message = "The payment provider is not answering; try again in a minute."


class StripePayments:
    name: ClassVar[str] = "stripe"

    def __init__(self, settings: Settings) -> None:
        if settings.stripe_api_key is None:
            raise ConfigurationError("Stripe payments need STRIPE_API_KEY to be set.")
        api_key = settings.stripe_api_key.get_secret_value().strip()
        if not api_key.startswith(SECRET_KEY_PREFIXES):
            raise ConfigurationError(
                "STRIPE_API_KEY must be a secret key (sk_...) or a restricted key (rk_...);"
                " a publishable key (pk_...) cannot open checkouts."
            )
        # Without verified webhooks nothing could ever unlock an order, and an
        # unverified one would unlock anything: refuse to start.
        secret = settings.stripe_webhook_secret
        if secret is None or not secret.get_secret_value().strip():
            raise ConfigurationError(
                "Stripe payments need STRIPE_WEBHOOK_SECRET (whsec_...), the signing secret"
                " of the webhook endpoint /api/webhooks/stripe."
            )
        self._webhook_secret = secret.get_secret_value().strip()
        if not self._webhook_secret.startswith("whsec_"):
            raise ConfigurationError(
                "STRIPE_WEBHOOK_SECRET must be a webhook signing secret (whsec_...)."
            )
        self._test_mode = api_key.startswith(TEST_KEY_PREFIXES)
        api_base = settings.stripe_api_base
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=REQUEST_TIMEOUT_SECONDS),
        )

    @property
    def test_mode(self) -> bool:
        return self._test_mode

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.amount_cents <= 0:
            raise ValueError(f"a checkout needs a positive amount, not {request.amount_cents}")
        if request.quantity < 1 or request.amount_cents % request.quantity:
            raise ValueError("a checkout's amount must be its quantity times a whole unit price")
        order = {"order_id": request.order_id}
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": request.quantity,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_cents // request.quantity,
                        "product_data": {"name": request.product_name},
                    },
                }
            ],
            "metadata": order,
            "client_reference_id": request.order_id,
            # On the payment too, so the operator can find it in the dashboard
            # when a late payment has to be refunded.
            "payment_intent_data": {"metadata": order},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int(time.time()) + CHECKOUT_LIFETIME_SECONDS,
        }
        try:
            session = self._client.v1.checkout.sessions.create(params)
        except (stripe.AuthenticationError, stripe.PermissionError) as error:
            # The SDK's message quotes part of the key: log only what kind of refusal it was.
            log.error("Stripe refused the API key (HTTP %s)", error.http_status)
            raise ConfigurationError(
                "Stripe refused the API key: check STRIPE_API_KEY, and that a restricted key"
                " may write Checkout Sessions."
            ) from None
        except stripe.StripeError as error:
            log.error(
                "Stripe checkout failed: %s (HTTP %s, code %s, request %s)",
                type(error).__name__,
                error.http_status,
                error.code,
                error.request_id,
            )
            raise PaymentProviderUnavailable() from None
        if not session.url:
            log.error("Stripe answered checkout session %s without a URL", session.id)
            raise PaymentProviderUnavailable()
        return Checkout(url=session.url, session_id=session.id)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        signature = _header(headers, SIGNATURE_HEADER)
        if not signature:
            raise WebhookRejected("The payment notification has no Stripe signature.")
        try:
            event = self._client.construct_event(
                payload, signature, self._webhook_secret, tolerance=TOLERANCE_SECONDS
            )
            body = event.to_dict()
        except stripe.SignatureVerificationError:
            if self._signed_but_stale(payload, signature):
                raise WebhookRejected("The payment notification is too old.") from None
            raise WebhookRejected() from None
        except (ValueError, TypeError, AttributeError, KeyError):
            # Correctly signed, yet not a Stripe event.
            raise WebhookRejected("The payment notification is not a Stripe event.") from None

        data = body.get("data")
        session = data.get("object") if isinstance(data, dict) else None
        if not isinstance(session, dict):
            raise WebhookRejected("The payment notification is not a Stripe event.")
        event_id = body.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise WebhookRejected("The payment notification is not a Stripe event.")
        outcome = _outcome(str(body.get("type")), session)
        if outcome is None:
            return None
        livemode = body.get("livemode")
        if livemode is not None and bool(livemode) == self._test_mode:
            # The webhook secret belongs to the other mode's endpoint: a test
            # payment must never pay for a live order.
            raise WebhookRejected(
                "The payment notification is from the other Stripe mode (test or live)."
            )
        order_id = _order_id(session)
        if order_id is None:
            # A checkout this service did not open (a payment link, another
            # app on the same account). Refusing it would make Stripe retry for
            # days and eventually disable the endpoint.
            log.info("ignoring Stripe event %s: its checkout names no order", event_id)
            return None
        return PaymentEvent(
            event_id=event_id,
            order_id=order_id,
            outcome=outcome,
            amount_cents=_amount(session),
            currency=str(session.get("currency") or "").lower(),
            provider=self.name,
            session_id=str(session.get("id") or "") or None,
        )

    def _signed_but_stale(self, payload: bytes, signature: str) -> bool:
        """Whether the signature is right and only its age is wrong (for the message)."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature, self._webhook_secret, tolerance=None
            )
        except (stripe.SignatureVerificationError, ValueError):
            return False
        return True


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # A framework may hand over headers with any capitalisation.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _outcome(event_type: str, session: Mapping[str, Any]) -> PaymentOutcome | None:
    if event_type == "checkout.session.completed":
        # Bank debits and vouchers complete the checkout before the money
        # arrives; async_payment_succeeded follows when it does.
        return "paid" if session.get("payment_status") in SETTLED else "pending"
    if event_type == "checkout.session.async_payment_succeeded":
        return "paid"
    if event_type in ("checkout.session.async_payment_failed", "checkout.session.expired"):
        return "failed"
    return None


def _order_id(session: Mapping[str, Any]) -> str | None:
    metadata = session.get("metadata")
    order_id = metadata.get("order_id") if isinstance(metadata, dict) else None
    order_id = order_id or session.get("client_reference_id")
    return order_id if isinstance(order_id, str) and order_id else None


def _amount(session: Mapping[str, Any]) -> int:
    amount = session.get("amount_total")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise WebhookRejected("The payment notification has no amount.")
    return amount
