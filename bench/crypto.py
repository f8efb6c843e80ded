"""Cost of encryption per blob: seal and open a 2 MB blob, and a full put/get on local disk.

Run: .venv/bin/python -m bench.crypto [--runs N]
Prints JSON with medians in milliseconds.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from headshots.storage.keys import Keyring, open_sealed, seal
from headshots.storage.local import LocalBlobStore
from headshots.storage.vault import EncryptedBlobs

SIZE = 2 * 1024 * 1024


def median_ms(action: Callable[[], object], runs: int) -> float:
    action()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    runs = max(5, parser.parse_args().runs)
    key = secrets.token_bytes(32)
    blob = secrets.token_bytes(SIZE)
    sealed = seal(key, "order", "v1.png", blob)
    with tempfile.TemporaryDirectory() as folder:
        blobs = EncryptedBlobs(LocalBlobStore(Path(folder)), Keyring(secrets.token_bytes(32)))
        wrapped = blobs.new_wrapped_key("order")
        results = {
            "blob_bytes": SIZE,
            "runs": runs,
            "seal_ms": median_ms(lambda: seal(key, "order", "v1.png", blob), runs),
            "open_ms": median_ms(lambda: open_sealed(key, "order", "v1.png", sealed), runs),
            # Includes fsync of file and folder: the durable-write cost.
            "put_local_ms": median_ms(lambda: blobs.put("order", wrapped, "v1.png", blob), runs),
            "get_local_ms": median_ms(lambda: blobs.get("order", wrapped, "v1.png"), runs),
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
