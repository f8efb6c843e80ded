"""boto3 against obstore for the blob store's own traffic (decision 0010), on a local SeaweedFS.

The S3 store uses boto3. obstore (Rust, object_store) is the other client the
issue names; this measures both on what the service does: put and get of a
2 MB sealed blob one at a time (wall and this process's CPU, the two cores
the pipeline shares), and 24 puts of 2 MB from 8 threads, as an order's
images are stored side by side.

    .venv/bin/pip install obstore   # not a dependency of the project
    PYTHONPATH=src:. .venv/bin/python -m bench.s3_clients [--runs 21]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.s3server import SeaweedS3

from bench.s3 import seaweed
from headshots.storage.s3 import make_client

MB = 1024 * 1024


def measured(call: Callable[[], object], runs: int) -> dict[str, float]:
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        call()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return {
        "wall_median_ms": round(statistics.median(walls) * 1000, 2),
        "cpu_median_ms": round(statistics.median(cpus) * 1000, 2),
    }


def side_by_side(put: Callable[[str], object], runs: int) -> float:
    """Median wall time of 24 puts from 8 threads, in ms."""
    times = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for run in range(runs):
            started = time.perf_counter()
            list(pool.map(put, [f"order{run}/v{index}" for index in range(24)]))
            times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def clients(server: SeaweedS3, bucket: str) -> dict[str, dict[str, Callable[..., Any]]]:
    data = secrets.token_bytes(2 * MB)
    boto = make_client(timeout=10.0)
    found: dict[str, dict[str, Callable[..., Any]]] = {
        "boto3": {
            "put": lambda key: boto.put_object(Bucket=bucket, Key=f"b/{key}", Body=data),
            "get": lambda key: boto.get_object(Bucket=bucket, Key=f"b/{key}")["Body"].read(),
        }
    }
    try:
        import obstore
        from obstore.store import S3Store
    except ImportError:
        return found
    store = S3Store(
        bucket,
        endpoint=server.endpoint,
        access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        region=os.environ["AWS_REGION"],
        client_options={"allow_http": True},
    )
    found["obstore"] = {
        "put": lambda key: obstore.put(store, f"o/{key}", data),
        "get": lambda key: obstore.get(store, f"o/{key}").bytes(),
    }
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    with seaweed() as (server, bucket):
        results: dict[str, Any] = {}
        for name, calls in clients(server, bucket).items():
            calls["put"]("warm")
            results[name] = {
                "put_2mb": measured(lambda calls=calls: calls["put"]("blob"), args.runs),
                "get_2mb": measured(lambda calls=calls: calls["get"]("blob"), args.runs),
                "24_puts_8_threads_ms": side_by_side(calls["put"], max(3, args.runs // 3)),
            }
        if "obstore" not in results:
            results["obstore"] = "not installed: .venv/bin/pip install obstore"
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
