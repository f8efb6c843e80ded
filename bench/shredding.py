"""Shredding benchmark (decision 0012), against a real `headshots serve`.

The time a person waits for ``DELETE /api/orders/{id}`` on a ready order of
24 images (executive tier: 6 styles x 4), now that the answer also means the
key is gone from every database file (SQLite: secure_delete and a truncating
WAL checkpoint; PostgreSQL: VACUUM FULL data_keys). On SQLite (embedded) and
on PostgreSQL (a fresh schema of HEADSHOTS_BENCH_POSTGRES, by default this
machine's server).

    .venv/bin/python -m bench.shredding [--runs 11]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import time
from typing import Any

import httpx
import sqlalchemy

from bench.orders import order, wait_ready
from bench.server import ROOT, Server

STYLES = ("corporate", "creative", "startup", "executive", "friendly", "minimal")
POSTGRES = os.environ.get(
    "HEADSHOTS_BENCH_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def deletes(env: dict[str, str], runs: int) -> dict[str, Any]:
    env = {
        "HEADSHOTS_ENGINE": "bench.engines:Instant",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        **env,
    }
    server = Server(env)
    times = []
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for run in range(runs + 1):
                created = order(client, STYLES)
                wait_ready(client, created, 0.02)
                # Another live order, so the scrub has keys to keep.
                order(client)
                started = time.perf_counter()
                answer = client.delete(
                    f"/api/orders/{created['id']}",
                    headers={"Authorization": f"Bearer {created['token']}"},
                )
                seconds = time.perf_counter() - started
                assert answer.status_code == 204, answer.text
                if run:  # the first is a warm-up
                    times.append(seconds)
    finally:
        server.stop()
    return {
        "delete_median_ms": round(statistics.median(times) * 1000, 1),
        "delete_min_ms": round(min(times) * 1000, 1),
        "delete_max_ms": round(max(times) * 1000, 1),
        "runs": runs,
        "images_per_order": len(STYLES) * 4,
        "target_ms": 250,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=11)
    args = parser.parse_args()
    results: dict[str, Any] = {"sqlite": deletes({}, args.runs)}
    schema = "bench_" + secrets.token_hex(4)
    admin = sqlalchemy.create_engine(POSTGRES)
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
        results["postgresql"] = deletes({"HEADSHOTS_DATABASE_URL": url}, args.runs)
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
