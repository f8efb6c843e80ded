"""The blob store protocol, the id rules every store enforces, and its errors.

A blob store keeps opaque bytes under (order id, blob name). It never sees
plaintext: :class:`~headshots.storage.vault.EncryptedBlobs` seals every blob
before it reaches a store, so a store can live on any disk or bucket.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Protocol, runtime_checkable

from headshots.errors import HeadshotsError

# Ids become path components (local disk) or key segments (S3). Both
# patterns exclude '/', '\\', NUL and every other separator, and a name may
# not start with a dot, so '.', '..' and the stores' own hidden temp files
# can never be addressed. Names allow upper case because the order service
# builds them from URL-safe random ids.
_ORDER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_BLOB_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")


class InvalidBlobAddress(HeadshotsError):
    status_code = 400
    code = "invalid_id"
    message = "That is not a valid order or file id."


class BlobNotFound(HeadshotsError):
    status_code = 404
    code = "blob_not_found"
    message = "This file no longer exists; it may have expired or been deleted."


class OrderDeleted(HeadshotsError):
    """A blob was being written while its order was deleted: nothing was kept."""

    status_code = 404
    code = "not_found"
    message = "This order has been deleted."


class StorageFullError(HeadshotsError):
    status_code = 507
    code = "storage_full"
    message = "The server is out of storage space; try again later."


class StorageRefused(StorageFullError):
    """A bucket turned a write down (quota, permissions, object lock)."""

    code = "storage_refused"
    message = "The file storage refused to keep this file; try again later."


class StorageUnavailable(HeadshotsError):
    status_code = 503
    code = "storage_unavailable"
    message = (
        "The file storage cannot be written; check the permissions and free space "
        "of the data directory."
    )


def check_order_id(order_id: str) -> str:
    # fullmatch, not match with '$': '$' would accept a trailing newline.
    if not isinstance(order_id, str) or not _ORDER_ID.fullmatch(order_id):
        raise InvalidBlobAddress()
    return order_id


def check_blob_name(name: str) -> str:
    if not isinstance(name, str) or not _BLOB_NAME.fullmatch(name):
        raise InvalidBlobAddress()
    return name


@runtime_checkable
class BlobStore(Protocol):
    """Opaque (already encrypted) bytes, grouped by order.

    Every method validates the order id and blob name with
    :func:`check_order_id` and :func:`check_blob_name` before touching
    anything, and raises :class:`InvalidBlobAddress` for anything path-like.
    """

    def put(self, order_id: str, name: str, data: bytes) -> None:
        """Store ``data`` whole or not at all; replaces an existing blob.

        Raises :class:`StorageFullError` when the medium is full; no partial
        blob is left behind.
        """
        ...

    def get(self, order_id: str, name: str) -> bytes:
        """The stored bytes; :class:`BlobNotFound` if there are none."""
        ...

    def exists(self, order_id: str, name: str) -> bool: ...

    def delete_order(self, order_id: str) -> None:
        """Remove every blob of the order. Deleting a missing order is fine."""
        ...

    def owners(self, written_before: datetime) -> list[str]:
        """The orders (and drafts) with blobs, none written at or after ``written_before``.

        For the sweep that deletes what no row owns: a crash between a new
        order's first put and its commit leaves such blobs.
        """
        ...

    def check(self) -> None:
        """Raise :class:`StorageUnavailable` unless a blob could be written now."""
        ...


# What a bucket that cannot be reached answers: the same 503, with a
# sentence about the bucket instead of the data directory.
BUCKET_UNREACHABLE = "The file storage cannot be reached right now; try again in a minute."
