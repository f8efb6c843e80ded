"""The task bodies. Each is idempotent: it can run twice, or after a crash.

A variation is claimed with a lease in the database before any work starts,
so a duplicate delivery finds it taken and returns; if the worker dies, the
lease runs out and the sweep enqueues the variation again.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import case, or_, update
from sqlalchemy.orm import Session

from headshots.credentials import images as credentials
from headshots.engines.base import Failed, Outcome, Rendered
from headshots.errors import HeadshotsError
from headshots.imaging.intake import Photo
from headshots.imaging.selfie import PreparedSelfie, prepare_photo
from headshots.imaging.watermark import watermarked_preview
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import Variation, VariationStatus, utcnow
from headshots.render import IdentityGate, check_identity, render_style, rerolls_help
from headshots.styles import get_style

if TYPE_CHECKING:
    from headshots.runtime import Runtime

log = logging.getLogger(__name__)

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
    # The image is stored already (an earlier worker died while finishing):
    # only the identity check and the final PNG are left.
    finishing: bool
    scored: bool


def generate_variation(runtime: Runtime, variation_id: str) -> None:
    """Make one variation in two steps, so its preview shows as early as possible.

    First the engine's image is stored as raw pixels with its watermarked
    preview, and the variation reads "finishing": the preview can be shown.
    Then the identity check (for engines where a re-roll would not help; the
    others were checked, and re-rolled, with the engine call) and the final
    PNG, and the variation is "done". An engine slot is held for the engine
    call only.
    """
    # The slot is taken before the claim, so a variation reads "running" only
    # once an engine is free for it (then until its preview is stored), not
    # while it waits for one.
    with _Slot(runtime.engine_slots) as slot:
        claim = _claim(runtime, variation_id)
        if claim is None:
            return
        with _lease_kept(runtime, variation_id, claim.attempt):
            image: Image.Image | None = None
            scored = claim.scored
            if not claim.finishing:
                started = time.perf_counter()
                outcome = _render(runtime, claim)
                slot.release()
                if not _store_made(runtime, claim, outcome, time.perf_counter() - started):
                    return
                assert isinstance(outcome, Rendered)
                image, scored = outcome.image, outcome.identity is not None
            slot.release()
            _finish(runtime, claim, image, scored=scored)


class _Slot:
    """One of the process's engine slots, which can be given back early."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self._held = False

    def __enter__(self) -> _Slot:
        self._slots.acquire()
        self._held = True
        return self

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots.release()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _claim(runtime: Runtime, variation_id: str) -> Claim | None:
    """Take the variation if nobody else holds it; None if there is nothing to do."""
    settings = runtime.settings
    now = utcnow()
    finishing = Variation.status == VariationStatus.FINISHING
    with transaction(runtime.sessions) as session:
        claimed = session.execute(
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
                lease_until=now + timedelta(seconds=settings.stuck_after_seconds),
                started_at=case((finishing, Variation.started_at), else_=now),
                attempts=Variation.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return None  # done, failed, held elsewhere, or shredded
        variation = session.get(Variation, variation_id)
        assert variation is not None
        order = variation.order
        if order.is_tombstone or order.wrapped_key is None:
            return None
        if variation.attempts > MAX_ATTEMPTS:
            _give_up(variation, now)
            service.finish_if_complete(session, order)
            return None
        return Claim(
            variation_id=variation_id,
            order_id=order.id,
            wrapped_key=order.wrapped_key,
            engine_name=order.engine,
            style_id=variation.style,
            seed=variation.seed,
            attempt=variation.attempts,
            finishing=variation.status == VariationStatus.FINISHING,
            scored=variation.identity_flag is not None or variation.identity_distance is not None,
        )


def _give_up(variation: Variation, now: datetime) -> None:
    variation.finished_at = now
    variation.lease_until = None
    if variation.status == VariationStatus.FINISHING:
        # The image exists; only its check kept failing. Keep the image.
        variation.status = VariationStatus.DONE
        variation.details = {**variation.details, "identity_check": "skipped"}
        return
    variation.status = VariationStatus.FAILED
    variation.failure_code = "gave_up"
    variation.failure_reason = "This image could not be made; its worker kept stopping."


def _store_made(runtime: Runtime, claim: Claim, outcome: Outcome, seconds: float) -> bool:
    """Store the engine's image and its preview, or record the failure.

    True when the variation is now "finishing" and this worker goes on.
    """
    if isinstance(outcome, Rendered):
        preview = watermarked_preview(outcome.image, max_side=runtime.settings.preview_max)
        # Hook (issue 12): Content Credentials on the preview.
        preview = credentials.sign_preview(
            runtime, claim.engine_name, claim.style_id, outcome.details, preview
        )
        put = partial(runtime.blobs.put, claim.order_id, claim.wrapped_key)
        put(_preview_blob(claim), preview)
        put(_image_blob(claim), service.encode_pixels(outcome.image))
    with transaction(runtime.sessions) as session:
        current = _still_ours(session, runtime, claim, VariationStatus.RUNNING)
        if current is None:
            return False
        current.seconds = round(seconds, 3)
        current.seed = outcome.seed
        current.details = dict(outcome.details)
        if isinstance(outcome, Failed):
            current.status = VariationStatus.FAILED
            current.failure_code = outcome.code
            current.failure_reason = outcome.reason
            current.finished_at = utcnow()
            current.lease_until = None
            service.finish_if_complete(session, current.order)
            return False
        current.status = VariationStatus.FINISHING
        current.image_blob = _image_blob(claim)
        current.preview_blob = _preview_blob(claim)
        _record_identity(current, outcome)
    return True


def _finish(runtime: Runtime, claim: Claim, image: Image.Image | None, *, scored: bool) -> None:
    """Check the identity if that is still to do, store the final PNG, mark done."""
    if image is None:
        stored = runtime.blobs.get(claim.order_id, claim.wrapped_key, _image_blob(claim))
        image = service.decode_image(stored)
    checked: Outcome | None = None
    if not scored:
        checked = _check(runtime, claim, image)
    # Hook (issue 12): Content Credentials on the final PNG.
    png = credentials.sign_final_png(runtime, claim.variation_id, service.encode_png(image))
    # Replaces the raw pixels under the same name.
    runtime.blobs.put(claim.order_id, claim.wrapped_key, _image_blob(claim), png)
    with transaction(runtime.sessions) as session:
        current = _still_ours(session, runtime, claim, VariationStatus.FINISHING)
        if current is None:
            return
        if checked is not None:
            current.details = {**current.details, **checked.details}
            _record_identity(current, checked)
        current.status = VariationStatus.DONE
        current.finished_at = utcnow()
        current.lease_until = None
        service.finish_if_complete(session, current.order)


def _check(runtime: Runtime, claim: Claim, image: Image.Image) -> Outcome | None:
    try:
        selfie = _selfie(runtime, claim.order_id, claim.wrapped_key)
        gate = IdentityGate.from_settings(runtime.settings)
        return check_identity(selfie, Rendered(seed=claim.seed, image=image, seconds=0.0), gate)
    except Exception as error:
        # The image is good whatever the check says; a check that cannot run
        # leaves the variation unscored rather than lost.
        log.warning("identity check of order %s skipped: %s", claim.order_id, type(error).__name__)
        return None


def _still_ours(
    session: Session, runtime: Runtime, claim: Claim, status: VariationStatus
) -> Variation | None:
    """The variation if this worker's claim on it still stands.

    An order deleted meanwhile loses what was just written (its key is gone,
    so it is unreadable anyway); a variation a later attempt took over is
    that attempt's to record.
    """
    current = session.get(Variation, claim.variation_id)
    if current is None or current.order.is_tombstone:
        runtime.blobs.shred(claim.order_id)
        return None
    if current.status != status or current.attempts != claim.attempt:
        return None
    return current


def _record_identity(variation: Variation, outcome: Outcome) -> None:
    identity = getattr(outcome, "identity", None)
    if identity is not None:
        variation.identity_distance = identity.distance
        variation.identity_flag = identity.flag


def _image_blob(claim: Claim) -> str:
    # Raw pixels first, then the final PNG under the same name (see
    # service.decode_image); the API always serves it as PNG.
    return f"{claim.variation_id}.image"


def _preview_blob(claim: Claim) -> str:
    return f"{claim.variation_id}.preview.jpg"


@contextmanager
def _lease_kept(runtime: Runtime, variation_id: str, attempt: int) -> Iterator[None]:
    """Renew the variation's lease while this worker is alive and working.

    A slow engine call is not a dead worker: only a lease that stops being
    renewed (the process died) runs out and lets the sweep re-enqueue it.
    """
    period = runtime.settings.stuck_after_seconds / 3
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(period):
            lease = utcnow() + timedelta(seconds=runtime.settings.stuck_after_seconds)
            try:
                with transaction(runtime.sessions) as session:
                    session.execute(
                        update(Variation)
                        .where(
                            Variation.id == variation_id,
                            Variation.attempts == attempt,
                            Variation.status == VariationStatus.RUNNING,
                        )
                        .values(lease_until=lease)
                        .execution_options(synchronize_session=False)
                    )
            except Exception as error:  # a missed renewal is retried next period
                log.warning("lease renewal failed: %s", type(error).__name__)

    keeper = threading.Thread(target=renew, name=f"lease-{variation_id[:6]}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        stop.set()
        keeper.join()


def _render(runtime: Runtime, claim: Claim) -> Outcome:
    seed = claim.seed
    try:
        selfie = _selfie(runtime, claim.order_id, claim.wrapped_key)
        engine = runtime.engine(claim.engine_name)
        # The gate runs with the engine call only where a re-roll can help;
        # otherwise the score only informs, and _finish adds it later.
        gate = IdentityGate.from_settings(runtime.settings) if rerolls_help(engine) else None
        return render_style(
            engine, selfie, get_style(claim.style_id), [seed], runtime.settings.output_size, gate
        )[0]
    except HeadshotsError as error:
        return Failed(seed=seed, reason=error.detail, code=error.code)
    except Exception as error:
        # The exception text may quote inputs: log its type and where it
        # was raised, which is what an operator needs, and nothing else.
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        log.error(
            "variation of order %s failed: %s at %s", claim.order_id, type(error).__name__, where
        )
        return Failed(
            seed=seed,
            reason="Something went wrong while making this image.",
            code="internal_error",
        )


# A few prepared selfies per process, so the variations of one order share
# the face analysis and segmentation. Entries are dropped after a short
# while: pixels of a person stay in memory no longer than the work needs.
_SELFIE_TTL = 600.0
_SELFIE_SLOTS = 8
_selfies: OrderedDict[str, tuple[float, PreparedSelfie]] = OrderedDict()
_selfies_lock = threading.Lock()
_loading: dict[str, threading.Lock] = {}


def _selfie(runtime: Runtime, order_id: str, wrapped_key: bytes) -> PreparedSelfie:
    # One loader per order at a time: the variations of an order start
    # together, and only the first should decrypt and analyse the selfie.
    with _selfies_lock:
        now = time.monotonic()
        for key in [k for k, (at, _) in _selfies.items() if now - at > _SELFIE_TTL]:
            del _selfies[key]
        cached = _selfies.get(order_id)
        if cached is not None:
            return cached[1]
        loading = _loading.setdefault(order_id, threading.Lock())
    with loading:
        with _selfies_lock:
            cached = _selfies.get(order_id)
            if cached is not None:
                return cached[1]
        image = service.decode_image(runtime.blobs.get(order_id, wrapped_key, service.SELFIE_BLOB))
        prepared = prepare_photo(Photo(image=image, source_format="PNG", source_size=image.size))
        remember_selfie(order_id, prepared)
        with _selfies_lock:
            _loading.pop(order_id, None)
    return prepared


def remember_selfie(order_id: str, selfie: PreparedSelfie) -> None:
    """Keep an analysed selfie for this process's workers, the oldest making room.

    The web process calls it too in embedded mode, where it is also the
    worker: the order's first variation then skips decrypting, decoding and
    analysing the selfie again.
    """
    with _selfies_lock:
        _selfies[order_id] = (time.monotonic(), selfie)
        while len(_selfies) > _SELFIE_SLOTS:
            _selfies.popitem(last=False)


def forget_selfie(order_id: str) -> None:
    with _selfies_lock:
        _selfies.pop(order_id, None)


def sweep(runtime: Runtime) -> None:
    """Expire old orders and re-enqueue lost work; once per period overall."""
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        if not service.claim_tick(session, "sweep", settings.sweep_seconds * 0.9):
            return
    run_sweep(runtime)


def run_sweep(runtime: Runtime) -> tuple[int, int]:
    """One sweep now: (orders expired, variations re-enqueued)."""
    from headshots.orders.drafts import sweep_drafts

    with transaction(runtime.sessions) as session:
        expired = service.sweep_expired(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        sweep_drafts(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        stuck = service.stuck_variations(session, runtime.settings)
        service.finish_stalled(session)
    runtime.queue.enqueue_variations(stuck)
    if expired or stuck:
        log.info("sweep: %d orders expired, %d variations re-enqueued", expired, len(stuck))
    return expired, len(stuck)
