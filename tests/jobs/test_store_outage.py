"""A blob store outage in the middle of an order, on a real S3 behind the faulty proxy.

The store goes down while an order renders, or between its images and their
final PNGs, and comes back: each outage is counted in the metrics, nothing
is failed or left as raw pixels, and the order completes with its PNGs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import select

from headshots.imaging.codecs import PNG_SIGNATURE
from headshots.jobs import tasks
from headshots.orders import variations
from headshots.orders.db import transaction
from headshots.orders.models import Order, Variation, VariationStatus, utcnow
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.s3server import FaultyProxy
from tests.support import InstantEngine, auth, make_settings, upload

SELFIE = (Path(__file__).parents[1] / "fixtures" / "obama.jpg").read_bytes()


def outages(step: str = "final_png") -> float:
    counted = REGISTRY.get_sample_value("headshots_store_unavailable_total", {"step": step})
    return counted or 0.0


def images(runtime: Runtime, order_id: str) -> list[bytes]:
    with runtime.sessions() as session:
        order = session.get(Order, order_id)
        assert order is not None and order.wrapped_key is not None
        return [
            runtime.blobs.get(order_id, order.wrapped_key, variation.image_blob)
            for variation in order.variations
            if variation.image_blob is not None
        ]


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_an_order_gets_its_pngs_once_its_store_is_back_from_an_outage(
    tmp_path: Path, proxy: FaultyProxy, s3_url: str
) -> None:
    InstantEngine.reset()
    runtime = build_runtime(make_settings(tmp_path, None, blob_url=s3_url))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            compactor = runtime.compactor
            assert compactor is not None
            compactor.patience = 3600
            # The test stands for a job still checking images: the PNGs wait
            # until the order's images are all stored, then the store goes down.
            with compactor.busy():
                order = upload(client, SELFIE).json()
                wait_until(
                    lambda: (
                        client.get(
                            f"/api/orders/{order['id']}", headers=auth(order["token"])
                        ).json()["status"]
                        == "ready"
                    ),
                    "the order's images",
                )
                stored = images(runtime, order["id"])
                assert len(stored) == 8
                assert not any(image.startswith(PNG_SIGNATURE) for image in stored)
                before = outages()
                proxy.mode = "down"
            wait_until(lambda: outages() >= before + 2, "the outage to be met twice")
            proxy.mode = "pass"
            wait_until(
                lambda: all(
                    image.startswith(PNG_SIGNATURE) for image in images(runtime, order["id"])
                ),
                "the final PNGs after the store came back",
            )
    finally:
        runtime.close()


def test_an_order_interrupted_by_a_store_outage_completes_once_it_is_back(
    tmp_path: Path, proxy: FaultyProxy, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    InstantEngine.reset()
    monkeypatch.setattr(InstantEngine, "delay", 1.0)
    settings = make_settings(
        tmp_path,
        None,
        blob_url=s3_url,
        lease_seconds=2,
        lease_renew_seconds=1,
        sweep_seconds=1,
    )
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:

            def status() -> dict[str, Any]:
                body: dict[str, Any] = client.get(
                    f"/api/orders/{order['id']}", headers=auth(order["token"])
                ).json()
                return body

            before = outages("image")
            order = upload(client, SELFIE).json()
            wait_until(lambda: status()["progress"]["running"] > 0, "the order's first job")
            proxy.mode = "down"
            wait_until(lambda: outages("image") > before, "a job to meet the outage")
            proxy.mode = "pass"
            wait_until(lambda: status()["status"] == "ready", "the order after the outage")
            assert [v["status"] for v in status()["variations"]] == ["done"] * 8
            wait_until(
                lambda: all(
                    image.startswith(PNG_SIGNATURE) for image in images(runtime, order["id"])
                ),
                "the final PNGs",
            )
    finally:
        runtime.close()


def test_a_job_that_cannot_read_its_selfie_fails_nothing_and_runs_again_later(
    tmp_path: Path, proxy: FaultyProxy, s3_url: str
) -> None:
    """A worker without the selfie in memory reads it from the store as its job starts."""
    InstantEngine.reset()
    settings = make_settings(
        tmp_path, None, blob_url=s3_url, lease_seconds=2, lease_renew_seconds=1
    )
    runtime = build_runtime(settings)
    try:
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            order = upload(client, SELFIE).json()
        with transaction(runtime.sessions) as session:
            ids = list(
                session.scalars(select(Variation.id).where(Variation.order_id == order["id"]))
            )
            jobs = variations.styles_of(session, ids)
        before = outages("image")
        proxy.mode = "down"
        tasks.render_style(runtime, jobs[0])
        assert outages("image") == before + 1
        with runtime.sessions() as session:
            held = list(session.scalars(select(Variation).where(Variation.id.in_(jobs[0]))))
        assert [v.status for v in held] == [VariationStatus.RUNNING] * 4  # not failed
        proxy.mode = "pass"
        wait_until(
            lambda: all(v.lease_until is not None and v.lease_until < utcnow() for v in held),
            "the leases of the interrupted job to run out",
            timeout=10,
        )
        for job in jobs:
            tasks.render_style(runtime, job)
        with runtime.sessions() as session:
            done = list(session.scalars(select(Variation).where(Variation.id.in_(ids))))
        assert [v.status for v in done] == [VariationStatus.DONE] * 8
        assert all(image.startswith(PNG_SIGNATURE) for image in images(runtime, order["id"]))
    finally:
        runtime.close()
