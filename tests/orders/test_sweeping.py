"""The sweep: expired orders shredded, lost work enqueued again, stalled orders finished."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from headshots.jobs.tasks import run_sweep
from headshots.orders import sweeping
from headshots.orders.db import transaction
from headshots.orders.models import Order, Variation, VariationStatus, utcnow
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.support import (
    auth,
    make_settings,
    upload,
    wait_ready,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


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


def test_a_periodic_tick_runs_once_across_consumers(runtime: Runtime, tmp_path: Path) -> None:
    # Several consumers (threads, each with its own connection) race for one tick.
    winners: list[bool] = []
    barrier = threading.Barrier(6)

    def race() -> None:
        barrier.wait()
        with transaction(runtime.sessions) as session:
            winners.append(sweeping.claim_tick(session, "sweep", 30))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(winners) == [False] * 5 + [True]
    with transaction(runtime.sessions) as session:
        assert not sweeping.claim_tick(session, "sweep", 30)  # same period: nobody
        assert sweeping.claim_tick(session, "sweep", 0)  # next period: one again


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
