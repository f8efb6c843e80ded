"""Starting a job consumer: in the web process (embedded) or as `headshots worker`.

Every consumer process writes its heartbeat every few seconds, and with
each beat takes back what a stopped process was holding (one killed
mid-order, on any machine), so the work resumes once that process's
heartbeat lapses instead of when its leases run out; the embedded process
also re-enqueues every waiting variation at start, since its own queue may
have lost jobs it had taken but not yet claimed.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select

from headshots.engines.base import default_engine_name
from headshots.imaging.scoring import default_processes, shared_pool
from headshots.jobs import tasks
from headshots.jobs.compactor import Compactor
from headshots.jobs.heartbeat import Heartbeat
from headshots.jobs.queue import SweepingConsumer, make_consumer
from headshots.orders import processes, variations
from headshots.orders.db import transaction
from headshots.orders.effects import after_commit
from headshots.orders.models import Order, OrderStatus, Variation, VariationStatus
from headshots.runtime import Runtime
from headshots.storage.base import StorageUnavailable

log = logging.getLogger(__name__)


@dataclass
class Consumer:
    consumer: SweepingConsumer
    threads: int
    listening: threading.Event | None

    def run(self) -> None:
        """Consume in this thread until stopped (`headshots worker`)."""
        self.consumer.run()

    def stop(self) -> None:
        if self.listening is not None:
            self.listening.set()
        self.consumer.stop(graceful=True)


def consumer_threads(runtime: Runtime) -> int:
    """Style jobs this process works on at once.

    Enough to keep the default engine's calls busy: a job gives the engine
    one style's seeds, so ``calls * batch / variations`` jobs fill its lanes;
    one more stores and checks images while the others wait on the engine,
    and its next style's calls queue in the lanes behind theirs. A job
    beyond that only holds claims that wait for a lane, which another
    process could be working on meanwhile.
    """
    settings = runtime.settings
    if settings.concurrency:
        return settings.concurrency
    shape = runtime.engine(default_engine_name(settings)).shape()
    return math.ceil(shape.calls * shape.batch / settings.variations) + 1


def bind(runtime: Runtime) -> None:
    """Let this process's consumers run the task bodies on ``runtime``."""
    runtime.queue.bind(
        render=partial(tasks.render_style, runtime), sweep=partial(tasks.sweep, runtime)
    )
    if runtime.compactor is None:
        # A store outage is waited out; the PNGs follow once it is back.
        runtime.compactor = Compactor(
            partial(tasks.compact, runtime), retry_on=(StorageUnavailable,)
        )
    processes = runtime.settings.identity_processes
    if runtime.scores is None and processes != 0:
        runtime.scores = shared_pool(processes or default_processes())


def start(runtime: Runtime, *, embedded: bool) -> Consumer:
    """Bind the task bodies, take back orphaned work, and start consuming."""
    bind(runtime)
    threads = consumer_threads(runtime)
    consumer = make_consumer(runtime.queue, runtime.settings, embedded=embedded, workers=threads)
    listening = runtime.shreds.listen()
    if runtime.scores is not None:
        # Children load their models now, not when the first order needs them.
        threading.Thread(target=runtime.scores.warm, name="warm-scores", daemon=True).start()
    resume(runtime, embedded=embedded)
    if runtime.heartbeat is None:
        runtime.heartbeat = Heartbeat(partial(beat, runtime), every=processes.BEAT_SECONDS)
        runtime.heartbeat.start()
    if embedded:
        consumer.start()
    return Consumer(consumer=consumer, threads=threads, listening=listening)


def resume(runtime: Runtime, *, embedded: bool) -> int:
    """Re-enqueue what a stopped process left; how many variations."""
    with transaction(runtime.sessions) as session:
        released = variations.orphaned(session)
        if embedded:
            released += session.scalars(
                select(Variation.id)
                .join(Order)
                .where(
                    Order.status == OrderStatus.QUEUED,
                    Variation.status == VariationStatus.PENDING,
                )
            ).all()
        after_commit(session).enqueue(variations.styles_of(session, released))
    if released:
        log.info("resumed %d variations left by a stopped process", len(released))
    return len(released)


def beat(runtime: Runtime) -> int:
    """This process is alive; take back what a stopped one held. How many variations."""
    with transaction(runtime.sessions) as session:
        processes.beat(session, runtime.owner)
    return resume(runtime, embedded=False)
