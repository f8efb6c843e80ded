"""What a transaction sets off once it has committed, gathered in one place.

Four things must happen after an order's change is committed, never
before and never for a change that rolled back: its work is enqueued (a
worker must find the rows), its shred is announced (every process lets go
of the order), the pages watching it are woken (they read what was
committed), and a finished order's cost is counted in the metrics (once,
by the transaction that made it ready). The function that makes the change
records what it sets off on the session (:func:`after_commit`):
``create_order`` its styles' jobs, ``shred`` the shred, each recorded
variation its order's change, ``finish_if_complete`` the finished order.
The transaction boundary (:func:`headshots.orders.db.transaction`) hands
them to the runtime once the commit succeeded and the session is closed,
and drops them on a rollback or a failed commit. So a use case cannot
forget one, and none is sent for a row that was never written.

Savepoints are not used here: an effect recorded inside one that rolled
back would still run with the outer commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from headshots.imaging.selfie import PreparedSelfie

_PENDING = "headshots.after_commit"
_RUNNER = "headshots.effects"


@dataclass(frozen=True)
class FinishedOrder:
    """An order that became ready: what the metrics count of it (no id, nothing of a person)."""

    engine: str
    tier: str
    # What its provider charged, summed over its variations' every call.
    cost_usd: float


@dataclass
class AfterCommit:
    """The effects one transaction has recorded so far."""

    # One job per style of an order: the ids of its variations, in order.
    jobs: list[list[str]] = field(default_factory=list)
    shredded: list[str] = field(default_factory=list)
    # Order id -> whether the change is final (the order ready, or paid).
    changed: dict[str, bool] = field(default_factory=dict)
    # Selfies analysed while the order was made, for a consumer in this process.
    selfies: dict[str, PreparedSelfie] = field(default_factory=dict)
    # Order id -> the order that became ready in this transaction.
    finished: dict[str, FinishedOrder] = field(default_factory=dict)

    def enqueue(self, jobs: Iterable[list[str]]) -> None:
        self.jobs.extend(list(job) for job in jobs if job)

    def shred(self, order_id: str) -> None:
        if order_id not in self.shredded:
            self.shredded.append(order_id)

    def change(self, order_id: str, *, final: bool = False) -> None:
        self.changed[order_id] = self.changed.get(order_id, False) or final

    def keep_selfie(self, order_id: str, selfie: PreparedSelfie) -> None:
        self.selfies[order_id] = selfie

    def finish(self, order_id: str, order: FinishedOrder) -> None:
        self.finished[order_id] = order

    def __bool__(self) -> bool:
        return bool(self.jobs or self.shredded or self.changed or self.selfies or self.finished)


class Effects(Protocol):
    """Carries out what committed transactions set off (the Runtime, or a test's)."""

    def after_commit(self, done: AfterCommit) -> None: ...


def after_commit(session: Session) -> AfterCommit:
    """What ``session``'s transaction sets off once it has committed; add to it."""
    pending: AfterCommit = session.info.setdefault(_PENDING, AfterCommit())
    return pending


def install(factory: sessionmaker[Session], effects: Effects) -> None:
    """Have every transaction of ``factory`` hand its effects to ``effects``."""
    info = dict(factory.kw.get("info") or {})
    info[_RUNNER] = effects
    factory.configure(info=info)


def committed(session: Session) -> Callable[[], None]:
    """Take the effects of ``session``'s committed transaction: a call that runs them.

    Call it after the session is closed: the effects then hold no
    connection, and whatever they wake reads the committed rows. A session
    of a factory without effects installed (a migration's, a bare test's)
    drops them.
    """
    pending: AfterCommit | None = session.info.pop(_PENDING, None)
    effects: Effects | None = session.info.get(_RUNNER)
    if not pending or effects is None:
        return _nothing
    return lambda: effects.after_commit(pending)


def _nothing() -> None:
    return None
