"""The running service's parts, picked from settings by one function.

The web app, the in-process consumer and every `headshots worker` build one
Runtime at start-up; everything else receives it. It also carries out what
each committed transaction set off (orders.effects). It imports no task code:
the queue only enqueues here, and jobs/ binds the task bodies in processes
that consume.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Engine as Database
from sqlalchemy.orm import Session, sessionmaker

from headshots import metrics
from headshots.channel import Channel
from headshots.config import Settings
from headshots.engines.base import Engine, get_engine
from headshots.imaging.scoring import ScorePool
from headshots.jobs.compactor import Compactor
from headshots.jobs.heartbeat import Heartbeat
from headshots.jobs.lanes import Lanes
from headshots.jobs.queue import Queue, build_queue
from headshots.orders import db, effects, processes
from headshots.orders.changes import (
    CHANGES_CHANNEL,
    MESSAGE,
    SHREDDED_CHANNEL,
    OrderChanges,
    OrderShreds,
)
from headshots.orders.effects import AfterCommit
from headshots.orders.ids import ORDER_ID
from headshots.orders.selfies import SelfieCache
from headshots.orders.variations import Claim
from headshots.payments.base import Payments
from headshots.payments.factory import payments_from_settings
from headshots.storage.vault import EncryptedBlobs, encrypted_blobs_from_settings
from headshots.tiers import Tier, parse_tiers


@dataclass
class Runtime:
    settings: Settings
    database: Database
    sessions: sessionmaker[Session]
    blobs: EncryptedBlobs
    tiers: tuple[Tier, ...]
    payments: Payments
    queue: Queue
    # Analysed selfies of the orders this process works on.
    selfies: SelfieCache
    # Stops this process's jobs on an order the moment it is shredded, and
    # tells every other process (Redis in scale-out).
    shreds: OrderShreds
    # Which process holds a lease: a random id, alive while its heartbeat
    # row is fresh (orders.processes).
    owner: str = field(default_factory=processes.new_id)
    # Engine calls in flight in this process, scheduled by engine shape.
    lanes: Lanes = field(default_factory=Lanes)
    # Set when this process runs the job consumer itself (embedded mode): the
    # web process then hands each new order's analysed selfie to its workers.
    local_consumer: bool = False
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

    def __post_init__(self) -> None:
        effects.install(self.sessions, self)

    def after_commit(self, done: AfterCommit) -> None:
        """Carry out what a committed transaction set off (orders.effects)."""
        if self.local_consumer:
            # Before its jobs are enqueued: a worker here need not analyse it again.
            for order_id, selfie in done.selfies.items():
                self.selfies.put(order_id, selfie)
        if done.shredded:
            self.shreds.shredded(done.shredded)
        for order_id, final in done.changed.items():
            self.changes.announce(order_id, final=final)
        for finished in done.finished.values():
            metrics.order_finished(finished.engine, finished.tier, finished.cost_usd)
        if done.jobs:
            self.queue.enqueue_styles(done.jobs)

    def engine(self, name: str) -> Engine:
        with self._engines_lock:
            if name not in self._engines:
                self._engines[name] = get_engine(self.settings, name)
            return self._engines[name]

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
    selfies = SelfieCache(ttl_seconds=settings.selfie_cache_seconds)
    shred_channel = Channel(queue_url, SHREDDED_CHANNEL, accept=ORDER_ID) if queue_url else None
    return Runtime(
        settings=settings,
        database=database,
        sessions=db.make_sessionmaker(database),
        blobs=blobs,
        tiers=tiers,
        payments=payments,
        queue=build_queue(settings),
        selfies=selfies,
        shreds=OrderShreds(blobs, selfies, shred_channel),
        changes=OrderChanges(
            Channel(queue_url, CHANGES_CHANNEL, accept=MESSAGE) if queue_url else None
        ),
    )
