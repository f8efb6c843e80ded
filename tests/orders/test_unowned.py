"""Blobs no order or draft owns (a crash between a new order's put and its commit) go."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from headshots.config import Settings
from headshots.imaging.selfie import prepare_selfie
from headshots.jobs.tasks import run_sweep
from headshots.orders import service, unowned
from headshots.orders.db import transaction
from headshots.orders.drafts import create_draft
from headshots.orders.models import Tick, utcnow
from headshots.runtime import Runtime
from tests.support import upload, wait_ready

FIXTURES = Path(__file__).parents[1] / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()
ORPHAN = "Zz0rphan-never-committed"


def an_hour_later(runtime: Runtime) -> None:
    """The server's own sweeps have had their hourly listing already."""
    with transaction(runtime.sessions) as session:
        session.execute(
            update(Tick)
            .where(Tick.name == "unowned")
            .values(last_run=utcnow() - timedelta(hours=2))
        )


def test_the_hourly_sweep_deletes_blobs_that_no_order_or_draft_owns(
    client: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = upload(client, SELFIE, tier="starter", styles=("corporate",)).json()
    wait_ready(client, order["id"], order["token"])
    with transaction(runtime.sessions) as session:
        draft = create_draft(
            session, runtime.blobs, runtime.settings, prepare_selfie(SELFIE, Settings())
        ).draft
    # What a process that died between a selfie's put and its commit leaves:
    # ciphertext under an id that no row has.
    runtime.blobs.store.put(ORPHAN, service.SELFIE_BLOB, b"sealed with a key never committed")

    with transaction(runtime.sessions) as session:
        # Written a moment ago: it may be an order whose commit is under way.
        assert unowned.delete_unowned(session, runtime.blobs) == 0
    assert runtime.blobs.exists(ORPHAN, service.SELFIE_BLOB)

    monkeypatch.setattr(unowned, "GRACE", timedelta(0))
    an_hour_later(runtime)
    run_sweep(runtime)
    assert not runtime.blobs.exists(ORPHAN, service.SELFIE_BLOB)
    assert runtime.blobs.exists(order["id"], service.SELFIE_BLOB)
    assert runtime.blobs.exists(draft.id, service.SELFIE_BLOB)
    # Hourly: the next sweep does not list the store again.
    runtime.blobs.store.put(ORPHAN, service.SELFIE_BLOB, b"again")
    run_sweep(runtime)
    assert runtime.blobs.exists(ORPHAN, service.SELFIE_BLOB)
