"""The order pipeline end to end, as a person waits for it (decision 0007).

Everything goes through a real `headshots serve` (embedded mode: SQLite, the
in-process consumer, encrypted local blobs) over HTTP, from the upload's
first byte to what the order page's event stream shows:

- hosted: the `replicate` engine against the fake provider in a process of
  its own, every prediction ending ``--delay`` seconds after its creation
  (or after a time drawn from 2..8 s): executive (6x4) and starter (1x4)
  orders, upload -> first preview and -> ready, and the CPU each output
  costs this machine (the server and its identity-checking children; the
  fake provider is not counted): up to ready, and up to the server's rest
  after it (the final PNGs are made once the order's faces are checked);
- load: 20 professional orders (240 predictions) at once; all ready against
  the ideal wall time for the engine's bound, and the server's peak RSS;
- studio: an executive order on the offline engine, first preview measured
  from the moment the upload answered;
- recovery: `kill -9` of the server mid-order, a restart on the same data
  dir, and the time from the restart to `ready`.

Run: .venv/bin/python -m bench.pipeline [--runs 5] [--only hosted,load,studio,recovery]
     [--root OTHER_CHECKOUT] (the hosted server runs that checkout's source)
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
from tests.fakes.replicate_server import TOKEN

from bench.replicate import RemoteFake
from bench.server import ROOT, Server

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"
SELFIE = (FIXTURES / "obama.jpg").read_bytes()
EXECUTIVE = ["corporate", "creative", "startup", "executive", "friendly", "minimal"]
PROFESSIONAL = ["corporate", "friendly", "minimal"]


def place_order(
    url: str, tier: str, styles: list[str], client: httpx.Client
) -> tuple[float, dict[str, Any]]:
    """Upload; (seconds the upload took to answer, the order)."""
    started = time.perf_counter()
    answer = client.post(
        f"{url}/api/orders",
        data={"tier": tier, "styles": styles},
        files={"selfie": ("me.jpg", SELFIE, "image/jpeg")},
        timeout=60,
    )
    answer.raise_for_status()
    return time.perf_counter() - started, answer.json()


def polled(
    url: str, order: dict[str, Any], client: httpx.Client, timeout: float = 300
) -> Iterator[dict[str, Any]]:
    """The order from the JSON API every 20 ms (where a stream would die with its server)."""
    headers = {"Authorization": f"Bearer {order['token']}"}
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        yield client.get(f"{url}/api/orders/{order['id']}", headers=headers).json()
        time.sleep(0.02)
    raise RuntimeError(f"order not ready after {timeout} s")


def streamed(
    url: str, order: dict[str, Any], client: httpx.Client, timeout: float = 300
) -> Iterator[dict[str, Any]]:
    """The order from the order page's event stream: what a person's page shows."""
    cookies = {f"order_{order['id']}": order["token"]}
    events = f"{url}/orders/{order['id']}/events"
    with client.stream("GET", events, cookies=cookies, timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data: {"):
                yield json.loads(line.removeprefix("data: "))
    raise RuntimeError("the order's event stream ended before it was ready")


def timings(bodies: Iterator[dict[str, Any]]) -> tuple[float, float]:
    """Seconds from now to the first preview that can be shown, and to ready."""
    started = time.perf_counter()
    first = math.nan
    for body in bodies:
        now = time.perf_counter() - started
        if math.isnan(first) and any(v["preview_url"] for v in body["variations"]):
            first = now
        if body["status"] == "ready":
            assert body["progress"]["failed"] == 0, body["progress"]
            return first, now
    raise RuntimeError("no more news of the order")


class CpuMeter:
    """CPU seconds (user + system) of the server and its children: the identity checkers.

    Wall time on a shared 2-core machine moves with whatever else runs;
    the CPU an order costs the server does not, or much less.
    """

    def __init__(self, server: Server) -> None:
        self.process = psutil.Process(server.process.pid)

    def seconds(self) -> float:
        total = 0.0
        for process in [self.process, *self.process.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def settle(self, window: float = 0.5, idle_share: float = 0.03, timeout: float = 30) -> float:
        """Wait until the server rests (under ``idle_share`` of a core); its CPU seconds then.

        Its final PNGs follow an order's ready: the next order starts from rest.
        """
        deadline = time.perf_counter() + timeout
        last = self.seconds()
        while time.perf_counter() < deadline:
            time.sleep(window)
            now = self.seconds()
            if now - last < idle_share * window:
                return now
            last = now
        return last


def one_order(
    url: str, tier: str, styles: list[str], meter: CpuMeter | None = None
) -> dict[str, float]:
    before = meter.settle() if meter else 0.0
    with httpx.Client() as client:
        upload, order = place_order(url, tier, styles, client)
        answered = meter.seconds() if meter else 0.0
        first, ready = timings(streamed(url, order, client))
    result = {
        "upload_s": upload,
        "first_preview_s": upload + first,
        "first_preview_after_answer_s": first,
        "ready_s": upload + ready,
    }
    if meter:
        at_ready = meter.seconds()
        rested = meter.settle()
        outputs = len(order["variations"])
        # The upload (intake, preflight, the selfie stored) is the order's,
        # once; from its answer on, the work is the outputs'.
        result["cpu_ms_upload"] = (answered - before) * 1000
        result["cpu_ms_per_output_to_ready"] = (at_ready - answered) * 1000 / outputs
        result["cpu_ms_per_output_with_final_png"] = (rested - answered) * 1000 / outputs
    return result


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]}


def hosted_env(fake: RemoteFake) -> dict[str, str]:
    return {
        "HEADSHOTS_ENGINE": "replicate",
        "REPLICATE_API_TOKEN": TOKEN,
        "REPLICATE_BASE_URL": fake.url,
    }


def hosted(runs: int, delay: float, root: Path = ROOT) -> dict[str, Any]:
    results: dict[str, Any] = {"provider_seconds": delay}
    fake = RemoteFake(delay)
    server = Server(hosted_env(fake), root=root)
    meter = CpuMeter(server)
    try:
        one_order(server.url, "starter", ["corporate"])  # warm-up
        for name, tier, styles in (
            ("executive_6x4", "executive", EXECUTIVE),
            ("starter_1x4", "starter", ["corporate"]),
        ):
            fake.take_peak()
            results[name] = medians(
                [one_order(server.url, tier, styles, meter) for _ in range(runs)]
            )
            results[name]["peak_in_flight"] = fake.take_peak()
    finally:
        server.stop()
        fake.stop()
    spread = RemoteFake(delay, spread=(2.0, 8.0))
    server = Server(hosted_env(spread), root=root)
    try:
        one_order(server.url, "starter", ["corporate"])
        results["executive_6x4_spread_2_8"] = medians(
            [one_order(server.url, "executive", EXECUTIVE) for _ in range(runs)]
        )
    finally:
        server.stop()
        spread.stop()
    return results


def load(delay: float, orders: int = 20) -> dict[str, Any]:
    fake = RemoteFake(delay)
    server = Server(hosted_env(fake))
    try:
        one_order(server.url, "starter", ["corporate"])
        bound = 24  # HEADSHOTS_REPLICATE_CONCURRENCY's default: calls per process
        predictions = orders * len(PROFESSIONAL) * 4
        ideal = math.ceil(predictions / bound) * delay
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=orders) as pool:
            list(
                pool.map(
                    lambda _: one_order(server.url, "professional", PROFESSIONAL), range(orders)
                )
            )
        wall = time.perf_counter() - started
        return {
            "orders": orders,
            "predictions": predictions,
            "provider_seconds": delay,
            "ideal_s": ideal,
            "wall_s": round(wall, 2),
            "ratio": round(wall / ideal, 3),
            "peak_rss_mb": round(server.peak_rss_mb(), 1),
        }
    finally:
        server.stop()
        fake.stop()


def studio(runs: int) -> dict[str, Any]:
    server = Server({"HEADSHOTS_ENGINE": "studio"})
    try:
        one_order(server.url, "starter", ["corporate"])  # warm-up: models load
        return {
            "executive_6x4": medians(
                [one_order(server.url, "executive", EXECUTIVE) for _ in range(runs)]
            )
        }
    finally:
        server.stop()


def recovery(runs: int, delay: float) -> dict[str, Any]:
    """kill -9 of the only server mid-order; seconds from the restart to ready."""
    fake = RemoteFake(delay)
    waits = []
    try:
        for _ in range(runs):
            server = Server(hosted_env(fake))
            with httpx.Client() as client:
                _, order = place_order(server.url, "executive", EXECUTIVE, client)
                time.sleep(delay / 2)  # every prediction in flight
                server.kill()
                restarted = Server(hosted_env(fake), data=server.data)
                started = time.perf_counter()
                try:
                    timings(polled(restarted.url, order, client, timeout=120))
                    waits.append(time.perf_counter() - started)
                finally:
                    restarted.stop()
    finally:
        fake.stop()
    return {
        "provider_seconds": delay,
        "ready_after_restart_median_s": round(statistics.median(waits), 2),
        "ready_after_restart_max_s": round(max(waits), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay", type=float, default=5.0)
    parser.add_argument("--only", default="hosted,load,studio,recovery")
    # Another checkout's source for the hosted server, to compare commits
    # on the same machine at the same load.
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    results: dict[str, Any] = {"runs": args.runs}
    if "hosted" in wanted:
        results["hosted"] = hosted(args.runs, args.delay, args.root)
    if "studio" in wanted:
        results["studio"] = studio(args.runs)
    if "load" in wanted:
        results["load"] = load(args.delay)
    if "recovery" in wanted:
        results["recovery"] = recovery(min(args.runs, 3), args.delay)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
