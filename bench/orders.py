"""Order-service benchmark (decision 0002), against a real `headshots serve`.

(a) pipeline overhead: upload -> all four previews ready, engine returns at once;
(b) concurrency: N orders x 4 variations, engine sleeps 2 s per image, wall
    time versus the ideal for the concurrency limit;
(c) peak RSS of the `headshots serve` process during (b).

    .venv/bin/python -m bench.orders [--runs 7] [--orders 20]

Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any

import httpx

from bench.server import ROOT, Server

SELFIE = (ROOT / "tests" / "fixtures" / "obama.jpg").read_bytes()


def order(client: httpx.Client, styles: tuple[str, ...] = ("corporate",)) -> dict[str, Any]:
    tier = "starter" if len(styles) == 1 else "executive"
    response = client.post(
        "/api/orders",
        data={"tier": tier, "styles": list(styles)},
        files={"selfie": ("selfie.jpg", SELFIE, "image/jpeg")},
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def wait_ready(client: httpx.Client, created: dict[str, Any], poll: float) -> float | None:
    """Wait until the order is ready; returns when all its previews could first be shown."""
    headers = {"Authorization": f"Bearer {created['token']}"}
    previews_at = None
    while True:
        body = client.get(f"/api/orders/{created['id']}", headers=headers).json()
        if previews_at is None and all(v["preview_url"] for v in body["variations"]):
            previews_at = time.perf_counter()
        if body["status"] == "ready":
            if body["progress"]["failed"]:
                raise RuntimeError(f"variations failed: {body['progress']}")
            return previews_at
        time.sleep(poll)


def pipeline_overhead(runs: int, env: dict[str, str] | None = None) -> dict[str, Any]:
    server = Server(
        {"HEADSHOTS_ENGINE": "bench.engines:Instant", "HEADSHOTS_CONCURRENCY": "4", **(env or {})}
    )
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            wait_ready(client, order(client), 0.01)  # warm-up: models load once
            previews, ready = [], []
            for _ in range(runs):
                started = time.perf_counter()
                previews_at = wait_ready(client, order(client), 0.005)
                ready.append(time.perf_counter() - started)
                assert previews_at is not None
                previews.append(previews_at - started)
    finally:
        server.stop()
    return {
        # What the target is about: every preview can be shown.
        "previews_median_ms": round(statistics.median(previews) * 1000, 1),
        "previews_min_ms": round(min(previews) * 1000, 1),
        # Also checked against the selfie and stored as final PNGs.
        "ready_median_ms": round(statistics.median(ready) * 1000, 1),
        "runs": runs,
        "target_ms": 300,
    }


def concurrency(orders: int, limit: int) -> dict[str, Any]:
    server = Server(
        {"HEADSHOTS_ENGINE": "bench.engines:SleepTwoSeconds", "HEADSHOTS_CONCURRENCY": str(limit)}
    )
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            started = time.perf_counter()
            created = [order(client) for _ in range(orders)]
            for each in created:
                wait_ready(client, each, 0.2)
            wall = time.perf_counter() - started
        peak = server.peak_rss_mb()
    finally:
        server.stop()
    ideal = math.ceil(orders * 4 / limit) * 2.0
    return {
        "orders": orders,
        "variations": orders * 4,
        "concurrency": limit,
        "wall_s": round(wall, 2),
        "ideal_s": ideal,
        "ratio": round(wall / ideal, 3),
        "target_ratio": 1.5,
        "peak_rss_mb": round(peak, 1),
        "target_rss_mb": 700,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--orders", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    print(
        json.dumps(
            {
                "pipeline_overhead": pipeline_overhead(args.runs),
                "concurrency": concurrency(args.orders, args.concurrency),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
