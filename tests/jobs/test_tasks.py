"""Style jobs: every call in flight as the engine's shape allows, previews first."""

from __future__ import annotations

import asyncio
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
from PIL import Image, ImageOps

from headshots.engines.base import Outcome, Rendered, Shape, register_engine
from headshots.imaging.selfie import PreparedSelfie
from headshots.jobs import checking, storing, tasks, worker
from headshots.jobs.queue import SweepingConsumer
from headshots.orders import variations
from headshots.orders.db import transaction
from headshots.orders.models import Variation, utcnow
from headshots.runtime import Runtime, build_runtime
from headshots.storage.base import BlobNotFound
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

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


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


def wait_for_images(runtime: Runtime, body: Any) -> None:
    """Previews show a moment before their raw pixels are written: wait for those too."""
    deadline = time.monotonic() + 30
    for variation in body["variations"]:
        while True:
            try:
                stored_image(runtime, body["id"], variation["id"])
                break
            except BlobNotFound:
                assert time.monotonic() < deadline, "the image was never stored"
                time.sleep(0.02)


class GenerativeInstant(InstantEngine):
    """The instant engine, declared generative: a new seed could change the face."""

    name: ClassVar[str] = "generative-instant"
    generative: ClassVar[bool] = True
    rerolls_help: ClassVar[bool] = True


register_engine("generative-instant", GenerativeInstant)


def wait_for_png(runtime: Runtime, order_id: str, variation_id: str) -> None:
    """The final PNG replaces the raw pixels just after the variation is done."""
    deadline = time.monotonic() + 30
    while not stored_image(runtime, order_id, variation_id).startswith(b"\x89PNG"):
        assert time.monotonic() < deadline, "the raw pixels were never replaced by a PNG"
        time.sleep(0.05)


