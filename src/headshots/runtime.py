"""The running service's parts, picked from settings by one function.

The web app, the in-process consumer and every `headshots worker` build one
Runtime at start-up; everything else receives it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine as Database
from sqlalchemy.orm import Session, sessionmaker

from headshots.config import Settings
from headshots.engines.base import Engine, get_engine
from headshots.jobs.queue import Queue, build_queue
from headshots.orders import db
from headshots.payments.base import Payments
from headshots.payments.factory import payments_from_settings
from headshots.storage.vault import EncryptedBlobs, encrypted_blobs_from_settings
from headshots.tiers import Tier, parse_tiers

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database: Database
    sessions: sessionmaker[Session]
    blobs: EncryptedBlobs
    tiers: tuple[Tier, ...]
    payments: Payments
    queue: Queue
    # Engine calls in flight in this process, at most `concurrency`.
    engine_slots: threading.BoundedSemaphore
    # Set when this process runs the job consumer itself (embedded mode): the
    # web process then hands each new order's analysed selfie to its workers.
    local_consumer: bool = False
    _engines: dict[str, Engine] = field(default_factory=dict)
    _engines_lock: threading.Lock = field(default_factory=threading.Lock)

    def engine(self, name: str) -> Engine:
        with self._engines_lock:
            if name not in self._engines:
                self._engines[name] = get_engine(self.settings, name)
            return self._engines[name]

    def close(self) -> None:
        self.database.dispose()


def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Every part, checked: a setting that cannot work stops start-up here."""
    from headshots.jobs import tasks  # tasks need the runtime; import late

    tiers = parse_tiers(settings.tiers)
    blobs = encrypted_blobs_from_settings(settings)
    payments = payments_from_settings(settings)
    database = db.make_engine(settings)
    if migrate:
        db.migrate(database)
    holder: list[Runtime] = []
    queue = build_queue(
        settings,
        generate=lambda variation_id: tasks.generate_variation(holder[0], variation_id),
        sweep=lambda: tasks.sweep(holder[0]),
    )
    runtime = Runtime(
        settings=settings,
        database=database,
        sessions=db.make_sessionmaker(database),
        blobs=blobs,
        tiers=tiers,
        payments=payments,
        queue=queue,
        engine_slots=threading.BoundedSemaphore(settings.concurrency),
    )
    holder.append(runtime)
    return runtime
