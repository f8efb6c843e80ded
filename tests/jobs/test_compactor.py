"""The compactor makes final PNGs only when no job is making or checking images.

A store that is down when the PNGs are due delays them, counted in the
metrics; they are made once it is back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from headshots.jobs.compactor import Compactor
from headshots.orders.models import Order
from headshots.orders.service import PNG_SIGNATURE
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.s3server import FaultyProxy, SeaweedS3
from tests.support import InstantEngine, auth, make_settings, upload

SELFIE = (Path(__file__).parents[1] / "fixtures" / "obama.jpg").read_bytes()


def test_it_waits_for_busy_jobs_then_works() -> None:
    done: list[int] = []
    finished = threading.Event()

    def work(item: int) -> None:
        done.append(item)
        if len(done) == 2:
            finished.set()

    compactor: Compactor[int] = Compactor(work, patience=30)
    try:
        with compactor.busy():
            compactor.add(1)
            compactor.add(2)
            time.sleep(0.3)
            assert done == []  # a job is still checking images
        assert finished.wait(5)
        assert done == [1, 2]
    finally:
        compactor.stop()


def test_a_busy_process_still_gets_its_pngs_after_the_patience() -> None:
    done = threading.Event()
    compactor: Compactor[str] = Compactor(lambda item: done.set(), patience=0.2)
    try:
        with compactor.busy():
            compactor.add("image")
            assert done.wait(5)  # not starved by a job that never ends
    finally:
        compactor.stop()


def test_a_failing_item_does_not_stop_the_others() -> None:
    done: list[int] = []

    def work(item: int) -> None:
        if item == 1:
            raise OSError("disk gone")
        done.append(item)

    compactor: Compactor[int] = Compactor(work)
    try:
        compactor.add(1)
        compactor.add(2)
        deadline = time.monotonic() + 5
        while not done and time.monotonic() < deadline:
            time.sleep(0.02)
        assert done == [2]
    finally:
        compactor.stop()


def test_a_job_waiting_on_a_remote_engine_lets_pngs_be_made() -> None:
    done = threading.Event()
    compactor: Compactor[str] = Compactor(lambda item: done.set(), patience=30)
    try:
        with compactor.busy():
            compactor.add("image")
            assert not done.wait(0.3)
            with compactor.idle():
                assert done.wait(5)
    finally:
        compactor.stop()


def test_an_image_whose_store_is_down_is_tried_again_later() -> None:
    tries: list[int] = []
    done = threading.Event()

    def work(item: int) -> None:
        tries.append(item)
        if len(tries) < 3:
            raise ConnectionError("store down")
        done.set()

    compactor: Compactor[int] = Compactor(work, retry_on=(ConnectionError,))
    try:
        compactor.add(7)
        assert done.wait(10)  # two waits: 0.5 s, then 1 s
        assert tries == [7, 7, 7]
    finally:
        compactor.stop()


# --- a store outage between an order's images and their final PNGs (real S3) ---


@pytest.fixture
def proxy(
    s3_server: SeaweedS3, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FaultyProxy]:
    """The faulty proxy, with the AWS_* endpoint pointing at it instead of the server."""
    faulty = FaultyProxy(s3_server.endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", faulty.endpoint)
    yield faulty
    faulty.stop()


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
