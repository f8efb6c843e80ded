"""``POST /api/webhooks/replicate``: Replicate's completed-prediction webhooks.

Only a webhook with a valid signature, a fresh timestamp and an id not seen
before is acted on; acting means waking the prediction awaited in this
process. A replay of an id already handled is refused (409) and changes
nothing, so a provider re-delivery is harmless. A webhook for a prediction
awaited in another process (a separate ``headshots worker``) is passed on to
the workers through Redis (engines.replicate.relay); their polling remains
the fallback.

The signing secret is ``HEADSHOTS_REPLICATE_WEBHOOK_SECRET`` or, if unset,
the account's default secret fetched once from the API. A service without
either does not use Replicate: its webhooks get 404. A malformed webhook is
refused (400) before any secret is needed; 503 means only that Replicate is
configured and its secret cannot be had right now.

The Replicate client is imported only to fetch that secret (decision 0001:
a user of another engine never loads it).
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from headshots.config import Settings
from headshots.engines.replicate.relay import CompletionRelay
from headshots.engines.replicate.webhooks import (
    WAITERS,
    WEBHOOK_PATH,
    SeenIds,
    Waiters,
    WebhookRejected,
    check_headers,
    verify_signature,
)
from headshots.web.multipart import MAX_WEBHOOK_BYTES, WebhookTooLarge, read_body
from headshots.web.schemas import WebhookAnswer, WebhookResult

log = logging.getLogger(__name__)


class _Secret:
    """The signing secret, from settings or fetched once from the API."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        configured = settings.replicate_webhook_secret
        self._value = configured.get_secret_value() if configured else None
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        """Whether this service uses Replicate at all (a secret or a token)."""
        return self._value is not None or self._settings.replicate_api_token is not None

    async def get(self) -> str | None:
        if self._value is not None:
            return self._value
        async with self._lock:
            if self._value is None:
                self._value = await self._fetch()
        return self._value

    async def _fetch(self) -> str | None:
        from replicate.client import Client
        from replicate.exceptions import ReplicateError

        from headshots.engines.replicate.transport import RetryingTransport

        token = self._settings.replicate_api_token
        if token is None:
            return None
        transport = RetryingTransport()
        client = Client(
            api_token=token.get_secret_value(),
            base_url=self._settings.replicate_base_url or None,
            mounts={"all://": transport},
        )
        try:
            secret = await client.webhooks.default.async_secret()
        except (ReplicateError, httpx.TransportError) as error:
            log.error("could not fetch the Replicate webhook secret: %s", type(error).__name__)
            return None
        finally:
            await transport.aclose()
        return str(secret.key)


def build_replicate_webhook_router(
    settings: Settings, *, waiters: Waiters = WAITERS, seen: SeenIds | None = None
) -> APIRouter:
    router = APIRouter()
    secret = _Secret(settings)
    accepted = seen if seen is not None else SeenIds()
    relay = CompletionRelay(settings.queue_url) if settings.queue_url else None

    @router.post(WEBHOOK_PATH, response_model=WebhookAnswer, responses=_REFUSALS)
    async def replicate_webhook(request: Request) -> JSONResponse:
        if not secret.configured:
            return _answer(404, "not_configured", "This service does not use Replicate.")
        try:
            body = await read_body(
                request, max_bytes=MAX_WEBHOOK_BYTES, too_large=WebhookTooLarge()
            )
        except WebhookTooLarge as error:
            return _answer(413, "rejected", error.detail)
        try:
            check_headers(request.headers)
            prediction = json.loads(body)
        except WebhookRejected as error:
            log.warning("replicate webhook rejected: %s", error)
            return _answer(400, "rejected", f"The webhook was rejected: {error}.")
        except ValueError:
            return _answer(400, "rejected", "The webhook body is not JSON.")
        if not isinstance(prediction, dict) or not isinstance(prediction.get("id"), str):
            return _answer(400, "rejected", "The webhook body is not a prediction.")
        key = await secret.get()
        if key is None:
            return _answer(503, "unavailable", "The Replicate webhook secret is not available.")
        try:
            webhook_id = verify_signature(request.headers, body, key)
        except WebhookRejected as error:
            log.warning("replicate webhook rejected: %s", error)
            return _answer(400, "rejected", f"The webhook was rejected: {error}.")
        # Remembered only once verified: an attacker cannot burn real ids.
        if not accepted.first_time(webhook_id):
            return _answer(409, "duplicate", "This webhook was already received.")
        woke = waiters.notify(prediction)
        if not woke and relay is not None:
            await asyncio.to_thread(relay.publish, prediction["id"])
        log.info(
            "replicate webhook for %s (%s)%s",
            prediction["id"][:40],
            str(prediction.get("status"))[:20],
            "" if woke else ", passed on to the workers" if relay else ", not awaited here",
        )
        return _answer(200, "accepted", "Received.")

    return router


_REFUSALS: dict[int | str, dict[str, object]] = {
    status: {"model": WebhookAnswer, "description": meaning}
    for status, meaning in (
        (400, "Malformed, unsigned, stale or forged."),
        (404, "This service does not use Replicate."),
        (409, "A webhook with this id was already received."),
        (413, "The body is larger than a webhook can be."),
        (503, "The signing secret cannot be had right now."),
    )
}


def _answer(status: int, result: WebhookResult, detail: str) -> JSONResponse:
    return JSONResponse(
        WebhookAnswer(status=result, detail=detail).model_dump(), status_code=status
    )
