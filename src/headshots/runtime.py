"""The running service's parts, picked from settings by one function.

The web app, the in-process consumer and every `headshots worker` build one
Runtime at start-up; everything else receives it. It imports no task code:
the queue only enqueues here, and jobs/ binds the task bodies in processes
that consume.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine as Database
from sqlalchemy.orm import Session, sessionmaker

from headshots.channel import Channel
from headshots.config import Settings
from headshots.engines.base import Engine, get_engine
from headshots.imaging.scoring import ScorePool
from headshots.jobs.compactor import Compactor
from headshots.jobs.heartbeat import Heartbeat
from headshots.jobs.lanes import Lanes
from headshots.jobs.queue import Queue, build_queue
from headshots.orders import db, processes
from headshots.orders.changes import CHANGES_CHANNEL, MESSAGE, OrderChanges
from headshots.orders.ids import ORDER_ID
from headshots.orders.selfies import SelfieCache
from headshots.orders.variations import Claim
from headshots.payments.base import Payments
from headshots.payments.factory import payments_from_settings
from headshots.storage.vault import EncryptedBlobs, encrypted_blobs_from_settings
from headshots.tiers import Tier, parse_tiers

log = logging.getLogger(__name__)

SHREDDED_CHANNEL = "headshots:orders:shredded"


@dataclass
class Runtime:
    settings: Settings
    database: Database
    sessions: sessionmaker[Session]
    blobs: EncryptedBlobs
    tiers: tuple[Tier, ...]
    payments: Payments
    queue: Queue
    # Which process holds a lease: a random id, alive while its heartbeat
    # row is fresh (orders.processes).
    owner: str = field(default_factory=processes.new_id)
    # Analysed selfies of the orders this process works on.
    selfies: SelfieCache = field(default_factory=SelfieCache)
    # Engine calls in flight in this process, scheduled by engine shape.
    lanes: Lanes = field(default_factory=Lanes)
    # Set when this process runs the job consumer itself (embedded mode): the
    # web process then hands each new order's analysed selfie to its workers.
    local_consumer: bool = False
    # Every process is told when an order is shredded (Redis in scale-out).
    shreds: Channel | None = None
    # Order pages are told when their order changes (Redis in scale-out).
    changes: OrderChanges = field(default_factory=OrderChanges)
    # Stores the images a job received at once side by side.
    storing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="store")
    )
    # Writes the raw pixels behind shown previews: apart, so a preview never
    # queues behind another image's 4 MB write.
    writing: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="pixels")
    )
    # Makes done variations' final PNGs off the waiting path; set where a
    # consumer runs (jobs.worker), else each job stores its own.
    compactor: Compactor[Claim] | None = None
    # Identity scores in worker processes (dlib holds the GIL); set where a
    # consumer runs, else scored in this process.
    scores: ScorePool | None = None
    # Says this process is alive, where a consumer runs (jobs.worker).
    heartbeat: Heartbeat | None = None
    _engines: dict[str, Engine] = field(default_factory=dict)
    _engines_lock: threading.Lock = field(default_factory=threading.Lock)
    # Stop signals of the jobs working on each order in this process.
    _working: dict[str, set[threading.Event]] = field(default_factory=dict)
    _working_lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self, name: str) -> Engine:
        with self._engines_lock:
            if name not in self._engines:
                self._engines[name] = get_engine(self.settings, name)
            return self._engines[name]

    @contextmanager
    def working_on(self, order_id: str) -> Iterator[threading.Event]:
        """A job's stop signal, set the moment its order is shredded anywhere."""
        stop = threading.Event()
        with self._working_lock:
            self._working.setdefault(order_id, set()).add(stop)
        try:
            yield stop
        finally:
            with self._working_lock:
                events = self._working.get(order_id, set())
                events.discard(stop)
                if not events:
                    self._working.pop(order_id, None)

    def shredded(self, order_ids: Iterable[str]) -> None:
        """Call after an order's shred committed: every process lets go of it now.

        This process's own jobs on the order are stopped and waited for
        (briefly: they stop at their next step), then whatever one of them
        wrote after the blobs were deleted is deleted too. So when a DELETE
        answers in the embedded mode, no file of the order is left; jobs in
        other processes do the same on their side when told.
        """
        ids = list(order_ids)
        for order_id in ids:
            self.forget(order_id)
            if self.shreds is not None:
                self.shreds.publish(order_id)
        for order_id in ids:
            # Also when no job is left: one may have written between the
            # blobs' deletion and the shred's commit, and it saw a live order.
            self._let_go(order_id)
            try:
                self.blobs.shred(order_id)
            except Exception as error:  # the sweep deletes late writes again
                log.warning("late writes of an order not deleted: %s", type(error).__name__)

    def _let_go(self, order_id: str, timeout: float = 5.0) -> None:
        """Wait (briefly) until no job of this process works on the order."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._working_lock:
                if order_id not in self._working:
                    return
            time.sleep(0.01)

    def forget(self, order_id: str) -> None:
        """Drop this process's copy of the order's selfie and stop its jobs."""
        self.selfies.forget(order_id)
        with self._working_lock:
            for stop in self._working.get(order_id, ()):
                stop.set()

    def listen_for_shreds(self) -> threading.Event | None:
        """In scale-out, forget every order shredded by another process; None if embedded."""
        return self.shreds.listen(self.forget) if self.shreds is not None else None

    def close(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()
        if self.compactor is not None:
            self.compactor.stop()
        self.lanes.close()
        self.storing.shutdown(wait=False, cancel_futures=True)
        self.writing.shutdown(wait=False, cancel_futures=True)
        self.selfies.close()
        self.database.dispose()


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Every part, checked: a setting that cannot work stops start-up here."""
    tiers = parse_tiers(settings.tiers)
    blobs = encrypted_blobs_from_settings(settings)
    payments = payments_from_settings(settings)
    database = db.make_engine(settings)
    if migrate:
        db.migrate(database)
    queue_url = settings.queue_url
    return Runtime(
        settings=settings,
        database=database,
        sessions=db.make_sessionmaker(database),
        blobs=blobs,
        tiers=tiers,
        payments=payments,
        queue=build_queue(settings),
        selfies=SelfieCache(ttl_seconds=settings.selfie_cache_seconds),
        shreds=Channel(queue_url, SHREDDED_CHANNEL, accept=ORDER_ID) if queue_url else None,
        changes=OrderChanges(
            Channel(queue_url, CHANGES_CHANNEL, accept=MESSAGE) if queue_url else None
        ),
    )
