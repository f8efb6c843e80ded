"""A variation's two steps: the preview first, then the check and the final PNG."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from headshots.engines.base import Outcome, register_engine
from headshots.imaging.selfie import PreparedSelfie
from headshots.jobs import tasks
from headshots.jobs.queue import SweepingConsumer
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import Variation, utcnow
from headshots.runtime import Runtime, build_runtime
from headshots.styles import Style
from headshots.web.app import create_app
from tests.support import (
    InstantEngine,
    auth,
    confirm_local_payment,
    make_settings,
    upload,
    wait_ready,
)

SELFIE = (Path(__file__).parents[1] / "fixtures" / "obama.jpg").read_bytes()


def order_body(client: TestClient, order: dict[str, Any]) -> Any:
    return client.get(f"/api/orders/{order['id']}", headers=auth(order["token"])).json()


def wait_until(client: TestClient, order: dict[str, Any], test: Any, what: str) -> Any:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = order_body(client, order)
        if test(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"never {what}: {body['progress']}")


def all_finishing(body: Any) -> bool:
    return all(v["status"] == "finishing" for v in body["variations"])


def pay(client: TestClient, order: dict[str, Any]) -> None:
    checkout = client.post(f"/api/orders/{order['id']}/checkout", headers=auth(order["token"]))
    confirm_local_payment(client, checkout.json()["checkout_url"])


def stored_image(runtime: Runtime, order_id: str, variation_id: str) -> bytes:
    with runtime.sessions() as session:
        variation = session.get(Variation, variation_id)
        assert variation is not None and variation.image_blob is not None
        key = variation.order.wrapped_key
        assert key is not None
        return runtime.blobs.get(order_id, key, variation.image_blob)


def test_previews_show_while_the_images_are_checked(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks_may_run = threading.Event()
    check = tasks._check

    def held_check(*args: Any) -> Outcome | None:
        checks_may_run.wait(60)
        return check(*args)

    monkeypatch.setattr(tasks, "_check", held_check)
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    try:
        body = wait_until(client, order, all_finishing, "all finishing")
        assert body["status"] == "queued"
        assert body["progress"]["finishing"] == 4
        first = body["variations"][0]
        assert first["identity"]["distance"] is None  # not checked yet
        preview = client.get(first["preview_url"], headers=auth(order["token"]))
        assert preview.headers["content-type"] == "image/jpeg"
        assert Image.open(io.BytesIO(preview.content)).format == "JPEG"

        # Paid before the final PNG exists: the download is a PNG all the same.
        pay(client, order)
        download_url = order_body(client, order)["variations"][0]["download_url"]
        early = client.get(download_url, headers=auth(order["token"]))
        assert early.status_code == 200
        assert Image.open(io.BytesIO(early.content)).format == "PNG"
        assert not stored_image(runtime, order["id"], first["id"]).startswith(b"\x89PNG")
    finally:
        checks_may_run.set()

    ready = wait_ready(client, order["id"], order["token"])
    assert [v["status"] for v in ready["variations"]] == ["done"] * 4
    # Checked against the selfie: the instant engine shows the selfie's own face.
    assert all(v["identity"]["distance"] < 0.3 for v in ready["variations"])
    assert stored_image(runtime, order["id"], first["id"]).startswith(b"\x89PNG")
    late = client.get(download_url, headers=auth(order["token"]))
    with Image.open(io.BytesIO(early.content)) as a, Image.open(io.BytesIO(late.content)) as b:
        assert a.tobytes() == b.tobytes()  # the same image, only stored differently


def test_an_image_left_unfinished_by_a_dead_worker_is_finished_later(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker stores each image and its preview, then dies before finishing.
    monkeypatch.setattr(tasks, "_finish", lambda *args, **kwargs: None)
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_until(client, order, all_finishing, "all finishing")
    monkeypatch.undo()
    with transaction(runtime.sessions) as session:
        for variation in session.query(Variation).filter_by(order_id=order["id"]):
            variation.lease_until = utcnow() - timedelta(seconds=1)  # its lease ran out

    _, requeued = tasks.run_sweep(runtime)
    assert requeued == 4
    ready = wait_ready(client, order["id"], order["token"])
    assert [v["status"] for v in ready["variations"]] == ["done"] * 4
    assert all(v["identity"]["distance"] is not None for v in ready["variations"])
    for variation in ready["variations"]:
        assert stored_image(runtime, order["id"], variation["id"]).startswith(b"\x89PNG")
    # The engine ran once per variation: finishing did not make the image again.
    assert InstantEngine.calls == {"corporate": 4}


def test_a_check_that_keeps_failing_keeps_the_image(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tasks, "_finish", lambda *args, **kwargs: None)
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_until(client, order, all_finishing, "all finishing")
    with transaction(runtime.sessions) as session:
        for variation in session.query(Variation).filter_by(order_id=order["id"]):
            variation.lease_until = utcnow() - timedelta(seconds=1)
            variation.attempts = tasks.MAX_ATTEMPTS
    tasks.run_sweep(runtime)

    ready = wait_ready(client, order["id"], order["token"])
    assert [v["status"] for v in ready["variations"]] == ["done"] * 4
    pay(client, order)
    archive = client.get(f"/api/orders/{order['id']}/download.zip", headers=auth(order["token"]))
    assert archive.status_code == 200
    with zipfile.ZipFile(io.BytesIO(archive.content)) as opened:
        names = opened.namelist()
        assert len(names) == 4
        assert all(opened.read(name).startswith(b"\x89PNG") for name in names)


class CountingEngine(InstantEngine):
    """The instant engine, slowed down, counting the calls in flight at once."""

    name: ClassVar[str] = "counting"
    delay: ClassVar[float] = 0.3
    in_flight: ClassVar[int] = 0
    most: ClassVar[int] = 0

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        with self._lock:
            CountingEngine.in_flight += 1
            CountingEngine.most = max(CountingEngine.most, CountingEngine.in_flight)
        try:
            return super().generate(selfie, style, seeds, size)
        finally:
            with self._lock:
                CountingEngine.in_flight -= 1


register_engine("counting", CountingEngine)


def test_engine_calls_at_once_are_bounded_by_the_concurrency_setting(
    tmp_path: Path, database_url: str | None
) -> None:
    CountingEngine.most = 0
    runtime = build_runtime(make_settings(tmp_path, database_url, engine="counting", concurrency=3))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            order = upload(client, SELFIE, tier="executive", styles=("corporate", "minimal"))
            created = order.json()
            wait_ready(client, created["id"], created["token"])
    finally:
        runtime.close()
    # Eight variations, six consumer threads, three engine slots: all three used, never more.
    assert CountingEngine.most == 3


def test_work_enqueued_in_this_process_starts_without_waiting_for_a_poll(
    runtime: Runtime,
) -> None:
    # One consumer thread that would otherwise look at the queue once a minute.
    consumer = SweepingConsumer(
        runtime.queue.huey,
        sweep_seconds=3600,
        wake=runtime.queue.wake,
        workers=1,
        worker_type="thread",
        periodic=False,
        initial_delay=60,
        max_delay=60,
        backoff=1,
    )
    consumer.start()
    try:
        time.sleep(0.5)  # it has looked, found nothing, and waits
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
            body = wait_ready(client, order["id"], order["token"], timeout=30)
        assert body["progress"]["done"] == 4
    finally:
        consumer.stop(graceful=True)


def test_stored_pixels_and_pngs_read_back_as_the_same_image() -> None:
    image = Image.effect_noise((64, 80), 60).convert("RGB")
    raw = service.encode_pixels(image)
    png = service.encode_png(image)
    assert not raw.startswith(service.PNG_SIGNATURE)
    assert service.decode_image(raw).tobytes() == image.tobytes()
    assert service.decode_image(png).tobytes() == image.tobytes()
    assert service.clean_png(png) is png
    with Image.open(io.BytesIO(service.clean_png(raw))) as reopened:
        assert reopened.format == "PNG"
        assert reopened.convert("RGB").tobytes() == image.tobytes()
