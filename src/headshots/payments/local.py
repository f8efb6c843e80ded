"""The embedded payment provider: a test checkout page served by the app.

No money moves. The page's confirmation is signed with a key derived from
the master key and goes through :meth:`LocalPayments.parse_webhook` and the
order service exactly as a real provider's webhook does, so the embedded
mode exercises the same unlock path as production.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from typing import ClassVar

from headshots.payments.base import Checkout, CheckoutRequest, PaymentEvent, WebhookRejected

SIGNATURE_HEADER = "x-headshots-signature"
TOLERANCE_SECONDS = 300


class LocalPayments:
    name: ClassVar[str] = "local"
    test_mode: ClassVar[bool] = True

    def __init__(self, signing_key: bytes) -> None:
        self._key = signing_key

    def create_checkout(self, request: CheckoutRequest) -> Checkout:
        session_id = "lcs_" + secrets.token_urlsafe(24)
        return Checkout(url=f"/pay/local/{session_id}", session_id=session_id)

    def confirmation(
        self, *, session_id: str, order_id: str, amount_cents: int, currency: str
    ) -> tuple[bytes, dict[str, str]]:
        """The signed notification the test page sends when 'Pay' is pressed."""
        payload = json.dumps(
            {
                "id": "evt_" + session_id,
                "session_id": session_id,
                "order_id": order_id,
                "amount_cents": amount_cents,
                "currency": currency,
                "outcome": "paid",
            }
        ).encode()
        timestamp = str(int(time.time()))
        return payload, {SIGNATURE_HEADER: f"{timestamp}.{self._sign(timestamp, payload)}"}

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent | None:
        header = headers.get(SIGNATURE_HEADER, "")
        timestamp, _, signature = header.partition(".")
        if not timestamp.isdigit() or not hmac.compare_digest(
            signature, self._sign(timestamp, payload)
        ):
            raise WebhookRejected()
        if abs(time.time() - int(timestamp)) > TOLERANCE_SECONDS:
            raise WebhookRejected("The payment notification is too old.")
        try:
            body = json.loads(payload)
            return PaymentEvent(
                event_id=str(body["id"]),
                order_id=str(body["order_id"]),
                outcome=body["outcome"],
                amount_cents=int(body["amount_cents"]),
                currency=str(body["currency"]),
                provider=self.name,
                session_id=str(body["session_id"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise WebhookRejected() from error

    def _sign(self, timestamp: str, payload: bytes) -> str:
        return hmac.new(self._key, timestamp.encode() + b"." + payload, hashlib.sha256).hexdigest()
