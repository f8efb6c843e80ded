"""The order service's lifecycle: expiry, stuck work, ticks, late payments, restarts."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from headshots.jobs.tasks import run_sweep
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import Order, PaymentRecord, Variation, VariationStatus, utcnow
from headshots.payments.base import PaymentEvent
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.support import (
    auth,
    confirm_local_payment,
    make_settings,
    upload,
    wait_ready,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


def test_expiry_is_24_hours_after_upload_and_nothing_extends_it(client: TestClient) -> None:
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    body = client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).json()
    from datetime import datetime

    created = datetime.fromisoformat(body["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires - created == timedelta(hours=24)
    paths = client.get("/openapi.json").json()["paths"]
    assert not any("extend" in path or "renew" in path for path in paths)
    # Paying does not move the deadline either.
    checkout = client.post(f"/api/orders/{order['id']}/checkout", headers=auth(order["token"]))
    confirm_local_payment(client, checkout.json()["checkout_url"])
    after = client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).json()
    assert after["paid"] is True
    assert after["expires_at"] == body["expires_at"]


def test_the_sweep_shreds_expired_orders_and_keeps_a_tombstone(
    client: TestClient, runtime: Runtime
) -> None:
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_ready(client, order["id"], order["token"])
    keep = upload(client, SELFIE, tier="starter", styles=("minimal",)).json()
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Order)
            .where(Order.id == order["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    expired, _ = run_sweep(runtime)
    assert expired == 1
    assert not (runtime.settings.data_dir / "blobs" / order["id"]).exists()
    assert (runtime.settings.data_dir / "blobs" / keep["id"]).exists()
    with runtime.sessions() as session:
        tombstone = session.get(Order, order["id"])
        assert tombstone is not None
        assert tombstone.status == "expired"
        assert tombstone.wrapped_key is None
        assert tombstone.variations == []
        assert tombstone.created_at is not None and tombstone.tier == "starter"
    assert client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).status_code == 404
    assert run_sweep(runtime) == (0, 0)  # idempotent


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
        applied = service.apply_payment(session, event)
    assert applied.needs_refund and not applied.unlocked
    with runtime.sessions() as session:
        record = session.get(PaymentRecord, "evt_late")
        assert record is not None and record.needs_refund
        tombstone = session.get(Order, order["id"])
        assert tombstone is not None
        assert tombstone.status == "deleted" and tombstone.paid_at is None


def test_a_periodic_tick_runs_once_across_consumers(runtime: Runtime, tmp_path: Path) -> None:
    # Several consumers (threads, each with its own connection) race for one tick.
    winners: list[bool] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        with transaction(runtime.sessions) as session:
            winners.append(service.claim_tick(session, "sweep", 30))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(winners) == [False] * 5 + [True]
    with transaction(runtime.sessions) as session:
        assert not service.claim_tick(session, "sweep", 30)  # same period: nobody
        assert service.claim_tick(session, "sweep", 0)  # next period: one again


def test_work_lost_with_a_dead_worker_is_enqueued_again(
    tmp_path: Path, database_url: str | None
) -> None:
    settings = make_settings(tmp_path, database_url, stuck_after_seconds=1, sweep_seconds=1)
    runtime = build_runtime(settings)
    try:
        # No consumer: the order's jobs sit in the queue, like a server that
        # stopped right after the upload.
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
        with transaction(runtime.sessions) as session:
            variation = session.scalars(
                select(Variation).where(Variation.order_id == order["id"])
            ).first()
            assert variation is not None
            # One variation was claimed by a worker that then died.
            variation.status = VariationStatus.RUNNING
            variation.lease_until = utcnow() - timedelta(seconds=5)
            variation.attempts = 1
            lost = variation.id
        runtime.queue.huey.flush()  # and the queue lost every message
        _, requeued = run_sweep(runtime)
        assert requeued >= 1
    finally:
        runtime.close()

    # The server restarts: a new runtime on the same data dir and database.
    restarted = build_runtime(settings)
    try:
        # The consumer's own periodic sweep finds the lost jobs.
        with TestClient(create_app(restarted, run_consumer=True)) as client:
            body = wait_ready(client, order["id"], order["token"])
        assert body["progress"]["done"] == 4
        with restarted.sessions() as session:
            assert (session.get(Variation, lost) or Variation()).attempts >= 2
    finally:
        restarted.close()


def test_an_order_resumes_after_a_restart(tmp_path: Path, database_url: str | None) -> None:
    settings = make_settings(tmp_path, database_url)
    first = build_runtime(settings)
    try:
        with TestClient(create_app(first, run_consumer=False)) as client:
            order = upload(client, SELFIE, tier="starter", styles=("friendly",)).json()
    finally:
        first.close()
    second = build_runtime(settings)
    try:
        with TestClient(create_app(second, run_consumer=True)) as client:
            body = wait_ready(client, order["id"], order["token"])
        assert [v["status"] for v in body["variations"]] == ["done"] * 4
    finally:
        second.close()


def test_an_order_whose_variations_all_ended_is_finished_by_the_sweep(
    client: TestClient, runtime: Runtime
) -> None:
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_ready(client, order["id"], order["token"])
    # As if two finishers had raced and neither marked the order ready.
    with transaction(runtime.sessions) as session:
        session.execute(update(Order).where(Order.id == order["id"]).values(status="queued"))
    run_sweep(runtime)
    body = client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).json()
    assert body["status"] == "ready"


def test_two_workers_finishing_the_last_variations_at_once_finish_the_order(
    runtime: Runtime, database_url: str | None
) -> None:
    if database_url is None:
        pytest.skip("SQLite lets one writer at a time in: the race needs PostgreSQL")
    # No consumer: this test plays the two workers itself.
    with TestClient(create_app(runtime, run_consumer=False)) as client:
        order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    with transaction(runtime.sessions) as session:
        ids = list(session.scalars(select(Variation.id).where(Variation.order_id == order["id"])))
        session.execute(
            update(Variation).where(Variation.id.in_(ids)).values(status="done", attempts=9)
        )
        session.execute(update(Variation).where(Variation.id.in_(ids[:2])).values(status="running"))
    both_updated = threading.Barrier(2)
    errors: list[BaseException] = []

    def finish(variation_id: str) -> None:
        try:
            with transaction(runtime.sessions) as session:
                variation = session.get(Variation, variation_id)
                assert variation is not None
                # Updated twice in one transaction, as a worker giving up on a
                # variation it just claimed does: PostgreSQL then re-checks the
                # foreign key and holds a share lock on the order row.
                variation.attempts += 1
                session.flush()
                variation.status = VariationStatus.DONE
                session.flush()
                both_updated.wait(timeout=10)  # neither has committed yet
                service.finish_if_complete(session, variation.order)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=finish, args=(vid,)) for vid in ids[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []  # no deadlock
    with runtime.sessions() as session:
        assert (session.get(Order, order["id"]) or Order()).status == "ready"


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


def test_a_deleted_order_is_404_to_its_former_owner_everywhere(
    client: TestClient, runtime: Runtime
) -> None:
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    body = wait_ready(client, order["id"], order["token"])
    preview = body["variations"][0]["preview_url"]
    headers = auth(order["token"])
    assert client.delete(f"/api/orders/{order['id']}", headers=headers).status_code == 204
    base = f"/api/orders/{order['id']}"
    answers = [
        client.get(base, headers=headers),
        client.get(preview, headers=headers),
        client.get(f"{base}/download.zip", headers=headers),
        client.post(f"{base}/checkout", headers=headers),
        client.delete(base, headers=headers),
    ]
    assert [answer.status_code for answer in answers] == [404] * len(answers)
    assert all(answer.json()["error"] == "not_found" for answer in answers)