def test_previews_show_while_the_images_are_checked(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks_may_run = threading.Event()
    checked = checking.submit_score

    def held_check(*args: Any) -> Any:
        checks_may_run.wait(60)
        return checked(*args)

    monkeypatch.setattr(checking, "submit_score", held_check)
    InstantEngine.reset()
    runtime = build_runtime(make_settings(tmp_path, database_url, engine="generative-instant"))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
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
                deadline = time.monotonic() + 30
                while early.status_code == 409 and time.monotonic() < deadline:
                    # Shown a moment before its pixels are stored: "try again".
                    assert "still being stored" in early.json()["detail"]
                    time.sleep(0.05)
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
            wait_for_png(runtime, order["id"], first["id"])
            late = client.get(download_url, headers=auth(order["token"]))
    finally:
        runtime.close()
    with Image.open(io.BytesIO(early.content)) as a, Image.open(io.BytesIO(late.content)) as b:
        assert a.tobytes() == b.tobytes()  # the same image, only stored differently


def test_an_image_left_unfinished_by_a_dead_worker_is_finished_later(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    InstantEngine.reset()
    runtime = build_runtime(make_settings(tmp_path, database_url, engine="generative-instant"))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            finish_after_a_dead_worker(client, runtime, monkeypatch)
    finally:
        runtime.close()


def finish_after_a_dead_worker(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker stores each image and its preview, then dies before finishing.
    monkeypatch.setattr(checking.Checking, "finish", lambda *args, **kwargs: None)
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_for_images(runtime, wait_until(client, order, all_finishing, "all finishing"))
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
        wait_for_png(runtime, order["id"], variation["id"])
    # The engine ran once per variation: finishing did not make the image again.
    assert InstantEngine.calls == {"corporate": 4}


def test_an_image_lost_after_its_preview_showed_is_made_again(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker records each preview, then dies before the raw pixels are written.
    monkeypatch.setattr(storing.StyleStore, "pixels", lambda *args, **kwargs: None)
    monkeypatch.setattr(checking.Checking, "finish", lambda *args, **kwargs: None)
    InstantEngine.reset()
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    body = wait_until(client, order, all_finishing, "all finishing")
    # Paid while the images are not stored: "try again", not "not found".
    pay(client, order)
    download_url = order_body(client, order)["variations"][0]["download_url"]
    zip_url = f"/api/orders/{order['id']}/download.zip"
    for url in (download_url, zip_url):
        early = client.get(url, headers=auth(order["token"]))
        assert early.status_code == 409
        assert early.json()["detail"] == "This image is still being stored; try again in a moment."
    assert body["variations"][0]["preview_url"]
    monkeypatch.undo()
    with transaction(runtime.sessions) as session:
        for variation in session.query(Variation).filter_by(order_id=order["id"]):
            variation.lease_until = utcnow() - timedelta(seconds=1)

    tasks.run_sweep(runtime)
    ready = wait_ready(client, order["id"], order["token"])
    assert [v["status"] for v in ready["variations"]] == ["done"] * 4
    # Each image was made a second time, and that one is what is stored.
    assert InstantEngine.calls == {"corporate": 8}
    for variation in ready["variations"]:
        wait_for_png(runtime, order["id"], variation["id"])


def test_a_check_that_keeps_failing_keeps_the_image(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checking.Checking, "finish", lambda *args, **kwargs: None)
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_for_images(runtime, wait_until(client, order, all_finishing, "all finishing"))
    with transaction(runtime.sessions) as session:
        for variation in session.query(Variation).filter_by(order_id=order["id"]):
            variation.lease_until = utcnow() - timedelta(seconds=1)
            variation.attempts = variations.MAX_ATTEMPTS
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
    delay: ClassVar[float] = 0.5
    calls_allowed: ClassVar[int] = 24
    in_flight: ClassVar[int] = 0
    most: ClassVar[int] = 0

    def shape(self) -> Shape:
        return Shape(calls=self.calls_allowed, batch=1)

    # Each call waits (a few seconds at most) for as many calls as the engine
    # allows to be in flight: on a busy machine the first calls could end
    # before the last start, and the count would depend on the machine's
    # speed instead of on what the scheduler allows.
    arrived: ClassVar[threading.Condition] = threading.Condition()
    GATHER_SECONDS: ClassVar[float] = 5.0

    @classmethod
    def expected(cls) -> int:
        return min(cls.calls_allowed, len(EXECUTIVE) * 4)

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        with self.arrived:
            CountingEngine.in_flight += 1
            CountingEngine.most = max(CountingEngine.most, CountingEngine.in_flight)
            self.arrived.notify_all()
            self.arrived.wait_for(
                lambda: CountingEngine.in_flight >= self.expected(), self.GATHER_SECONDS
            )
        try:
            return super().generate(selfie, style, seeds, size)
        finally:
            with self.arrived:
                CountingEngine.in_flight -= 1


class AsyncCountingEngine(CountingEngine):
    """Like a hosted engine: coroutines on one event loop, counted in flight."""

    name: ClassVar[str] = "async-counting"
    threads: ClassVar[set[int]] = set()

    def shape(self) -> Shape:
        return Shape(calls=self.calls_allowed, batch=1, asynchronous=True)

    async def agenerate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        AsyncCountingEngine.threads.add(threading.get_ident())
        CountingEngine.in_flight += 1  # one loop: no lock needed
        CountingEngine.most = max(CountingEngine.most, CountingEngine.in_flight)
        deadline = time.monotonic() + self.GATHER_SECONDS
        while CountingEngine.in_flight < self.expected() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        try:
            await asyncio.sleep(self.delay)
            image = ImageOps.fit(selfie.image, size, Image.Resampling.BILINEAR)
            return [Rendered(seed=seed, image=image, seconds=self.delay) for seed in seeds]
        finally:
            CountingEngine.in_flight -= 1


register_engine("counting", CountingEngine)
register_engine("async-counting", AsyncCountingEngine)

EXECUTIVE = ("corporate", "creative", "startup", "executive", "friendly", "minimal")


def make_order(tmp_path: Path, database_url: str | None, **settings: Any) -> dict[str, Any]:
    InstantEngine.reset()
    CountingEngine.most = CountingEngine.in_flight = 0
    runtime = build_runtime(make_settings(tmp_path, database_url, concurrency=0, **settings))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            order = upload(client, SELFIE, tier="executive", styles=EXECUTIVE).json()
            ready = wait_ready(client, order["id"], order["token"])
            assert ready["progress"]["done"] == 24
            return ready  # type: ignore[no-any-return]
    finally:
        runtime.close()


@pytest.mark.parametrize("engine", ["counting", "async-counting"])
def test_every_call_of_an_order_is_in_flight_at_once(
    tmp_path: Path, database_url: str | None, engine: str
) -> None:
    AsyncCountingEngine.threads = set()
    make_order(tmp_path, database_url, engine=engine)
    assert CountingEngine.most == 24
    if engine == "async-counting":
        assert len(AsyncCountingEngine.threads) == 1  # one event loop for all of them


@pytest.mark.parametrize("engine", ["counting", "async-counting"])
def test_calls_in_flight_are_bounded_by_the_engine_shape(
    tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    # The hosted kind is bounded by the lanes' semaphore on the event loop.
    monkeypatch.setattr(CountingEngine, "calls_allowed", 3)
    ready = make_order(tmp_path, database_url, engine=engine)
    assert CountingEngine.most == 3
    # A retouching engine keeps the selfie's face: nothing to check.
    assert all(v["identity"]["distance"] is None for v in ready["variations"])


class BatchingEngine(InstantEngine):
    """Like a GPU engine: one call at a time, a style's seeds as one batch."""

    name: ClassVar[str] = "batching"
    batches: ClassVar[list[int]] = []

    def shape(self) -> Shape:
        return Shape(calls=1, batch=4)

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        BatchingEngine.batches.append(len(seeds))
        return super().generate(selfie, style, seeds, size)


register_engine("batching", BatchingEngine)


def test_a_batching_engine_gets_each_style_as_one_call(
    tmp_path: Path, database_url: str | None
) -> None:
    BatchingEngine.batches = []
    make_order(tmp_path, database_url, engine="batching")
    assert BatchingEngine.batches == [4] * 6


class DriftingEngine(GenerativeInstant):
    """A generative engine whose first try shows a stranger; its re-rolls show the person."""

    name: ClassVar[str] = "drifting"
    reroll_may_finish: ClassVar[threading.Event] = threading.Event()
    first_seeds: ClassVar[set[int]] = set()

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for seed in seeds:
            if not self.first_seeds or seed in self.first_seeds:
                self.first_seeds.add(seed)
                source = Image.open(FIXTURES / "grace_hopper.jpg").convert("RGB")
            else:
                self.reroll_may_finish.wait(60)
                source = selfie.image
            image = ImageOps.fit(source, size, Image.Resampling.BILINEAR)
            outcomes.append(Rendered(seed=seed, image=image, seconds=0.0))
        return outcomes


register_engine("drifting", DriftingEngine)


def test_a_drifted_face_is_rerolled_after_its_preview_showed(
    tmp_path: Path, database_url: str | None
) -> None:
    DriftingEngine.first_seeds = set()
    DriftingEngine.reroll_may_finish = threading.Event()
    runtime = build_runtime(make_settings(tmp_path, database_url, engine="drifting", variations=1))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
            try:
                body = wait_until(
                    client,
                    order,
                    lambda b: b["variations"][0]["identity"]["rerolling"],
                    "re-rolling",
                )
                shown = body["variations"][0]
                assert shown["status"] == "finishing"
                assert shown["identity"]["flag"] == "different_person"
                before = client.get(shown["preview_url"], headers=auth(order["token"])).content
            finally:
                DriftingEngine.reroll_may_finish.set()
            ready = wait_ready(client, order["id"], order["token"])
            final = ready["variations"][0]
            after = client.get(final["preview_url"], headers=auth(order["token"])).content
    finally:
        runtime.close()
    assert final["identity"]["flag"] is None and not final["identity"]["rerolling"]
    assert final["seed"] != shown["seed"]
    assert before != after  # the better try replaced the preview


class HeldRemoteEngine(InstantEngine):
    """Like a hosted engine whose corporate predictions take as long as a test wants."""

    name: ClassVar[str] = "held-remote"
    release: ClassVar[threading.Event] = threading.Event()

    def shape(self) -> Shape:
        return Shape(calls=24, batch=1, asynchronous=True)

    async def agenerate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        while style.id == "corporate" and not self.release.is_set():
            await asyncio.sleep(0.02)
        image = ImageOps.fit(selfie.image, size, Image.Resampling.BILINEAR)
        return [Rendered(seed=seed, image=image, seconds=0.0) for seed in seeds]


register_engine("held-remote", HeldRemoteEngine)


def test_final_pngs_are_made_while_another_order_waits_on_a_hosted_engine(
    tmp_path: Path, database_url: str | None
) -> None:
    HeldRemoteEngine.release = threading.Event()
    runtime = build_runtime(make_settings(tmp_path, database_url, engine="held-remote"))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            assert runtime.compactor is not None
            runtime.compactor.patience = 300  # only an idle moment lets a PNG be made
            waiting = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
            wait_until(
                client,
                waiting,
                lambda b: all(v["status"] == "running" for v in b["variations"]),
                "running",
            )
            try:
                made = upload(client, SELFIE, tier="starter", styles=("friendly",)).json()
                ready = wait_ready(client, made["id"], made["token"])
                # The first order's job is still on, waiting on its provider:
                # that costs no CPU here, so the second order's PNGs are made.
                for variation in ready["variations"]:
                    wait_for_png(runtime, made["id"], variation["id"])
                assert order_body(client, waiting)["status"] != "ready"
            finally:
                HeldRemoteEngine.release.set()
            wait_ready(client, waiting["id"], waiting["token"])
    finally:
        runtime.close()


def test_work_enqueued_in_this_process_starts_without_waiting_for_a_poll(
    runtime: Runtime,
) -> None:
    # One consumer thread that would otherwise look at the queue once a minute.
    worker.bind(runtime)
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
