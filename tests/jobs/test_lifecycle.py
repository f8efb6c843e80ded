"""An order deleted at any moment of its making, and the selfie caches it leaves.

DELETE races each step of a style job (before its claim, during the engine
call, between the preview and the final PNG, while an image is written): it
answers 204, and afterwards there is no row, no file and no traceback, and
the job stops at once. The decrypted selfie leaves every process's cache at
the moment of the shred, and on its own after a while of disuse.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from headshots.engines.base import Outcome, register_engine
from headshots.imaging.selfie import PreparedSelfie, prepare_selfie
from headshots.jobs import checking, tasks
from headshots.orders.models import Variation
from headshots.orders.selfies import SelfieCache
from headshots.runtime import Runtime, build_runtime
from headshots.styles import Style
from headshots.web.app import create_app
from tests.support import InstantEngine, auth, make_settings, upload

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()


class GatedEngine(InstantEngine):
    """A generative instant engine whose calls wait for a gate to open."""

    name: ClassVar[str] = "gated"
    generative: ClassVar[bool] = True
    rerolls_help: ClassVar[bool] = True
    entered: ClassVar[threading.Event] = threading.Event()
    gate: ClassVar[threading.Event] = threading.Event()

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        GatedEngine.entered.set()
        GatedEngine.gate.wait(30)
        return super().generate(selfie, style, seeds, size)


register_engine("gated", GatedEngine)


@pytest.fixture
def gated(tmp_path: Path, database_url: str | None) -> Iterator[tuple[TestClient, Runtime]]:
    InstantEngine.reset()
    GatedEngine.entered = threading.Event()
    GatedEngine.gate = threading.Event()
    runtime = build_runtime(make_settings(tmp_path, database_url, engine="gated"))
    try:
        with TestClient(create_app(runtime, run_consumer=True)) as client:
            yield client, runtime
    finally:
        GatedEngine.gate.set()
        runtime.close()


def leftovers(runtime: Runtime, order_id: str) -> tuple[int, list[Path]]:
    """Variation rows and files of the order, anywhere in the data dir."""
    with runtime.sessions() as session:
        rows = session.scalar(
            select(func.count()).select_from(Variation).where(Variation.order_id == order_id)
        )
    files = [
        path
        for path in runtime.settings.data_dir.rglob("*")
        if path.is_file() and (order_id in str(path) or path.parent.name.startswith(".deleting"))
    ]
    return int(rows or 0), files


def delete(client: TestClient, order: dict[str, Any]) -> None:
    answer = client.delete(f"/api/orders/{order['id']}", headers=auth(order["token"]))
    assert answer.status_code == 204


def assert_gone(runtime: Runtime, order: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows, files = leftovers(runtime, order["id"])
        if not rows and not files and not runtime.shreds.working():
            break
        time.sleep(0.05)
    assert leftovers(runtime, order["id"]) == (0, [])
    assert not runtime.shreds.working(), "a job still works on the deleted order"
    assert order["id"] not in runtime.selfies
    errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not errors, [r.getMessage() for r in errors]


def test_delete_before_any_job_claims(
    gated: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = gated
    runtime.queue.bind(render=lambda ids: None, sweep=lambda: None)  # jobs are lost
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    delete(client, order)
    tasks.render_style(runtime, [v["id"] for v in order["variations"]])  # a late delivery
    assert_gone(runtime, order, caplog)
    assert not GatedEngine.entered.is_set()


def test_delete_during_the_engine_call(
    gated: tuple[TestClient, Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, runtime = gated
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    assert GatedEngine.entered.wait(30)
    delete(client, order)
    GatedEngine.gate.set()  # the engine answers after the order is gone
    assert_gone(runtime, order, caplog)


def test_delete_between_the_preview_and_the_final_image(
    gated: tuple[TestClient, Runtime],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, runtime = gated
    checked = threading.Event()
    release = threading.Event()
    score = checking.submit_score

    def held(*args: Any) -> Any:
        checked.set()
        release.wait(30)
        return score(*args)

    monkeypatch.setattr(checking, "submit_score", held)
    GatedEngine.gate.set()
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    assert checked.wait(30)
    delete(client, order)
    release.set()
    assert_gone(runtime, order, caplog)


def test_delete_while_an_image_is_written(
    gated: tuple[TestClient, Runtime],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, runtime = gated
    GatedEngine.gate.set()
    holder: dict[str, Any] = {}
    writing = threading.Event()
    put = runtime.blobs.store.put

    def slow_put(order_id: str, name: str, data: bytes) -> None:
        if name.endswith(".image") and order_id == holder.get("id") and not writing.is_set():
            writing.set()
            # The DELETE lands while this write is under way.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not holder.get("deleted"):
                time.sleep(0.01)
        put(order_id, name, data)

    monkeypatch.setattr(runtime.blobs.store, "put", slow_put)
    runtime.queue.bind(render=lambda ids: None, sweep=lambda: None)
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    holder["id"] = order["id"]
    job = threading.Thread(
        target=tasks.render_style, args=(runtime, [v["id"] for v in order["variations"]])
    )
    job.start()
    assert writing.wait(30)
    delete(client, order)
    holder["deleted"] = True
    job.join(30)
    assert not job.is_alive()
    assert_gone(runtime, order, caplog)


def test_a_shred_elsewhere_evicts_the_selfie_and_stops_the_jobs_here(
    tmp_path: Path, database_url: str | None, redis_url: str
) -> None:
    InstantEngine.reset()
    GatedEngine.entered = threading.Event()
    GatedEngine.gate = threading.Event()
    settings = make_settings(tmp_path, database_url, engine="gated", queue_url=redis_url)
    web = build_runtime(settings)
    worker = build_runtime(settings, migrate=False)
    from headshots.jobs import worker as jobs_worker

    consumer = jobs_worker.start(worker, embedded=True)
    try:
        with TestClient(create_app(web, run_consumer=False)) as client:
            order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
            assert GatedEngine.entered.wait(30)
            assert order["id"] in worker.selfies  # the worker decrypted it
            assert worker.shreds.working()
            delete(client, order)  # on the web process, not the worker
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and order["id"] in worker.selfies:
                time.sleep(0.02)
            assert order["id"] not in worker.selfies
            GatedEngine.gate.set()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and worker.shreds.working():
                time.sleep(0.02)
            assert not worker.shreds.working()
    finally:
        GatedEngine.gate.set()
        consumer.stop()
        worker.close()
        web.close()


def test_an_idle_selfie_leaves_memory_on_its_own() -> None:
    from headshots.config import Settings

    selfie = prepare_selfie(SELFIE, Settings())
    cache = SelfieCache(ttl_seconds=0.3)
    try:
        cache.put("order-one-0123456789", selfie)
        assert "order-one-0123456789" in cache
        time.sleep(1.0)  # nobody asks for anything meanwhile
        assert "order-one-0123456789" not in cache
        assert len(cache) == 0
    finally:
        cache.close()


def test_the_styles_of_an_order_load_its_selfie_once() -> None:
    from headshots.config import Settings

    selfie = prepare_selfie(SELFIE, Settings())
    cache = SelfieCache()
    loads = []

    def load() -> PreparedSelfie:
        loads.append(1)
        time.sleep(0.2)
        return selfie

    threads = [
        threading.Thread(target=cache.get, args=("order-two-0123456789", load)) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    cache.close()
