"""What every blob store promises, run on each of them: local disk and S3.

The S3 store runs against a real SeaweedFS server (tests/s3server.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from headshots.storage import s3 as s3_module
from headshots.storage.base import BlobNotFound, BlobStore, InvalidBlobAddress
from headshots.storage.keys import Keyring
from headshots.storage.local import LocalBlobStore
from headshots.storage.s3 import S3BlobStore
from headshots.storage.vault import EncryptedBlobs
from tests.s3server import SeaweedS3

ORDER = "Ab3_x-9"
STORES = ["local", "s3"]


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    return S3BlobStore.from_url(request.getfixturevalue("s3_url"))


def stored_bytes(store: BlobStore, request: pytest.FixtureRequest) -> list[bytes]:
    """Every byte string the store holds, read behind its back."""
    if isinstance(store, LocalBlobStore):
        return [p.read_bytes() for p in store.root.rglob("*") if p.is_file()]
    assert isinstance(store, S3BlobStore)
    server: SeaweedS3 = request.getfixturevalue("s3_server")
    client = server.client()
    return [
        client.get_object(Bucket=store.bucket, Key=key)["Body"].read()
        for key in server.keys(store.bucket, store.prefix)
    ]


def test_it_is_a_blob_store(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)


def test_a_blob_round_trips_and_can_be_replaced(store: BlobStore) -> None:
    big = secrets.token_bytes(2 * 1024 * 1024)
    store.put(ORDER, "v1.png", big)
    assert store.get(ORDER, "v1.png") == big
    assert store.exists(ORDER, "v1.png")
    store.put(ORDER, "v1.png", b"second")
    assert store.get(ORDER, "v1.png") == b"second"


def test_a_missing_blob_is_not_found(store: BlobStore) -> None:
    assert not store.exists(ORDER, "v1.png")
    with pytest.raises(BlobNotFound):
        store.get(ORDER, "v1.png")
    store.put(ORDER, "v1.png", b"x")
    with pytest.raises(BlobNotFound):
        store.get(ORDER, "v2.png")


def test_deleting_an_order_removes_all_its_blobs_and_only_its_blobs(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small delete batches, so an order of 23 blobs takes several requests.
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 5)
    for index in range(23):
        store.put(ORDER, f"v{index}.png", b"a")
    store.put("keep", "selfie.png", b"c")
    store.delete_order(ORDER)
    assert not any(store.exists(ORDER, f"v{index}.png") for index in range(23))
    store.delete_order(ORDER)  # again: nothing to do, no error
    store.delete_order("never-existed")
    assert store.get("keep", "selfie.png") == b"c"


def test_owners_lists_the_ids_with_blobs_written_before_a_time(store: BlobStore) -> None:
    store.check()  # the readiness probe is nobody's blob
    store.put(ORDER, "selfie.png", b"a")
    store.put("other-order", "v1.png", b"b")
    store.put("gone-order", "v1.png", b"c")
    store.delete_order("gone-order")
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert sorted(store.owners(later)) == sorted([ORDER, "other-order"])
    # Written just now: not before an hour ago.
    assert store.owners(datetime.now(UTC) - timedelta(hours=1)) == []


OPERATIONS: dict[str, Callable[[BlobStore, str, str], object]] = {
    "put": lambda s, o, n: s.put(o, n, b"data"),
    "get": lambda s, o, n: s.get(o, n),
    "exists": lambda s, o, n: s.exists(o, n),
    "delete_order": lambda s, o, n: s.delete_order(o),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize(("order_id", "name"), [("../x", "v1.png"), ("a/b", "v"), (ORDER, "../y")])
def test_path_like_ids_are_refused(
    store: BlobStore, request: pytest.FixtureRequest, operation: str, order_id: str, name: str
) -> None:
    if operation == "delete_order" and order_id == ORDER:
        return  # delete_order takes no name
    with pytest.raises(InvalidBlobAddress):
        OPERATIONS[operation](store, order_id, name)
    assert stored_bytes(store, request) == []


def test_names_the_order_service_uses_are_accepted(store: BlobStore) -> None:
    variation = "Q2x-_7uVh3kLmN0pQrStUv"  # secrets.token_urlsafe(16)
    for name in ("selfie.png", f"{variation}.image", f"{variation}.preview.jpg"):
        store.put(variation, name, b"x")
        assert store.get(variation, name) == b"x"


def test_the_readiness_check_passes_when_the_store_is_writable(store: BlobStore) -> None:
    store.check()


def test_only_ciphertext_reaches_the_store(
    store: BlobStore, request: pytest.FixtureRequest
) -> None:
    blobs = EncryptedBlobs(store, Keyring(secrets.token_bytes(32)))
    wrapped = blobs.new_wrapped_key(ORDER)
    secret = b"pixels of a person " * 1000
    blobs.put(ORDER, wrapped, "selfie.png", secret)
    assert blobs.get(ORDER, wrapped, "selfie.png") == secret
    held = stored_bytes(store, request)
    assert held and all(b"pixels of a person" not in data for data in held)
    blobs.shred(ORDER)
    assert not blobs.exists(ORDER, "selfie.png")
