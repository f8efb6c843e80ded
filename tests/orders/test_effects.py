"""What a transaction sets off runs after its commit, and never for one that did not commit."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from headshots.imaging.codecs import encode_png
from headshots.orders import db, effects, service
from headshots.orders.db import transaction
from headshots.orders.effects import AfterCommit, after_commit
from headshots.orders.models import Order, OrderStatus, Tick, utcnow
from headshots.runtime import Runtime


class Spoiled(Exception):
    """Raised inside a transaction to make it roll back."""


@dataclass
class Recorder:
    """Records what it is handed, and what a fresh session could read at that moment."""

    sessions: sessionmaker[Session]
    ran: list[AfterCommit] = field(default_factory=list)
    orders_seen: list[list[str]] = field(default_factory=list)

    def after_commit(self, done: AfterCommit) -> None:
        with self.sessions() as session:
            self.orders_seen.append(list(session.scalars(select(Order.id))))
        self.ran.append(done)


@pytest.fixture
def recorder(runtime: Runtime) -> Recorder:
    sessions = db.make_sessionmaker(runtime.database)
    recorded = Recorder(sessions)
    effects.install(sessions, recorded)
    return recorded


def new_order(runtime: Runtime, session: Session) -> service.NewOrder:
    return service.create_order(
        session,
        runtime.blobs,
        runtime.settings,
        runtime.tiers,
        selfie_png=encode_png(Image.new("RGB", (64, 80), (120, 90, 60))),
        tier_id="professional",
        style_ids=["corporate", "friendly"],
        engine="instant",
    )


def order_then_rollback(runtime: Runtime, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        new_order(runtime, session)
        after_commit(session).change("o" * 22, final=True)
        raise Spoiled()


def order_then_failed_commit(runtime: Runtime, sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        new_order(runtime, session)
        # A second row for a tick the migrations created: refused at commit.
        session.add(Tick(name="sweep", last_run=utcnow()))


def test_an_orders_jobs_go_out_after_its_commit_one_per_style(
    runtime: Runtime, recorder: Recorder
) -> None:
    with transaction(recorder.sessions) as session:
        created = new_order(runtime, session)
        order_id = created.order.id
        variations = {v.style: v.id for v in created.order.variations if v.index == 1}
        assert recorder.ran == []  # nothing before the commit
    assert len(recorder.ran) == 1
    # The row was committed and readable elsewhere when the effects ran.
    assert recorder.orders_seen == [[order_id]]
    jobs = recorder.ran[0].jobs
    assert [job[0] for job in jobs] == [variations["corporate"], variations["friendly"]]
    assert [len(job) for job in jobs] == [runtime.settings.variations] * 2


def test_nothing_is_set_off_by_a_transaction_that_rolls_back(
    runtime: Runtime, recorder: Recorder
) -> None:
    with pytest.raises(Spoiled):
        order_then_rollback(runtime, recorder.sessions)
    assert recorder.ran == []
    with recorder.sessions() as session:
        assert session.scalars(select(Order)).all() == []


def test_nothing_is_set_off_when_the_commit_itself_fails(
    runtime: Runtime, recorder: Recorder
) -> None:
    with pytest.raises(IntegrityError):
        order_then_failed_commit(runtime, recorder.sessions)
    assert recorder.ran == []


def test_a_shred_is_announced_once_committed(runtime: Runtime, recorder: Recorder) -> None:
    with transaction(recorder.sessions) as session:
        order_id = new_order(runtime, session).order.id
    with transaction(recorder.sessions) as session:
        order = session.get(Order, order_id)
        assert order is not None
        assert service.shred(session, runtime.blobs, order, OrderStatus.DELETED)
        # Shredding the same order twice in one transaction announces it once.
        after_commit(session).shred(order_id)
    assert recorder.ran[-1].shredded == [order_id]
    assert recorder.ran[-1].jobs == []


def test_the_runtime_enqueues_only_what_committed(runtime: Runtime) -> None:
    huey = runtime.queue.huey  # no consumer runs: what is enqueued stays pending
    with pytest.raises(Spoiled):
        order_then_rollback(runtime, runtime.sessions)
    assert huey.pending_count() == 0
    with transaction(runtime.sessions) as session:
        new_order(runtime, session)
    assert huey.pending_count() == 2  # one job per style


def test_a_change_made_final_once_stays_final() -> None:
    done = AfterCommit()
    done.change("o" * 22, final=True)
    done.change("o" * 22)
    assert done.changed == {"o" * 22: True}
