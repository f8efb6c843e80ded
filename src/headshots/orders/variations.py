"""A variation's lifecycle: claimed, preview stored, done or failed, and its lease.

    pending --claim--> running --preview_stored--> finishing --done--> done
                        |   ^                         |
                        |   +-------image_lost--------+
                        |                             |
                        +--failed--> failed           +--given up--> done
                        +--given up--> failed              (image kept, unchecked)
    done, failed --redo (orders.redo)--> pending with a redo_seed, then as above, except:
    a redo's running --_redo_failed--> done (its image kept) or failed (as it was)
                     (failed or given up)

A claim after a lease ran out keeps its state (running or finishing); the
claim after MAX_ATTEMPTS is given up instead: a running variation fails, a
finishing one is done with the image it has (claim, _give_up).

A redo (orders.redo) runs through the same states with its ``redo_seed``;
the image made before stays shown until the redo's preview is stored under
the same names (preview_stored). A redo that fails before that leaves the
variation as it was and gives the order its redo back (_redo_failed).

A worker claims a variation with a conditional UPDATE and a short lease in
the database before any work starts, so a second delivery of the same job
finds it taken. The worker renews the lease while it works (running and
finishing alike); a lease that runs out means the worker died, and the
sweep hands the variation to another worker; so does any consumer, sooner,
once the worker's process stops beating (orders.processes). Every result
is recorded only if the attempt that made it still owns the variation.
The functions take a Session and never commit.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, or_, select, update
from sqlalchemy.orm import Session

from headshots.orders import processes, service
from headshots.orders.effects import after_commit
from headshots.orders.models import Order, OrderStatus, Variation, VariationStatus, utcnow
from headshots.orders.processes import Process

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Claim:
    """A variation this worker holds, and what it needs to work on it."""

    variation_id: str
    order_id: str
    wrapped_key: bytes
    engine_name: str
    style_id: str
    seed: int
    attempt: int
    # The order's chosen backdrop (headshots.backdrops), or None: the style's own.
    backdrop: str | None
    # The image is stored already (an earlier worker died while finishing):
    # only the identity check and the final PNG are left.
    finishing: bool

    @property
    def image_blob(self) -> str:
        # Raw pixels first, then the final PNG under the same name (see
        # imaging.codecs.decode_image); the API always serves it as PNG.
        return f"{self.variation_id}.image"

    @property
    def preview_blob(self) -> str:
        return f"{self.variation_id}.preview.jpg"


class Recorded(enum.Enum):
    OK = "ok"
    # Another attempt owns the variation now (this worker's lease ran out).
    STALE = "stale"
    # The order was shredded meanwhile: whatever this worker stored must go.
    GONE = "gone"
    # Recorded, and it was the order's last variation: the order is ready.
    FINISHED = "finished"


def claim(
    session: Session,
    variation_ids: Iterable[str],
    *,
    owner: str,
    lease_seconds: float,
) -> list[Claim]:
    """Take every variation of the list that nobody holds; the claims taken."""
    now = utcnow()
    ids = list(variation_ids)
    order_id = session.scalar(select(Variation.order_id).where(Variation.id.in_(ids)).limit(1))
    if order_id is None:
        return []  # shredded: its variations are gone
    _lock_order(session, order_id)
    claimed = _take(session, ids, owner=owner, now=now, lease_seconds=lease_seconds)
    claims: list[Claim] = []
    for variation_id in claimed:
        variation = session.get(Variation, variation_id)
        assert variation is not None
        if variation.attempts > MAX_ATTEMPTS:
            _give_up(session, variation, now)
            continue
        claims.append(_claim_of(variation))
    finished = False
    if len(claims) < len(claimed):
        variation = session.get(Variation, claimed[0])
        assert variation is not None
        finished = service.finish_if_complete(session, variation.order)
    if claimed:
        after_commit(session).change(order_id, final=finished)
    return claims


def _take(
    session: Session, ids: list[str], *, owner: str, now: datetime, lease_seconds: float
) -> list[str]:
    """Lease each variation nobody holds, one conditional UPDATE each; the ids taken."""
    lease_until = now + timedelta(seconds=lease_seconds)
    finishing = Variation.status == VariationStatus.FINISHING
    claimed: list[str] = []
    for variation_id in ids:
        changed = session.execute(
            update(Variation)
            .where(
                Variation.id == variation_id,
                or_(
                    Variation.status == VariationStatus.PENDING,
                    Variation.status.in_([VariationStatus.RUNNING, VariationStatus.FINISHING])
                    & (Variation.lease_until <= now),
                ),
            )
            .values(
                status=case((finishing, VariationStatus.FINISHING), else_=VariationStatus.RUNNING),
                lease_until=lease_until,
                lease_owner=owner,
                started_at=case((finishing, Variation.started_at), else_=now),
                attempts=Variation.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if changed:
            claimed.append(variation_id)
    return claimed


def _claim_of(variation: Variation) -> Claim:
    order = variation.order
    # A shred deletes an order's variations with its key, so a variation
    # just claimed has an order that still holds its key.
    assert order.wrapped_key is not None
    return Claim(
        variation_id=variation.id,
        order_id=order.id,
        wrapped_key=order.wrapped_key,
        engine_name=order.engine,
        style_id=variation.style,
        # A redo's try has its own seed until its image lands (preview_stored).
        seed=variation.redo_seed if variation.redo_seed is not None else variation.seed,
        attempt=variation.attempts,
        backdrop=order.backdrop,
        finishing=variation.status == VariationStatus.FINISHING,
    )


def _ended(session: Session, variation: Variation) -> Recorded:
    """The variation has ended (done or failed): the order too, if it was its last."""
    variation.finished_at = utcnow()
    variation.lease_until = None
    if service.finish_if_complete(session, variation.order):
        after_commit(session).change(variation.order_id, final=True)
        return Recorded.FINISHED
    return Recorded.OK


def _lock_order(session: Session, order_id: str) -> None:
    """Take the order's row lock before any of its variations' (PostgreSQL).

    A shred updates the order, then deletes its variations; a job that
    updated a variation and then locked the order to finish it took the two
    the other way round, and the two deadlocked. Every transaction that
    ends in finish_if_complete takes the order first.
    """
    session.execute(select(Order.id).where(Order.id == order_id).with_for_update(key_share=True))


def _give_up(session: Session, variation: Variation, now: datetime) -> None:
    variation.finished_at = now
    variation.lease_until = None
    if variation.redo_seed is not None:
        reason = "This image could not be made again; its worker kept stopping."
        _redo_failed(session, variation, code="gave_up", reason=reason, details={})
        return
    if variation.status == VariationStatus.FINISHING:
        # The image exists; only its check kept failing. Keep the image.
        variation.status = VariationStatus.DONE
        variation.details = {**variation.details, "identity_check": "skipped"}
        return
    variation.status = VariationStatus.FAILED
    variation.failure_code = "gave_up"
    variation.failure_reason = "This image could not be made; its worker kept stopping."


def _current(
    session: Session, claim: Claim, status: VariationStatus
) -> tuple[Recorded, Variation | None]:
    variation = session.get(Variation, claim.variation_id)
    if variation is None or variation.order.is_tombstone:
        return Recorded.GONE, None
    if variation.status != status or variation.attempts != claim.attempt:
        return Recorded.STALE, None
    # The caller records a change now: the order's pages are woken at commit.
    after_commit(session).change(claim.order_id)
    return Recorded.OK, variation


def preview_stored(
    session: Session, claim: Claim, *, seed: int, seconds: float, details: dict[str, Any]
) -> Recorded:
    """The engine's image and its preview are stored: the preview can be shown."""
    recorded, variation = _current(session, claim, VariationStatus.RUNNING)
    if variation is None:
        return recorded
    if variation.redo_seed is not None:
        # A redo's image landed: it replaced the one made before (same
        # names), and what the old one was checked and cost goes with it.
        details = _costs_added(variation.details, details)
        variation.redo_seed = None
        variation.identity_distance = None
        variation.identity_flag = None
    variation.status = VariationStatus.FINISHING
    variation.seed = seed
    variation.seconds = round(seconds, 3)
    variation.details = dict(details)
    variation.image_blob = claim.image_blob
    variation.preview_blob = claim.preview_blob
    return Recorded.OK


