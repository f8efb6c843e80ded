"""Replicate's signed webhooks: verification, replay protection, waking waiters.

Replicate signs webhooks with the Standard Webhooks scheme: HMAC-SHA256 of
``"{webhook-id}.{webhook-timestamp}.{body}"`` keyed with the base64 part of a
``whsec_`` secret, sent as space-separated ``v1,<base64>`` signatures. The
check here works on the raw body bytes, so no re-encoding can change what is
verified, and no error it raises quotes the secret or the body.

A completed-prediction webhook wakes the coroutine awaiting that prediction
in this process (:class:`Waiters`), so it need not wait for its next poll.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TOLERANCE_SECONDS = 300
# Where Replicate is told to send them (engines.replicate) and where the web
# app listens (web.replicate_webhook). Defined here, not in engines.replicate,
# so the app can mount the route without importing the Replicate client.
WEBHOOK_PATH = "/api/webhooks/replicate"


class WebhookRejected(Exception):
    """Why a webhook was refused; the message is safe to log and to answer."""


def check_headers(
    headers: Mapping[str, str], *, now: float | None = None, tolerance: int = TOLERANCE_SECONDS
) -> tuple[str, str, str]:
    """The webhook's id, timestamp and signatures, if present, well formed and fresh.

    Needs no secret, so a malformed webhook is refused before one is fetched.
    """
    webhook_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not webhook_id or not timestamp or not signatures:
        raise WebhookRejected("missing webhook headers")
    if len(webhook_id) > 200 or not timestamp.isdigit() or len(timestamp) > 12:
        raise WebhookRejected("malformed webhook headers")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance:
        raise WebhookRejected("stale webhook timestamp")
    return webhook_id, timestamp, signatures


def verify_signature(
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> str:
    """Check a webhook's signature and freshness; return its ``webhook-id``."""
    webhook_id, timestamp, signatures = check_headers(headers, now=now, tolerance=tolerance)
    prefix, _, encoded = secret.partition("_")
    if prefix != "whsec" or not encoded:
        raise WebhookRejected("the webhook signing secret is not a whsec_ secret")
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise WebhookRejected("the webhook signing secret is not valid base64") from None
    signed = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(given, expected):
            return webhook_id
    raise WebhookRejected("bad webhook signature")


@dataclass
class SeenIds:
    """Webhook ids already accepted, kept at least as long as a timestamp is fresh.

    Bounded, so a flood of valid-looking ids cannot grow memory without end:
    the oldest are forgotten first, and by then their timestamps are stale.
    """

    ttl: float = 2 * TOLERANCE_SECONDS
    capacity: int = 100_000
    _seen: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first_time(self, webhook_id: str, now: float | None = None) -> bool:
        """Remember ``webhook_id``; False if it was seen within the TTL."""
        current = time.monotonic() if now is None else now
        with self._lock:
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if current - at <= self.ttl and len(self._seen) < self.capacity:
                    break
                del self._seen[oldest]
            if webhook_id in self._seen:
                return False
            self._seen[webhook_id] = current
            return True


@dataclass
class _Waiter:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event
    payload: dict[str, Any] | None = None


class Waiters:
    """Predictions awaited in this process, by id, across threads and event loops."""

    def __init__(self) -> None:
        self._waiters: dict[str, _Waiter] = {}
        self._lock = threading.Lock()

    def register(self, prediction_id: str) -> asyncio.Event:
        """Called from the awaiting coroutine's loop; pair with :meth:`forget`."""
        waiter = _Waiter(asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters[prediction_id] = waiter
        return waiter.event

    def forget(self, prediction_id: str) -> None:
        with self._lock:
            self._waiters.pop(prediction_id, None)

    def payload(self, prediction_id: str) -> dict[str, Any] | None:
        with self._lock:
            waiter = self._waiters.get(prediction_id)
            return None if waiter is None else waiter.payload

    def poke(self, prediction_id: str) -> bool:
        """Wake the prediction's waiter with no payload: it asks the API itself."""
        with self._lock:
            waiter = self._waiters.get(prediction_id)
        return waiter is not None and _wake(waiter)

    def notify(self, prediction: dict[str, Any]) -> bool:
        """Hand a verified prediction to its waiter; False if nobody here waits."""
        prediction_id = prediction.get("id")
        if not isinstance(prediction_id, str):
            return False
        with self._lock:
            waiter = self._waiters.get(prediction_id)
            if waiter is None:
                return False
            waiter.payload = prediction
        return _wake(waiter)


def _wake(waiter: _Waiter) -> bool:
    try:
        waiter.loop.call_soon_threadsafe(waiter.event.set)
    except RuntimeError:  # its loop has closed: the wait is over anyway
        return False
    return True


# One registry per process: the webhook route and every engine share it.
WAITERS = Waiters()
