"""The Huey queue: SQLite in the data dir by default, Redis for scale-out.

The same task code runs on both. Huey delivers a task at most once, so the
tasks keep their state in our database and the sweep re-enqueues what was
lost (see orders.sweeping.stuck_variations). A job is one style of one
order: the ids of its variations.

Enqueueing needs no task code: the task bodies (jobs.tasks) are bound only
in processes that consume, so this module, and the runtime that holds the
queue, import none of them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer, Scheduler, Worker

from headshots.config import Settings
from headshots.errors import ConfigurationError

log = logging.getLogger(__name__)


Handler = Callable[..., None]


@dataclass
class Queue:
    huey: Huey
    render: Any  # huey TaskWrapper: render(variation_ids)
    sweep: Any  # huey TaskWrapper, periodic
    # What the tasks run, set by bind() in a process that consumes.
    handlers: dict[str, Handler] = field(default_factory=dict)
    # Idle consumer threads in this process wait on it between polls, so
    # work enqueued here starts at once instead of at the next poll.
    wake: threading.Condition = field(default_factory=threading.Condition)

    def bind(self, *, render: Handler, sweep: Handler) -> None:
        self.handlers.update(render=render, sweep=sweep)

    def enqueue_styles(self, jobs: list[list[str]]) -> None:
        """One job per style of an order, each the ids of its variations."""
        for variation_ids in jobs:
            self.render(variation_ids)
        with self.wake:
            self.wake.notify_all()

    def ping(self) -> None:
        self.huey.pending_count()


def make_huey(settings: Settings) -> Huey:
    url = settings.queue_url
    if url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return SqliteHuey(
            "headshots", filename=str(settings.data_dir / "queue.db"), results=False, utc=True
        )
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("headshots", url=url, results=False, utc=True)
    raise ConfigurationError("HEADSHOTS_QUEUE_URL must be a redis:// URL (or unset for SQLite).")


def build_queue(settings: Settings) -> Queue:
    huey = make_huey(settings)
    handlers: dict[str, Handler] = {}

    def render(variation_ids: list[str]) -> None:
        handlers["render"](variation_ids)

    def sweep() -> None:
        handlers["sweep"]()

    render_task = huey.task(name="render_style")(render)
    # The scheduler asks every `sweep_seconds` (see SweepingConsumer); the
    # sweep itself claims its tick in the database, so it runs once per
    # period however many consumers ask.
    sweep_task = huey.periodic_task(lambda _when: True, name="sweep")(sweep)
    return Queue(huey=huey, render=render_task, sweep=sweep_task, handlers=handlers)


class WakeableWorker(Worker):  # type: ignore[misc]
    """A consumer thread whose wait between polls ends early on a local enqueue."""

    wake: threading.Condition
    delay: float
    max_delay: float
    backoff: float

    def sleep(self) -> None:
        self.delay = min(self.delay, self.max_delay)
        with self.wake:
            if not self.stop_flag.is_set():
                self.wake.wait(self.delay)
        self.delay *= self.backoff


class SweepingConsumer(Consumer):  # type: ignore[misc]
    """A Huey consumer whose periodic check runs every ``sweep_seconds``."""

    def __init__(
        self, huey: Huey, *, sweep_seconds: float, wake: threading.Condition, **options: Any
    ) -> None:
        # Set before Consumer.__init__, which creates the scheduler and workers.
        self.sweep_seconds = sweep_seconds
        self.wake = wake
        super().__init__(huey, **options)

    def _create_scheduler(self) -> Scheduler:
        scheduler = super()._create_scheduler()
        scheduler.periodic_task_seconds = self.sweep_seconds
        return scheduler

    def stop(self, graceful: bool = False) -> None:
        self.stop_flag.set()
        with self.wake:  # threads waiting for work see the stop flag now
            self.wake.notify_all()
        super().stop(graceful=graceful)

    def _create_worker(self) -> Worker:
        worker = WakeableWorker(
            huey=self.huey,
            stop_flag=self.stop_flag,
            default_delay=self.default_delay,
            max_delay=self.max_delay,
            backoff=self.backoff,
            max_tasks=self.max_tasks,
        )
        worker.wake = self.wake
        return worker


class EmbeddedConsumer(SweepingConsumer):
    """Runs inside the web process: the server owns the signals, not Huey."""

    def _set_signal_handlers(self) -> None:
        pass


def make_consumer(
    queue: Queue, settings: Settings, *, embedded: bool, workers: int
) -> SweepingConsumer:
    """A consumer of ``workers`` threads, each working on one style job at a time."""
    kind = EmbeddedConsumer if embedded else SweepingConsumer
    consumer = kind(
        queue.huey,
        workers=workers,
        worker_type="thread",
        wake=queue.wake,
        periodic=True,
        # Idle workers poll the queue; keep the longest wait short so a new
        # order starts within a fraction of a second.
        initial_delay=0.05,
        backoff=1.3,
        max_delay=0.25,
        sweep_seconds=settings.sweep_seconds,
    )
    return consumer
