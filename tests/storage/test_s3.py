"""The S3 store when the bucket misbehaves, and its place in the order service.

Faults the real server cannot produce on demand come from a thin proxy in
front of it (tests/s3server.FaultyProxy); the client is always the real one.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from headshots.orders import service, sweeping
from headshots.orders.db import transaction
from headshots.orders.models import Order, OrderStatus
from headshots.orders.shredding import PendingShred
from headshots.runtime import build_runtime
from headshots.storage.base import (
    BlobNotFound,
    StorageRefused,
    StorageUnavailable,
)
from headshots.storage.s3 import S3BlobStore
from headshots.storage.vault import blob_store_from_url
from tests.s3server import FaultyProxy, SeaweedS3, closed_port_endpoint
from tests.support import make_settings

ORDER = "Ab3_x-9"


def test_the_url_picks_the_bucket_and_prefix(s3_url: str) -> None:
    store = blob_store_from_url(s3_url + "/", make_settings(Path("/nonexistent"), None))
    assert isinstance(store, S3BlobStore)
    bucket, prefix = s3_url.removeprefix("s3://").split("/", 1)
    assert (store.bucket, store.prefix) == (bucket, prefix + "/")


def test_object_keys_hold_only_ids(s3_server: SeaweedS3, s3_url: str) -> None:
    store = S3BlobStore.from_url(s3_url)
    store.put(ORDER, "selfie.png", b"sealed")
    assert s3_server.keys(store.bucket, store.prefix) == [f"{store.prefix}{ORDER}/selfie.png"]


def test_an_unreachable_store_is_a_503_with_a_sentence(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", closed_port_endpoint())
    store = S3BlobStore.from_url(s3_url, timeout=1)
    for call in (
        lambda: store.put(ORDER, "a", b"x"),
        lambda: store.get(ORDER, "a"),
        lambda: store.delete_order(ORDER),
        store.check,
    ):
        with pytest.raises(StorageUnavailable, match="cannot be reached") as raised:
            call()
        assert raised.value.status_code == 503


def test_a_store_that_hangs_fails_within_the_timeout(proxy: FaultyProxy, s3_url: str) -> None:
    store = S3BlobStore.from_url(s3_url, timeout=0.5)
    proxy.mode = "hang"
    started = time.monotonic()
    with pytest.raises(StorageUnavailable):
        store.get(ORDER, "a")
    # Three tries of half a second each, plus backoff: seconds, not a hang.
    assert time.monotonic() - started < 10


def test_a_refused_write_is_a_507_and_a_missing_object_a_404(
    proxy: FaultyProxy, s3_url: str
) -> None:
    store = S3BlobStore.from_url(s3_url)
    proxy.mode = "refuse_writes"
    with pytest.raises(StorageRefused) as raised:
        store.put(ORDER, "a", b"x")
    assert raised.value.status_code == 507
    proxy.mode = "pass"
    with pytest.raises(BlobNotFound):
        store.get(ORDER, "a")


def test_a_failed_delete_is_left_pending_and_finished_by_the_sweep(
    tmp_path: Path, proxy: FaultyProxy, s3_server: SeaweedS3, s3_url: str, database_url: str | None
) -> None:
    runtime = build_runtime(make_settings(tmp_path, database_url, blob_url=s3_url))
    store = runtime.blobs.store
    assert isinstance(store, S3BlobStore)
    try:
        with transaction(runtime.sessions) as session:
            created = service.create_order(
                session,
                runtime.blobs,
                runtime.settings,
                runtime.tiers,
                selfie_png=b"not really a png",
                tier_id="professional",
                style_ids=["corporate"],
                engine="instant",
            )
        order_id = created.order.id
        assert s3_server.keys(store.bucket, f"{store.prefix}{order_id}/")

        proxy.mode = "fail_deletes"
        with transaction(runtime.sessions) as session:
            order = session.get(Order, order_id)
            assert order is not None
            service.shred(session, runtime.blobs, order, OrderStatus.DELETED)
        # The key is gone however the store answered; the blobs wait.
        with transaction(runtime.sessions) as session:
            order = session.get(Order, order_id)
            assert order is not None and order.wrapped_key is None and order.is_tombstone
            assert [p.owner_id for p in session.scalars(select(PendingShred))] == [order_id]
        assert s3_server.keys(store.bucket, f"{store.prefix}{order_id}/")

        with transaction(runtime.sessions) as session:  # still failing: still pending
            sweeping.sweep_expired(session, runtime.blobs)
        with transaction(runtime.sessions) as session:
            assert session.get(PendingShred, order_id).attempts == 2  # type: ignore[union-attr]

        proxy.mode = "pass"
        with transaction(runtime.sessions) as session:
            sweeping.sweep_expired(session, runtime.blobs)
        assert s3_server.keys(store.bucket, f"{store.prefix}{order_id}/") == []
        with transaction(runtime.sessions) as session:
            assert session.scalars(select(PendingShred)).all() == []
    finally:
        runtime.close()
