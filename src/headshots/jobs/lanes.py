"""Engine calls of one process, scheduled by each engine's shape.

A job hands a style's seeds to :meth:`Lanes.submit` and gets one future per
engine call back, so it can store each image the moment its call ends. How
the seeds become calls is the engine's to say (:class:`Shape`): a hosted
engine gets one coroutine per seed on this process's one event loop, at most
``shape.calls`` of them in flight; a GPU engine gets the style's seeds as one
batch; a CPU engine one seed per call on a pool of about one thread per
core. No bound is shared between engines.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from headshots.engines.base import Engine, Failed, Outcome, Size
from headshots.errors import HeadshotsError
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Call:
    """What one engine call gave: an outcome per seed, and how long it ran."""

    outcomes: list[Outcome]
    # From the call's start, not its submission: time waiting for a lane
    # is not the engine's.
    seconds: float


class Lanes:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def submit(
        self,
        engine: Engine,
        selfie: PreparedSelfie,
        style: Style,
        seeds: Sequence[int],
        size: Size,
    ) -> list[tuple[list[int], Future[Call]]]:
        """Start every call for ``seeds``; (the call's seeds, its future) each."""
        shape = engine.shape()
        chunks = [list(seeds[i : i + shape.batch]) for i in range(0, len(seeds), shape.batch)]
        if shape.asynchronous:
            loop, limit = self._event_loop(engine.name, shape.calls)
            return [
                (
                    chunk,
                    asyncio.run_coroutine_threadsafe(
                        _limited(limit, engine, selfie, style, chunk, size), loop
                    ),
                )
                for chunk in chunks
            ]
        pool = self._pool(engine.name, shape.calls)
        return [(chunk, pool.submit(_call, engine, selfie, style, chunk, size)) for chunk in chunks]

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
            loop, self._loop = self._loop, None
            self._limits = {}  # bound to the loop that stops here
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _pool(self, name: str, calls: int) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(name)
            if pool is None:
                pool = self._pools[name] = ThreadPoolExecutor(
                    max_workers=calls, thread_name_prefix=f"engine-{name}"
                )
            return pool

    def _event_loop(
        self, name: str, calls: int
    ) -> tuple[asyncio.AbstractEventLoop, asyncio.Semaphore]:
        """The process's one engine loop, and the engine's bound on it (made once)."""
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="engine-loop", daemon=True
                ).start()
            # An asyncio semaphore binds to the loop that first waits on it,
            # which is always this one; only coroutines on it touch the count.
            limit = self._limits.get(name)
            if limit is None:
                limit = self._limits[name] = asyncio.Semaphore(calls)
            return self._loop, limit


async def _limited(
    limit: asyncio.Semaphore,
    engine: Engine,
    selfie: PreparedSelfie,
    style: Style,
    seeds: list[int],
    size: Size,
) -> Call:
    async with limit:
        started = time.perf_counter()
        try:
            outcomes = await engine.agenerate(selfie, style, seeds, size)
            outcomes = _checked(engine, seeds, outcomes)
        except Exception as error:
            outcomes = _failed(engine, seeds, error)
        return Call(outcomes, time.perf_counter() - started)


def _call(
    engine: Engine, selfie: PreparedSelfie, style: Style, seeds: list[int], size: Size
) -> Call:
    started = time.perf_counter()
    try:
        outcomes = _checked(engine, seeds, engine.generate(selfie, style, seeds, size))
    except Exception as error:
        outcomes = _failed(engine, seeds, error)
    return Call(outcomes, time.perf_counter() - started)


def _checked(engine: Engine, seeds: list[int], outcomes: list[Outcome]) -> list[Outcome]:
    if len(outcomes) != len(seeds):
        raise RuntimeError(f"engine {engine.name} returned {len(outcomes)} of {len(seeds)}")
    return outcomes


def _failed(engine: Engine, seeds: list[int], error: Exception) -> list[Outcome]:
    """One failure per seed for a call that failed as a whole."""
    if isinstance(error, HeadshotsError):
        return [Failed(seed=seed, reason=error.detail, code=error.code) for seed in seeds]
    # The exception text may quote inputs: log its type and where it was
    # raised, which is what an operator needs, and nothing else.
    frames = traceback.extract_tb(error.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    log.error("engine %s failed: %s at %s", engine.name, type(error).__name__, where)
    return [
        Failed(
            seed=seed,
            reason="Something went wrong while making this image.",
            code="internal_error",
        )
        for seed in seeds
    ]
