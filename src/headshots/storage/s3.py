"""Blobs as objects in an S3-compatible bucket: ``PREFIX/<order_id>/<name>``.

Works with AWS S3, Cloudflare R2, MinIO, SeaweedFS and Garage. The endpoint,
region and credentials come from the variables every S3 tool reads
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``, ``AWS_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, or an instance role), so
nothing of the bucket's account lives in our settings.

What reaches the bucket is ciphertext (see storage.vault), and an object's
key is made of random ids only: nothing of a person is in a key, a listing
or a log line. Each put is a single request, which S3 applies whole or not
at all, so no half-written blob can ever be read under a real name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from headshots.errors import ConfigurationError
from headshots.storage.base import (
    BUCKET_UNREACHABLE,
    BlobNotFound,
    StorageRefused,
    StorageUnavailable,
    check_blob_name,
    check_order_id,
)

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

# S3 deletes at most 1000 keys per DeleteObjects request.
DELETE_BATCH = 1000
# Starts with a dot, which no order id can: the probe never meets a blob.
_PROBE_KEY = ".ready-probe"
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3BlobStore:
    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        # "a/b" and "a/b/" name the same folder; "" is the bucket's root.
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 10.0) -> S3BlobStore:
        """A store for ``s3://BUCKET/PREFIX``, configured from the AWS_* variables."""
        parts = urlsplit(url)
        bucket = parts.netloc
        if parts.scheme != "s3" or len(bucket) < 3 or parts.query or parts.fragment:
            raise ConfigurationError(
                "HEADSHOTS_BLOB_URL must look like s3://BUCKET or s3://BUCKET/PREFIX "
                "(bucket names have at least 3 characters)."
            )
        return cls(make_client(timeout=timeout), bucket, parts.path)

    def __repr__(self) -> str:
        return f"S3BlobStore('s3://{self.bucket}/{self.prefix}')"

    def key(self, order_id: str, name: str) -> str:
        return f"{self.prefix}{check_order_id(order_id)}/{check_blob_name(name)}"

    def put(self, order_id: str, name: str, data: bytes) -> None:
        key = self.key(order_id, name)
        with self._translated(write=True):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType="application/octet-stream"
            )

    def get(self, order_id: str, name: str) -> bytes:
        key = self.key(order_id, name)
        with self._translated():
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            return response["Body"].read()

    def exists(self, order_id: str, name: str) -> bool:
        key = self.key(order_id, name)
        try:
            with self._translated():
                self.client.head_object(Bucket=self.bucket, Key=key)
        except BlobNotFound:
            return False
        return True

    def delete_order(self, order_id: str) -> None:
        """Delete every object under the order's prefix, a thousand per request.

        Raises :class:`StorageUnavailable` if any object may be left; the
        caller records the order for the sweep to try again.
        """
        folder = f"{self.prefix}{check_order_id(order_id)}/"
        with self._translated():
            for batch in self._batches(folder):
                answer = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
                if answer.get("Errors"):
                    raise StorageUnavailable(BUCKET_UNREACHABLE)

    def owners(self, written_before: datetime) -> list[str]:
        # Every object is listed (an hourly sweep, a day's orders at most):
        # a folder has no time of its own in S3, its objects do.
        newest: dict[str, datetime] = {}
        with self._translated():
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix
            ):
                for item in page.get("Contents", []):
                    owner, slash, _ = item["Key"][len(self.prefix) :].partition("/")
                    if slash:  # not the readiness probe at the root
                        written = item["LastModified"]
                        newest[owner] = max(newest.get(owner, written), written)
        return [owner for owner, written in newest.items() if written < written_before]

    def check(self) -> None:
        with self._translated(write=True):
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + _PROBE_KEY, Body=b"ok")

    def _batches(self, folder: str) -> Iterator[list[str]]:
        # Listing and deleting page by page keeps memory flat however many
        # blobs an order has; each listed page is at most 1000 keys.
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=folder, PaginationConfig={"PageSize": DELETE_BATCH}
        )
        for page in pages:
            keys = [item["Key"] for item in page.get("Contents", [])]
            if keys:
                yield keys

    @contextmanager
    def _translated(self, *, write: bool = False) -> Iterator[None]:
        """The client's errors as the store's typed errors, each with its status."""
        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code in _MISSING:
                raise BlobNotFound() from error
            if code == "NoSuchBucket":
                raise StorageUnavailable(
                    f"The bucket {self.bucket} does not exist; create it or correct "
                    "HEADSHOTS_BLOB_URL."
                ) from error
            if write and 400 <= status < 500:
                raise StorageRefused() from error
            raise StorageUnavailable(BUCKET_UNREACHABLE) from error
        except NoCredentialsError as error:
            raise StorageUnavailable(
                "The file storage has no credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or give the machine a role that may use the bucket."
            ) from error
        except BotoCoreError as error:  # unreachable, timed out, connection dropped
            raise StorageUnavailable(BUCKET_UNREACHABLE) from error


def make_client(*, timeout: float) -> S3Client:
    """An S3 client with bounded waits, for whichever S3 the AWS_* variables name."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    options: dict[str, Any] = {
        # A slow or dead bucket must fail a request within seconds, not hold
        # a web worker: three tries, each bounded, with backoff between them.
        "connect_timeout": min(timeout, 5.0),
        "read_timeout": timeout,
        "retries": {"max_attempts": 3, "mode": "standard"},
        # Enough connections for every engine slot and web thread at once.
        "max_pool_connections": 32,
    }
    if endpoint:
        # Self-hosted servers (MinIO, SeaweedFS, Garage) rarely have the
        # wildcard DNS that virtual-host addressing needs; path style works
        # on all of them and on R2.
        options["s3"] = {"addressing_style": "path"}
    session = boto3.session.Session()
    client: S3Client = session.client(
        "s3", endpoint_url=endpoint or None, region_name=region, config=Config(**options)
    )
    return client
