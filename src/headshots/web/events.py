"""The order page's live progress: server-sent events, the order as JSON when it changes.

The stream reads the order when a change is announced (orders.changes), at
most once per EVENTS_GATHER_SECONDS, since the images of an order land
together; the change the page waits for (the order ready, or paid) is read
at once. It also reads at least every EVENTS_POLL_SECONDS, for what nobody
announces (the sweep, a lost message), and gives up after
EVENTS_LIFETIME_SECONDS: the page then polls its progress address instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from starlette.responses import StreamingResponse

from headshots.errors import HeadshotsError
from headshots.orders import service
from headshots.orders.changes import Watch, changed
from headshots.orders.db import transaction
from headshots.orders.models import OrderStatus
from headshots.web.deps import order_cookie, runtime_of
from headshots.web.responses import NO_STORE, ORDERS
from headshots.web.schemas import order_json

router = APIRouter(include_in_schema=False)

EVENTS_POLL_SECONDS = 0.75
EVENTS_GATHER_SECONDS = 0.1
EVENTS_LIFETIME_SECONDS = 600.0

Snapshot = Callable[[], dict[str, Any] | None]


@router.get("/orders/{order_id}/events")
async def order_events(request: Request, order_id: str) -> Response:
    """Server-sent events: the order as JSON whenever it changes.

    Ends when every variation is finished (or, with ``?until=paid``, when
    the payment is confirmed), or after a bounded time.
    """
    runtime = runtime_of(request)
    token = order_cookie(request, order_id)
    until_paid = request.query_params.get("until") == "paid"

    def snapshot() -> dict[str, Any] | None:
        with transaction(runtime.sessions) as session:
            try:
                return order_json(service.open_order(session, order_id, token), ORDERS)
            except HeadshotsError:
                return None

    first = await run_in_threadpool(snapshot)
    if first is None:
        raise service.OrderNotFound()

    async def stream() -> AsyncIterator[str]:
        with runtime.changes.watching(order_id) as watch:
            async for event in _events(request, watch, snapshot, first, until_paid=until_paid):
                yield event

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={**NO_STORE, "X-Accel-Buffering": "no"},
    )


async def _events(
    request: Request,
    watch: Watch,
    snapshot: Snapshot,
    body: dict[str, Any] | None,
    *,
    until_paid: bool,
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    last = ""
    deadline = time.monotonic() + EVENTS_LIFETIME_SECONDS
    read_at = time.monotonic()
    while time.monotonic() < deadline:
        if body is None:
            yield "event: gone\ndata: {}\n\n"
            return
        text = json.dumps(body, separators=(",", ":"))
        if text != last:
            yield f"data: {text}\n\n"
            last = text
        done = body["status"] != OrderStatus.QUEUED
        if done and (body["paid"] or not until_paid):
            yield "event: end\ndata: {}\n\n"
            return
        if await request.is_disconnected():
            return
        # A job's announcement wakes the stream at once; the poll only
        # covers what no one announces (the sweep, a lost message).
        if await changed(watch.changed, EVENTS_POLL_SECONDS):
            # A burst is read once; the change the page waits for ends the gathering.
            since = time.monotonic() - read_at
            await changed(watch.final, max(0.0, EVENTS_GATHER_SECONDS - since))
        watch.changed.clear()
        read_at = time.monotonic()
        body = await run_in_threadpool(snapshot)
    yield "event: end\ndata: {}\n\n"
