"""Encrypted blobs of an order: the one storage API the order service calls.

The order service keeps each order's wrapped data key in its database row and
passes it in on every call. Nothing here caches an unwrapped key: unwrapping
costs microseconds, and a cache would keep a key alive after its order was
shredded.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from headshots.config import Settings
from headshots.errors import ConfigurationError
from headshots.storage.base import BlobStore
from headshots.storage.keys import Keyring, load_master_key, open_sealed, seal
from headshots.storage.local import LocalBlobStore


class EncryptedBlobs:
    def __init__(self, store: BlobStore, keyring: Keyring) -> None:
        self.store = store
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"EncryptedBlobs({self.store!r})"

    def new_wrapped_key(self, order_id: str) -> bytes:
        """A new order's data key, wrapped: store it with the order, nowhere else."""
        _, wrapped = self.keyring.new_data_key(order_id)
        return wrapped

    def put(self, order_id: str, wrapped_key: bytes, name: str, plaintext: bytes) -> None:
        key = self.keyring.unwrap(order_id, wrapped_key)
        self.store.put(order_id, name, seal(key, order_id, name, plaintext))

    def get(self, order_id: str, wrapped_key: bytes, name: str) -> bytes:
        key = self.keyring.unwrap(order_id, wrapped_key)
        return open_sealed(key, order_id, name, self.store.get(order_id, name))

    def exists(self, order_id: str, name: str) -> bool:
        return self.store.exists(order_id, name)

    def shred(self, order_id: str) -> None:
        """Delete every blob of the order.

        The caller also forgets the wrapped key (in the same transaction that
        marks the order gone): that is what makes copies in backups useless.
        """
        self.store.delete_order(order_id)

    def owners(self, written_before: datetime) -> list[str]:
        return self.store.owners(written_before)

    def check(self) -> None:
        self.store.check()


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The store ``HEADSHOTS_BLOB_URL`` names; unset: files under ``data_dir/blobs``."""
    return blob_store_from_url(settings.blob_url, settings)


def blob_store_from_url(url: str | None, settings: Settings) -> BlobStore:
    """The store a location names: empty for the data dir, ``file:///path`` or ``s3://``."""
    if not url:
        return LocalBlobStore(settings.data_dir / "blobs")
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.path and not parts.netloc:
        return LocalBlobStore(Path(parts.path))
    if parts.scheme == "s3":
        from headshots.storage.s3 import S3BlobStore  # boto3 loads only when used

        return S3BlobStore.from_url(url, timeout=settings.blob_timeout_seconds)
    raise ConfigurationError(
        f"HEADSHOTS_BLOB_URL must be empty, file:///PATH or s3://BUCKET/PREFIX; "
        f"{parts.scheme or 'a plain path'} is not supported."
    )


def encrypted_blobs_from_settings(settings: Settings) -> EncryptedBlobs:
    """Store and keyring from settings; a missing or bad master key stops start-up here."""
    return EncryptedBlobs(blob_store_from_settings(settings), Keyring(load_master_key(settings)))
