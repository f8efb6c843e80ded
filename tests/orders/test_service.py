"""The order service: expiry set at upload, restarts, last variations finishing at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import Order, Variation, VariationStatus
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