def image_lost(session: Session, claim: Claim) -> Recorded:
    """Its preview was shown but its worker died before the image was stored.

    The variation goes back to running under the same claim: the job renders
    it again, and the new try replaces the preview.
    """
    recorded, variation = _current(session, claim, VariationStatus.FINISHING)
    if variation is None:
        return recorded
    variation.status = VariationStatus.RUNNING
    return Recorded.OK


def failed(
    session: Session,
    claim: Claim,
    *,
    code: str,
    reason: str,
    seconds: float,
    details: dict[str, Any],
) -> Recorded:
    _lock_order(session, claim.order_id)
    recorded, variation = _current(session, claim, VariationStatus.RUNNING)
    if variation is None:
        return recorded
    if variation.redo_seed is not None:
        _redo_failed(session, variation, code=code, reason=reason, details=details)
        return _ended(session, variation)
    variation.status = VariationStatus.FAILED
    variation.failure_code = code
    variation.failure_reason = reason
    variation.seconds = round(seconds, 3)
    variation.details = dict(details)
    return _ended(session, variation)


def _redo_failed(
    session: Session, variation: Variation, *, code: str, reason: str, details: dict[str, Any]
) -> None:
    """A redo that could not be made: the variation keeps what it had, the order its redo.

    The failed call's cost is still counted on the variation.
    """
    variation.redo_seed = None
    if variation.image_blob is not None:
        variation.status = VariationStatus.DONE
    else:  # it had failed before the redo, and failed again
        variation.status = VariationStatus.FAILED
        variation.failure_code = code
        variation.failure_reason = reason
    kept = {k: v for k, v in variation.details.items() if k != "rerolling"}
    variation.details = {**_costs_added(kept, details), "redo_failure": reason}
    session.execute(
        update(Order)
        .where(Order.id == variation.order_id)
        .values(redos_left=Order.redos_left + 1)
        .execution_options(synchronize_session=False)
    )


