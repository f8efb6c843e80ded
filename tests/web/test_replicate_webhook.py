"""Replicate webhooks: the signature check itself, and the route on a small app."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from headshots.config import Settings
from headshots.engines.replicate.webhooks import (
    SeenIds,
    Waiters,
    WebhookRejected,
    verify_signature,
)
from headshots.web.replicate_webhook import build_replicate_webhook_router
from tests.fakes.replicate_server import TOKEN, WEBHOOK_SECRET, FakeReplicate, sign_webhook

PATH = "/api/webhooks/replicate"
BODY = json.dumps({"id": "p1", "status": "succeeded", "output": "x"}).encode()


def signed(
    body: bytes = BODY,
    webhook_id: str = "msg_1",
    timestamp: int | None = None,
    secret: str = WEBHOOK_SECRET,
) -> dict[str, str]:
    at = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(at),
        "webhook-signature": sign_webhook(secret, webhook_id, at, body),
    }


# --- the signature check ----------------------------------------------------


def test_a_correctly_signed_webhook_is_accepted() -> None:
    assert verify_signature(signed(), BODY, WEBHOOK_SECRET) == "msg_1"


def test_one_good_signature_among_several_is_enough() -> None:
    headers = signed()
    headers["webhook-signature"] = "v1,AAAA " + headers["webhook-signature"]
    assert verify_signature(headers, BODY, WEBHOOK_SECRET) == "msg_1"


@pytest.mark.parametrize(
    ("make_headers", "body", "why"),
    [
        (lambda: signed(), BODY + b" ", "bad webhook signature"),
        (lambda: signed(secret="whsec_" + "QUJD" * 8), BODY, "bad webhook signature"),
        (
            lambda: signed(webhook_id="msg_2") | {"webhook-id": "msg_3"},
            BODY,
            "bad webhook signature",
        ),
        (lambda: signed(timestamp=int(time.time()) - 600), BODY, "stale"),
        (lambda: signed(timestamp=int(time.time()) + 600), BODY, "stale"),
        (lambda: {"webhook-id": "msg_1"}, BODY, "missing"),
        (lambda: signed() | {"webhook-timestamp": "soon"}, BODY, "malformed"),
    ],
    ids=["body", "secret", "id", "old", "future", "headers", "timestamp"],
)
def test_tampered_stale_or_incomplete_webhooks_are_rejected(
    make_headers: Callable[[], dict[str, str]], body: bytes, why: str
) -> None:
    # Headers are signed when the test runs, not when it is collected: a
    # long suite would otherwise make every timestamp stale.
    with pytest.raises(WebhookRejected, match=why):
        verify_signature(make_headers(), body, WEBHOOK_SECRET)


def test_a_malformed_secret_is_named_without_being_quoted() -> None:
    with pytest.raises(WebhookRejected) as rejected:
        verify_signature(signed(), BODY, "not-a-secret-value")
    assert "not-a-secret-value" not in str(rejected.value)


def test_seen_ids_are_remembered_for_the_ttl_and_bounded() -> None:
    seen = SeenIds(ttl=600, capacity=3)
    assert seen.first_time("a", now=0)
    assert not seen.first_time("a", now=599)
    assert seen.first_time("a", now=1300)  # long past any fresh timestamp
    for name in "bcde":
        seen.first_time(name, now=1301)
    assert len(seen._seen) <= 3


# --- the route ----------------------------------------------------------------


class AwaitedPrediction:
    """A prediction awaited on a real event loop in another thread, as the engine does.

    Every test ends the wait by a notification; the minute's limit only bounds
    a broken one, so a loaded machine cannot run out the time of a good one.
    """

    def __init__(self, waiters: Waiters, prediction_id: str) -> None:
        self.payload: dict[str, Any] | None = None
        self.woke = False
        ready = threading.Event()

        async def wait() -> None:
            event = waiters.register(prediction_id)
            ready.set()
            try:
                await asyncio.wait_for(event.wait(), 60)
                self.woke = True
                self.payload = waiters.payload(prediction_id)
            except TimeoutError:
                pass
            finally:
                waiters.forget(prediction_id)

        self._thread = threading.Thread(target=asyncio.run, args=(wait(),))
        self._thread.start()
        assert ready.wait(60), "the prediction was never awaited"

    def join(self) -> None:
        self._thread.join(90)


@pytest.fixture
def waiters() -> Waiters:
    return Waiters()


@pytest.fixture
def web(settings: Settings, waiters: Waiters) -> Iterator[TestClient]:
    app = FastAPI()
    configured = settings.model_copy(update={"replicate_webhook_secret": SecretStr(WEBHOOK_SECRET)})
    app.include_router(build_replicate_webhook_router(configured, waiters=waiters))
    with TestClient(app) as client:
        yield client


def test_a_valid_webhook_wakes_the_awaited_prediction(web: TestClient, waiters: Waiters) -> None:
    awaited = AwaitedPrediction(waiters, "p1")
    response = web.post(PATH, headers=signed(), content=BODY)
    awaited.join()

    assert response.status_code == 200
    assert awaited.woke
    assert awaited.payload == json.loads(BODY)


def test_a_bad_signature_is_rejected_and_wakes_nobody(web: TestClient, waiters: Waiters) -> None:
    awaited = AwaitedPrediction(waiters, "p1")
    headers = signed(secret="whsec_" + "QUJD" * 8)
    response = web.post(PATH, headers=headers, content=BODY)
    waiters.notify({"id": "p1", "status": "canceled"})  # end the wait for the test
    awaited.join()

    assert response.status_code == 400
    assert "signature" in response.json()["detail"]
    assert awaited.payload == {"id": "p1", "status": "canceled"}


def test_a_stale_timestamp_is_rejected(web: TestClient) -> None:
    response = web.post(PATH, headers=signed(timestamp=int(time.time()) - 301), content=BODY)
    assert response.status_code == 400
    assert "stale" in response.json()["detail"]


def test_a_replayed_id_is_refused_and_changes_nothing(web: TestClient, waiters: Waiters) -> None:
    headers = signed(webhook_id="msg_replay")
    assert web.post(PATH, headers=headers, content=BODY).status_code == 200

    awaited = AwaitedPrediction(waiters, "p1")
    replay = web.post(PATH, headers=headers, content=BODY)
    waiters.notify({"id": "p1", "status": "canceled"})
    awaited.join()

    assert replay.status_code == 409
    # The replay did not hand its (old) payload to the new waiter.
    assert awaited.payload == {"id": "p1", "status": "canceled"}


def test_a_webhook_for_a_prediction_awaited_elsewhere_is_accepted(web: TestClient) -> None:
    # Another process (a worker) awaits it and will see the result by polling.
    response = web.post(PATH, headers=signed(webhook_id="msg_other"), content=BODY)
    assert response.status_code == 200


def test_without_a_configured_secret_the_account_secret_is_fetched_once(
    settings: Settings, waiters: Waiters
) -> None:
    fake = FakeReplicate().start()
    try:
        configured = settings.model_copy(
            update={"replicate_api_token": SecretStr(TOKEN), "replicate_base_url": fake.url}
        )
        app = FastAPI()
        app.include_router(build_replicate_webhook_router(configured, waiters=waiters))
        with TestClient(app) as client:
            first = client.post(PATH, headers=signed(webhook_id="msg_a"), content=BODY)
            second = client.post(PATH, headers=signed(webhook_id="msg_b"), content=BODY)
    finally:
        fake.stop()

    assert (first.status_code, second.status_code) == (200, 200)
    assert len(fake.calls("GET", r"^/v1/webhooks/default/secret$")) == 1


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, BODY),
        ({"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,Zm9v"}, BODY),
        (None, b"\xff not json"),
    ],
    ids=["unsigned", "garbage-signature", "not-json"],
)
def test_a_service_without_replicate_refuses_its_webhooks_as_not_here(
    settings: Settings, headers: dict[str, str] | None, body: bytes
) -> None:
    app = FastAPI()
    app.include_router(build_replicate_webhook_router(settings))
    with TestClient(app) as client:
        response = client.post(PATH, headers=signed() if headers is None else headers, content=body)
    assert response.status_code == 404
    assert response.json()["status"] == "not_configured"


@pytest.mark.parametrize(
    ("headers", "body"),
    [({}, BODY), (None, b"\xff not json"), (None, b"[1, 2]")],
    ids=["unsigned", "not-json", "not-a-prediction"],
)
def test_a_malformed_webhook_is_400_even_when_the_secret_cannot_be_fetched(
    settings: Settings, headers: dict[str, str] | None, body: bytes
) -> None:
    # Replicate is configured (a token) but its API is unreachable: a
    # malformed webhook is still the sender's fault, never a 503.
    configured = settings.model_copy(
        update={
            "replicate_api_token": SecretStr(TOKEN),
            "replicate_base_url": "http://127.0.0.1:9",
        }
    )
    app = FastAPI()
    app.include_router(build_replicate_webhook_router(configured))
    with TestClient(app) as client:
        response = client.post(PATH, headers=signed() if headers is None else headers, content=body)
    assert response.status_code == 400


def test_the_service_app_mounts_the_webhook(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from headshots.runtime import build_runtime
    from headshots.web.app import create_app
    from tests.support import make_settings

    runtime = build_runtime(make_settings(tmp_path, None, replicate_webhook_secret=WEBHOOK_SECRET))
    try:
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            good = client.post(PATH, headers=signed(webhook_id="msg_app"), content=BODY)
            forged = client.post(PATH, headers=signed(secret="whsec_" + "QUJD" * 8), content=BODY)
        assert good.status_code == 200
        assert forged.status_code == 400
    finally:
        runtime.close()


# --- across processes: the web process relays to the workers through Redis ---


def subscribed(url: str, channel: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 60
    while dict(client.pubsub_numsub(channel)).get(channel.encode(), 0) == 0:
        assert time.monotonic() < deadline, "the relay never subscribed"
        time.sleep(0.02)
    client.close()


def test_a_webhook_reaching_the_web_process_wakes_the_worker_awaiting_it(
    settings: Settings, redis_url: str
) -> None:
    from headshots.engines.replicate.relay import CHANNEL, CompletionRelay

    # The web process: nobody awaits predictions here (a Redis queue).
    app = FastAPI()
    configured = settings.model_copy(
        update={"replicate_webhook_secret": SecretStr(WEBHOOK_SECRET), "queue_url": redis_url}
    )
    app.include_router(build_replicate_webhook_router(configured, waiters=Waiters()))
    # A worker process: its own waiters, listening on the relay.
    worker_waiters = Waiters()
    stop = CompletionRelay(redis_url).listen(worker_waiters)
    try:
        subscribed(redis_url, CHANNEL)
        awaited = AwaitedPrediction(worker_waiters, "q8t2kx4ny1rmc0ahvzd3e7pwb6")
        body = json.dumps({"id": "q8t2kx4ny1rmc0ahvzd3e7pwb6", "status": "succeeded"}).encode()
        with TestClient(app) as web:
            forged = web.post(
                PATH, headers=signed(body, secret="whsec_" + "QUJD" * 8), content=body
            )
            response = web.post(PATH, headers=signed(body, webhook_id="msg_relay"), content=body)
        awaited.join()
    finally:
        stop.set()

    assert forged.status_code == 400
    assert response.status_code == 200
    assert awaited.woke
    # Only the id crossed Redis: the worker reads the result from the API.
    assert awaited.payload is None


def test_the_relay_ignores_what_is_not_a_prediction_id(redis_url: str) -> None:
    import redis

    from headshots.engines.replicate.relay import CHANNEL, CompletionRelay

    waiters = Waiters()
    stop = CompletionRelay(redis_url).listen(waiters)
    try:
        subscribed(redis_url, CHANNEL)
        awaited = AwaitedPrediction(waiters, "a" * 26)
        client = redis.Redis.from_url(redis_url)
        client.publish(CHANNEL, "../../" + "a" * 26)  # not an id: ignored
        client.publish(CHANNEL, "a" * 26)  # the listener is still there
        client.close()
        awaited.join()
    finally:
        stop.set()
    assert awaited.woke
