"""The task bodies. Each is idempotent: it can run twice, or after a crash.

A variation is claimed with a lease in the database before any work starts,
so a duplicate delivery finds it taken and returns; if the worker dies, the
lease runs out and the sweep enqueues the variation again.
"""

from __future__ import annotations

import io
import logging
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from PIL import Image
from sqlalchemy import or_, update

from headshots.engines.base import Failed, Outcome, Rendered
from headshots.errors import HeadshotsError
from headshots.imaging.intake import Photo
from headshots.imaging.selfie import PreparedSelfie, prepare_photo
from headshots.imaging.watermark import watermarked_preview
from headshots.orders import service
from headshots.orders.db import transaction
from headshots.orders.models import Variation, VariationStatus, utcnow
from headshots.render import IdentityGate, render_style
from headshots.styles import get_style

if TYPE_CHECKING:
    from headshots.runtime import Runtime

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


def generate_variation(runtime: Runtime, variation_id: str) -> None:
    settings = runtime.settings
    now = utcnow()
    with transaction(runtime.sessions) as session:
        claimed = session.execute(
            update(Variation)
            .where(
                Variation.id == variation_id,
                or_(
                    Variation.status == VariationStatus.PENDING,
                    (Variation.status == VariationStatus.RUNNING) & (Variation.lease_until <= now),
                ),
            )
            .values(
                status=VariationStatus.RUNNING,
                lease_until=now + timedelta(seconds=settings.stuck_after_seconds),
                started_at=now,
                attempts=Variation.attempts + 1,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not claimed:
            return  # done, failed, running elsewhere, or shredded
        variation = session.get(Variation, variation_id)
        assert variation is not None
        order = variation.order
        if order.is_tombstone or order.wrapped_key is None:
            return
        if variation.attempts > MAX_ATTEMPTS:
            variation.status = VariationStatus.FAILED
            variation.failure_code = "gave_up"
            variation.failure_reason = "This image could not be made; its worker kept stopping."
            variation.finished_at = now
            service.finish_if_complete(session, order)
            return
        order_id, wrapped_key, engine_name = order.id, order.wrapped_key, order.engine
        style_id, seed, attempt = variation.style, variation.seed, variation.attempts

    started = time.perf_counter()
    with _lease_kept(runtime, variation_id, attempt):
        outcome = _render(runtime, order_id, wrapped_key, engine_name, style_id, seed)
        image_blob = preview_blob = None
        if isinstance(outcome, Rendered):
            image_blob, preview_blob = f"{variation_id}.png", f"{variation_id}.preview.jpg"
            png = service.encode_png(outcome.image)
            preview = watermarked_preview(outcome.image, max_side=settings.preview_max)
            runtime.blobs.put(order_id, wrapped_key, image_blob, png)
            runtime.blobs.put(order_id, wrapped_key, preview_blob, preview)

    shredded = False
    with transaction(runtime.sessions) as session:
        current = session.get(Variation, variation_id)
        if current is None or current.order.is_tombstone:
            shredded = True
        elif current.status == VariationStatus.RUNNING and current.attempts == attempt:
            _record(current, outcome, image_blob, preview_blob, time.perf_counter() - started)
            service.finish_if_complete(session, current.order)
        # Otherwise a later attempt owns the variation now; it records.
    if shredded:
        # The order was deleted while we worked: what we just wrote is
        # unreadable (its key is gone), and it goes too.
        runtime.blobs.shred(order_id)


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


def _render(
    runtime: Runtime, order_id: str, wrapped_key: bytes, engine_name: str, style_id: str, seed: int
) -> Outcome:
    try:
        selfie = _selfie(runtime, order_id, wrapped_key)
        engine = runtime.engine(engine_name)
        gate = IdentityGate.from_settings(runtime.settings)
        return render_style(
            engine, selfie, get_style(style_id), [seed], runtime.settings.output_size, gate
        )[0]
    except HeadshotsError as error:
        return Failed(seed=seed, reason=error.detail, code=error.code)
    except Exception as error:
        # The exception text may quote inputs: log its type and where it
        # was raised, which is what an operator needs, and nothing else.
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        log.error("variation of order %s failed: %s at %s", order_id, type(error).__name__, where)
        return Failed(
            seed=seed,
            reason="Something went wrong while making this image.",
            code="internal_error",
        )


def _record(
    variation: Variation,
    outcome: Outcome,
    image_blob: str | None,
    preview_blob: str | None,
    seconds: float,
) -> None:
    variation.finished_at = utcnow()
    variation.lease_until = None
    variation.seconds = round(seconds, 3)
    variation.seed = outcome.seed
    variation.details = dict(outcome.details)
    identity = getattr(outcome, "identity", None)
    if identity is not None:
        variation.identity_distance = identity.distance
        variation.identity_flag = identity.flag
    if isinstance(outcome, Rendered):
        variation.status = VariationStatus.DONE
        variation.image_blob = image_blob
        variation.preview_blob = preview_blob
    else:
        variation.status = VariationStatus.FAILED
        variation.failure_code = outcome.code
        variation.failure_reason = outcome.reason


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
        data = runtime.blobs.get(order_id, wrapped_key, service.SELFIE_BLOB)
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            image.load()
            photo = Photo(image=image.convert("RGB"), source_format="PNG", source_size=image.size)
        prepared = prepare_photo(photo)
        with _selfies_lock:
            _selfies[order_id] = (time.monotonic(), prepared)
            _loading.pop(order_id, None)
            while len(_selfies) > _SELFIE_SLOTS:
                _selfies.popitem(last=False)
    return prepared


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
    from headshots.web.drafts import sweep_drafts

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
