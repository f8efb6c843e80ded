"""The payments protocol.

A provider does two things: it opens a checkout for an order and returns the
URL to send the person to, and it turns a provider's confirmation (a signed
webhook, or the local test page's form) into a :class:`PaymentEvent`. The
order service applies events, idempotently by ``event_id``; an event is the
only thing that unlocks downloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from headshots.errors import HeadshotsError

PaymentOutcome = Literal["paid", "failed", "pending"]


@dataclass(frozen=True)
class CheckoutRequest:
    order_id: str
    # The whole amount, in the currency's smallest unit.
    amount_cents: int
    currency: str
    product_name: str
    # Where the provider sends the person back to.
    success_url: str
    cancel_url: str
    # Units bought (a team's seats); amount_cents is quantity times the unit price.
    quantity: int = 1


@dataclass(frozen=True)
class Checkout:
    url: str
    # The provider's id for the session (Stripe's cs_...), kept on the order.
    session_id: str


@dataclass(frozen=True)
class PaymentEvent:
    event_id: str
    order_id: str
    outcome: PaymentOutcome
    amount_cents: int
    currency: str
    provider: str
    session_id: str | None = None


@dataclass(frozen=True)
class PaymentApplied:
    """What a verified payment did to what it paid for (an order or a team)."""

    order_id: str
    unlocked: bool
    duplicate: bool
    needs_refund: bool


class WebhookRejected(HeadshotsError):
    status_code = 400
    code = "webhook_rejected"
    message = "The payment notification could not be verified."


class Payments(Protocol):
    name: ClassVar[str]

    # Shown next to the pay button; the local provider says it is a test.
    # Read-only rather than a ClassVar: Stripe's mode follows the key it was given.
    @property
    def test_mode(self) -> bool: ...

    def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        """Verify and decode a notification; None for event types we ignore.

        Raises WebhookRejected for a bad signature, a stale timestamp or a
        malformed body.
        """
        ...
