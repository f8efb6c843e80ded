"""Real `headshots worker` processes on this machine's Redis.

A worker is killed with SIGKILL in the middle of a job; another worker,
already running, takes the variations over once their short lease runs out,
and the order is ready within 30 seconds of the kill (default leases).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from headshots.engines.base import Shape
from headshots.jobs import worker
from headshots.jobs.worker import consumer_threads
from headshots.orders import processes
from headshots.orders import variations as lifecycle
from headshots.orders.db import transaction
from headshots.orders.models import Variation, VariationStatus, utcnow
from headshots.runtime import Runtime, build_runtime
from headshots.web.app import create_app
from tests.support import InstantEngine, auth, credentials_env, make_settings, upload

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


def start_worker(settings_env: dict[str, str], delay: float) -> subprocess.Popen[bytes]:
    code = (
        "import tests.support as support;"
        f"support.InstantEngine.delay = {delay};"
        "from headshots.cli import app;"
        "app(['worker'])"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **credentials_env(), **settings_env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def variations(runtime: Runtime, order_id: str) -> list[Variation]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Variation).where(Variation.order_id == order_id)))


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_processes_sharing_a_host_name_and_pid_keep_each_others_live_leases(
    tmp_path: Path, database_url: str | None
) -> None:
    """Two runtimes in one test process stand for two containers with the same
    host name whose servers are both pid 1: neither may take the other's work
    while it is alive, and its work is taken back once its heartbeat lapses."""
    InstantEngine.reset()
    settings = make_settings(tmp_path, database_url)
    holder, other = build_runtime(settings), build_runtime(settings)
    try:
        with TestClient(create_app(holder, run_consumer=False)) as client:
            order = upload(
                client, (FIXTURES / "obama.jpg").read_bytes(), tier="starter", styles=("minimal",)
            ).json()
        ids = [v.id for v in variations(holder, order["id"])]
        with transaction(holder.sessions) as session:
            processes.beat(session, holder.owner)
            held = lifecycle.claim(session, ids, owner=holder.owner, lease_seconds=600)
        assert len(held) == len(ids)

        # The other process starts, and beats, while the holder is alive.
        assert worker.resume(other, embedded=False) == 0
        assert worker.beat(other) == 0
        assert all(v.lease_until > utcnow() for v in variations(holder, order["id"]))

        # The holder stopped a while ago: its work is released at the next beat.
        with transaction(holder.sessions) as session:
            processes.beat(session, holder.owner, now=utcnow() - timedelta(minutes=1))
        assert worker.beat(other) == len(ids)
        assert all(v.lease_until <= utcnow() for v in variations(holder, order["id"]))
        assert worker.beat(other) == 0  # released once
    finally:
        holder.close()
        other.close()


def test_an_order_completes_after_its_worker_is_killed_mid_job(
    tmp_path: Path, database_url: str | None, redis_url: str
) -> None:
    InstantEngine.reset()
    settings = make_settings(
        tmp_path,
        database_url,
        queue_url=redis_url,
        concurrency=2,
    )
    env = {
        "HEADSHOTS_DATA_DIR": str(settings.data_dir),
        "HEADSHOTS_MASTER_KEY": settings.master_key.get_secret_value(),  # type: ignore[union-attr]
        "HEADSHOTS_DATABASE_URL": database_url or "",
        "HEADSHOTS_QUEUE_URL": redis_url,
        "HEADSHOTS_ENGINE": "instant",
        "HEADSHOTS_CONCURRENCY": "2",
    }
    runtime = build_runtime(settings)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with TestClient(create_app(runtime, run_consumer=False)) as client:
            order = upload(
                client, (FIXTURES / "obama.jpg").read_bytes(), tier="starter", styles=("minimal",)
            ).json()
            order_id = order["id"]

            doomed = start_worker(env, delay=30)
            workers.append(doomed)
            wait_for(
                lambda: any(
                    v.status == VariationStatus.RUNNING for v in variations(runtime, order_id)
                ),
                timeout=60,
                what="the first worker to start a job",
            )
            # The other worker is up before the first one dies.
            workers.append(start_worker(env, delay=0.1))
            time.sleep(3)
            doomed.send_signal(signal.SIGKILL)
            doomed.wait(timeout=10)
            killed = {v.id for v in variations(runtime, order_id) if v.status == "running"}
            assert killed

            wait_for(
                lambda: (
                    client.get(f"/api/orders/{order_id}", headers=auth(order["token"])).json()[
                        "status"
                    ]
                    == "ready"
                ),
                timeout=30,
                what="the order to complete on the other worker within 30 s of the kill",
            )
        done = variations(runtime, order_id)
        assert all(v.status == VariationStatus.DONE for v in done), [
            (v.status, v.failure_code, v.failure_reason) for v in done
        ]
        assert all(v.attempts >= 2 for v in done if v.id in killed), [
            (v.id in killed, v.attempts) for v in done
        ]
    finally:
        for process in workers:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        runtime.close()


class Shaped:
    def __init__(self, shape: Shape) -> None:
        self._shape = shape

    def shape(self) -> Shape:
        return self._shape


@pytest.mark.parametrize(
    ("shape", "threads"),
    [
        # One GPU batch of a style's four seeds: one job on the GPU, one
        # storing and checking while its next style waits in the lane.
        (Shape(calls=1, batch=4), 2),
        # The studio on two cores: one job's four seeds already fill both.
        (Shape(calls=2, batch=1), 2),
        # Hosted, 24 predictions in flight: six styles of four, and one more.
        (Shape(calls=24, batch=1, asynchronous=True), 7),
    ],
)
def test_consumer_threads_fill_the_engine_lanes_and_one_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shape: Shape, threads: int
) -> None:
    """As README and decision 0007 say: ceil(calls x batch / variations) + 1."""
    runtime = build_runtime(make_settings(tmp_path, None, concurrency=0), migrate=False)
    try:
        monkeypatch.setattr(runtime, "engine", lambda name: Shaped(shape))
        assert consumer_threads(runtime) == threads
    finally:
        runtime.close()
