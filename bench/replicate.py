"""Replicate engine benchmark (decision 0004): our overhead beyond the provider's time.

A fake Replicate (tests/fakes/replicate_server.py, a real HTTP server on
127.0.0.1) ends every prediction ``--delay`` seconds after it is created.
Two orders are timed end to end through the real client and engine:

- one style x 4 variations (``generate``, as the CLI and workers call it);
- 6 styles x 4 variations (``agenerate`` of every style at once: 24
  predictions in flight).

Overhead = wall time - delay: encoding the selfie, 4 or 24 creates, the
downloads, decoding and fitting every output. Medians over ``--runs`` runs.

Run: .venv/bin/python -m bench.replicate [--runs 5] [--delay 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from tests.fakes.replicate_server import TOKEN, FakeReplicate

# Run as a script, this file's folder comes first on the path and its name
# would hide the ``replicate`` package; the repository root is needed for
# the fake server in tests/.
from headshots.config import Settings
from headshots.engines.base import Rendered
from headshots.engines.replicate.engine import ReplicateEngine
from headshots.imaging.selfie import PreparedSelfie, prepare_selfie
from headshots.styles import STYLES, get_style

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"
SIZE = (1024, 1280)


def one_style(engine: ReplicateEngine, selfie: PreparedSelfie) -> float:
    started = time.perf_counter()
    outcomes = engine.generate(selfie, get_style("corporate"), [1, 2, 3, 4], SIZE)
    elapsed = time.perf_counter() - started
    assert all(isinstance(o, Rendered) for o in outcomes), outcomes
    return elapsed


def six_styles(engine: ReplicateEngine, selfie: PreparedSelfie) -> float:
    async def order() -> list[Any]:
        return await asyncio.gather(
            *(
                engine.agenerate(
                    selfie, style, [10 * i + 1, 10 * i + 2, 10 * i + 3, 10 * i + 4], SIZE
                )
                for i, style in enumerate(STYLES)
            )
        )

    started = time.perf_counter()
    results = asyncio.run(order())
    elapsed = time.perf_counter() - started
    assert all(isinstance(o, Rendered) for style in results for o in style)
    return elapsed


def serve_fake(delay: float, spread: tuple[float, float] | None, pipe: Connection) -> None:
    """The fake provider in a process of its own, as the real one is elsewhere.

    In the benchmark's own process its serving would count as our overhead.
    """
    fake = FakeReplicate(delay=delay, spread=spread).start()
    pipe.send(fake.url)
    while (command := pipe.recv()) != "stop":
        if command == "peak":
            pipe.send(fake.peak_in_flight)
            fake.peak_in_flight = 0
    fake.stop()


class RemoteFake:
    def __init__(self, delay: float, spread: tuple[float, float] | None = None) -> None:
        self._pipe, child = multiprocessing.get_context("spawn").Pipe()
        self._process = multiprocessing.get_context("spawn").Process(
            target=serve_fake, args=(delay, spread, child), daemon=True
        )
        self._process.start()
        self.url: str = self._pipe.recv()

    def take_peak(self) -> int:
        """Predictions in flight at most since the last call."""
        self._pipe.send("peak")
        return int(self._pipe.recv())

    def stop(self) -> None:
        self._pipe.send("stop")
        self._process.join(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--delay", type=float, default=5.0)
    args = parser.parse_args()

    fake = RemoteFake(args.delay)
    settings = Settings().model_copy(
        update={"replicate_api_token": SecretStr(TOKEN), "replicate_base_url": fake.url}
    )
    selfie = prepare_selfie((FIXTURES / "obama.jpg").read_bytes(), settings)
    engine = ReplicateEngine(settings)
    one_style(engine, selfie)  # warm-up: imports, first connections
    results: dict[str, Any] = {"delay_seconds": args.delay, "runs": args.runs}
    try:
        for name, run, predictions in (
            ("order_1x4", one_style, 4),
            ("order_6x4", six_styles, 24),
        ):
            fake.take_peak()
            walls = [run(engine, selfie) for _ in range(args.runs)]
            wall = statistics.median(walls)
            results[name] = {
                "predictions": predictions,
                "peak_in_flight": fake.take_peak(),
                "wall_median_s": round(wall, 3),
                "overhead_median_s": round(wall - args.delay, 3),
                "overhead_max_s": round(max(walls) - args.delay, 3),
            }
    finally:
        fake.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