def _costs_added(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``after``, its ``cost_usd`` the sum of both: every hosted call's cost stays counted."""
    spent = [
        cost
        for cost in (before.get("cost_usd"), after.get("cost_usd"))
        if isinstance(cost, int | float)
    ]
    if not spent:
        return dict(after)
    return {**after, "cost_usd": round(sum(spent), 6)}


def rerolling(
    session: Session, claim: Claim, *, distance: float | None, flag: str | None
) -> Recorded:
    """Its face was flagged and a new try is under way; the page says so."""
    recorded, variation = _current(session, claim, VariationStatus.FINISHING)
    if variation is None:
        return recorded
    variation.identity_distance = distance
    variation.identity_flag = flag
    variation.details = {**variation.details, "rerolling": True}
    return Recorded.OK


def replaced(
    session: Session,
    claim: Claim,
    *,
    seed: int,
    details: dict[str, Any],
    paid_usd: float = 0.0,
) -> Recorded:
    """A better try replaced the image and its preview under the same names.

    ``paid_usd`` is what the re-rolls since the last record cost (this try
    among them): added to what the variation cost so far, never in its place.
    """
    recorded, variation = _current(session, claim, VariationStatus.FINISHING)
    if variation is None:
        return recorded
    variation.seed = seed
    variation.details = _paid({**variation.details, **details}, variation.details, paid_usd)
    return Recorded.OK


def done(
    session: Session,
    claim: Claim,
    *,
    distance: float | None,
    flag: str | None,
    scored: bool,
    details: dict[str, Any],
    paid_usd: float = 0.0,
) -> Recorded:
    """The image is final and its identity known (or not checkable).

    ``paid_usd``: what re-rolls not recorded yet cost (one that did not
    replace the image is paid all the same).
    """
    _lock_order(session, claim.order_id)
    recorded, variation = _current(session, claim, VariationStatus.FINISHING)
    if variation is None:
        return recorded
    merged = _paid({**variation.details, **details}, variation.details, paid_usd)
    merged.pop("rerolling", None)
    variation.details = merged
    if scored:
        variation.identity_distance = distance
        variation.identity_flag = flag
    variation.status = VariationStatus.DONE
    return _ended(session, variation)


def _paid(merged: dict[str, Any], before: dict[str, Any], usd: float) -> dict[str, Any]:
    """``merged`` with its cost the one recorded ``before`` plus ``usd``."""
    if not usd and "cost_usd" not in before:
        return merged
    cost = before.get("cost_usd")
    so_far = cost if isinstance(cost, int | float) else 0.0
    return {**merged, "cost_usd": round(so_far + usd, 6)}


def renew(session: Session, claims: Iterable[Claim], *, lease_seconds: float) -> bool:
    """Extend the leases this worker still holds; False once their order is gone."""
    lease = utcnow() + timedelta(seconds=lease_seconds)
    order_id = None
    for item in claims:
        order_id = item.order_id
        session.execute(
            update(Variation)
            .where(
                Variation.id == item.variation_id,
                Variation.attempts == item.attempt,
                Variation.status.in_([VariationStatus.RUNNING, VariationStatus.FINISHING]),
            )
            .values(lease_until=lease)
            .execution_options(synchronize_session=False)
        )
    return order_id is None or not order_gone(session, order_id)


def final_seed(session: Session, variation_id: str) -> int | None:
    """The seed of a done variation's image; None while it has no final one.

    A variation being made again (orders.redo) has none: its image may be
    replaced at any moment.
    """
    row = session.execute(
        select(Variation.seed, Variation.status, Variation.redo_seed).where(
            Variation.id == variation_id
        )
    ).first()
    if row is None or row.status != VariationStatus.DONE or row.redo_seed is not None:
        return None
    seed: int = row.seed
    return seed


def order_gone(session: Session, order_id: str) -> bool:
    """Whether the order was shredded (or never existed)."""
    status = session.scalar(select(Order.status).where(Order.id == order_id))
    return status not in (OrderStatus.QUEUED, OrderStatus.READY)


def orphaned(session: Session, now: datetime | None = None) -> list[str]:
    """Variations held by a process whose heartbeat lapsed, released now.

    Only a process that stopped beating (orders.processes) loses its leases
    here, wherever it ran; a live one keeps them, whatever its host name or
    pid. Each release is a conditional UPDATE, so of two processes releasing
    at once only one re-enqueues a variation.
    """
    now = now or utcnow()
    lapsed = select(Process.id).where(Process.seen_at < processes.lapsed_before(now))
    held = (
        Variation.status.in_([VariationStatus.RUNNING, VariationStatus.FINISHING])
        & (Variation.lease_until > now)
        & Variation.lease_owner.in_(lapsed)
    )
    candidates = session.scalars(
        select(Variation.id).join(Order).where(Order.status == OrderStatus.QUEUED, held)
    ).all()
    released = []
    for variation_id in candidates:
        changed = session.execute(
            update(Variation)
            .where(Variation.id == variation_id, held)
            .values(lease_until=now, enqueued_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if changed:
            released.append(variation_id)
    return released


def styles_of(session: Session, variation_ids: list[str]) -> list[list[str]]:
    """The ids grouped as jobs: one group per order and style, in order."""
    if not variation_ids:
        return []
    rows = session.execute(
        select(Variation.id, Variation.order_id, Variation.style)
        .where(Variation.id.in_(variation_ids))
        .order_by(Variation.order_id, Variation.style_position, Variation.index)
    ).all()
    groups: dict[tuple[str, str], list[str]] = {}
    for variation_id, order_id, style in rows:
        groups.setdefault((order_id, style), []).append(variation_id)
    return list(groups.values())
