"""The task bodies. They orchestrate; every state change is orders/'s.

A job is one style of one order: the ids of its variations. It claims them
(orders.variations), hands their seeds to the engine as the engine's shape
asks (jobs.lanes), and stores each image with its watermarked preview the
moment its call ends, so a preview never waits for anything but its own
image. The identity check comes after; a drifted face is re-rolled in the
background and the better try replaces the preview; the final PNG replaces
the raw pixels once the variation is done. A job
can run twice or after a crash: only claims the job holds are worked on, and
every result is recorded only while the claim still stands.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TypeVar

from PIL import Image
from sqlalchemy.orm.exc import StaleDataError

from headshots import metrics
from headshots.credentials import images as credentials
from headshots.engines.base import Engine, Failed, Outcome, Rendered
from headshots.errors import HeadshotsError
from headshots.imaging.identity import IdentityScore, score
from headshots.imaging.intake import Photo
from headshots.imaging.selfie import PreparedSelfie, prepare_photo
from headshots.imaging.watermark import watermarked_preview
from headshots.jobs.compactor import Compactor
from headshots.jobs.lanes import Call
from headshots.orders import processes, service, unowned, variations
from headshots.orders.db import transaction
from headshots.orders.drafts import sweep_drafts
from headshots.orders.teams import service as teams
from headshots.orders.variations import Claim, Recorded
from headshots.render import (
    IdentityGate,
    better,
    flagged,
    identity_try,
    reference_face,
    reroll_seed,
    rerolls_help,
)
from headshots.runtime import Runtime
from headshots.storage.base import BlobNotFound, OrderDeleted, StorageUnavailable
from headshots.styles import Style, get_style

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def render_style(runtime: Runtime, variation_ids: list[str]) -> None:
    """Make the claimable variations of one style of one order."""
    with transaction(runtime.sessions) as session:
        claims = variations.claim(
            session,
            variation_ids,
            owner=runtime.owner,
            lease_seconds=runtime.settings.lease_seconds,
        )
    if not claims:
        return
    order_id = claims[0].order_id
    runtime.changes.announce(order_id)
    with runtime.working_on(order_id) as stop, _leases_kept(runtime, claims, stop):
        _StyleJob(runtime, claims, stop).run()


@dataclass
class _Made:
    """An image that is stored with its preview and waits for its check and PNG."""

    claim: Claim
    image: Image.Image | None  # None: read it back from the store
    scored: Rendered | None = None
    # A try whose face is being checked: the first image, or a re-roll.
    candidate: Rendered | None = None
    checked: bool = False
    round: int = 0
    tries: list[dict[str, Any]] = field(default_factory=list)


class _Stop(Exception):
    """The order was shredded while this job worked on it."""


class _StyleJob:
    def __init__(self, runtime: Runtime, claims: list[Claim], stop: threading.Event) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.claims = claims
        self.order_id = claims[0].order_id
        self.wrapped_key = claims[0].wrapped_key
        self.stop = stop
        self.gate = IdentityGate.from_settings(runtime.settings)
        # Engine calls in flight: their future, and what to do with the result.
        self.calls: dict[Future[Call], tuple[list[Claim], _Made | None]] = {}
        # Raw pixels being written behind their shown previews.
        self.writing: dict[Future[None], _Made] = {}
        self.finishing: deque[_Made] = deque()
        # Face checks in flight (in the scoring processes), several at once.
        self.checks: dict[Future[IdentityScore | None], _Made] = {}
        # Done variations whose PNG this job makes itself, at its end, where
        # the process has no compactor.
        self.compacting: list[Claim] = []
        self.used_seeds = {claim.seed for claim in claims}

    def run(self) -> None:
        try:
            try:
                self._run()
            finally:
                # A write still under way after the job stops (and its order's
                # files are deleted) would stay.
                wait(self.writing)
        except CancelledError:
            # The process is shutting down and its engine lanes with it: the
            # leases run out and another process takes the work over.
            return
        except StorageUnavailable:
            # Counted, not a traceback: this try ends, its leases run out and
            # the sweep hands its variations out again (MAX_ATTEMPTS claims).
            metrics.store_unavailable("image")
            log.warning("a job stopped: the store is unavailable; its images are tried again")
        except _Stop:
            self._stopped()
        except StaleDataError:
            # A row changed between this job's read and its write: its order
            # was deleted, or (rarely) its lease was taken over meanwhile.
            with transaction(self.runtime.sessions) as session:
                gone = variations.order_gone(session, self.order_id)
            if gone:
                self._stopped()

    def _stopped(self) -> None:
        for call in self.calls:
            call.cancel()
        # Anything stored after the shred must go too.
        self.runtime.blobs.shred(self.order_id)

    def _run(self) -> None:
        fresh = [claim for claim in self.claims if not claim.finishing]
        try:
            self.selfie = self.runtime.selfies.get(self.order_id, self._load_selfie)
            self.engine: Engine = self.runtime.engine(self.claims[0].engine_name)
            # Its calls wait on a provider, not on this machine's CPU.
            self.remote = self.engine.shape().asynchronous
            self.style: Style = get_style(self.claims[0].style_id)
        except StorageUnavailable:
            raise  # not this order's fault: its work runs again once the store is back
        except Exception as error:
            outcome = _failure(error, self.order_id)
            for claim in fresh:
                self._record(claim, outcome, 0.0)
            return
        self._start(fresh, None)
        if self.engine.generative:
            # The first check needs the selfie's face: found while the engine
            # works, not after its images arrived (about 60 ms of CPU each
            # job's first check waited for, the busiest moment of the order).
            reference_face(self.selfie)
        self.finishing.extend(_Made(claim, None) for claim in self.claims if claim.finishing)
        compactor = self.runtime.compactor
        with compactor.busy() if compactor else nullcontext():
            while self.calls or self.writing or self.finishing or self.checks:
                if self.stop.is_set():
                    raise _Stop()
                ended = [call for call in self.calls if call.done()]
                written = [write for write in self.writing if write.done()]
                checked = [check for check in self.checks if check.done()]
                if ended:
                    # Previews first: an image that has arrived is shown
                    # before any other image is checked.
                    self._arrived(ended)
                elif written:
                    for write in written:
                        write.result()
                        self.finishing.append(self.writing.pop(write))
                elif checked:
                    for check in checked:
                        self._checked(self.checks.pop(check), check)
                elif self.finishing:
                    self._finish(self.finishing.popleft())
                else:
                    waiting: list[Future[Any]] = [*self.calls, *self.writing, *self.checks]
                    with self._idle(compactor):
                        wait(waiting, timeout=1.0, return_when=FIRST_COMPLETED)
        # Without a compactor, the final PNGs once nothing is left to show or check.
        for claim in self.compacting:
            try:
                compact(self.runtime, claim)
            except StorageUnavailable:
                # Counted; with no compactor to try again later, the raw
                # pixels stay, and a download makes the PNG on the spot.
                log.warning("a final PNG was not stored: the store is unavailable")

    def _idle(self, compactor: Compactor[Claim] | None) -> AbstractContextManager[None]:
        """While nothing but a remote engine's calls is left, PNGs may be made."""
        if compactor is None or not self.remote or self.writing or self.checks:
            return nullcontext()
        return compactor.idle()

    def _load_selfie(self) -> PreparedSelfie:
        stored = self.runtime.blobs.get(self.order_id, self.wrapped_key, service.SELFIE_BLOB)
        image = service.decode_image(stored)
        return prepare_photo(Photo(image=image, source_format="PNG", source_size=image.size))

    def _start(self, claims: list[Claim], reroll: _Made | None) -> None:
        if not claims:
            return
        if reroll is None:
            by_seed = {claim.seed: claim for claim in claims}
        else:
            by_seed = {self._reroll_seed(reroll): reroll.claim}
        for seeds, call in self.runtime.lanes.submit(
            self.engine, self.selfie, self.style, list(by_seed), self.settings.output_size
        ):
            self.calls[call] = ([by_seed[seed] for seed in seeds], reroll)

    def _reroll_seed(self, made: _Made) -> int:
        seed = reroll_seed(made.claim.seed, made.round, self.used_seeds)
        self.used_seeds.add(seed)
        return seed

    def _arrived(self, ended: list[Future[Call]]) -> None:
        """Record what the ended calls made: their previews side by side, then their pixels."""
        results: list[tuple[Claim, Outcome, float]] = []
        for call in ended:
            claims, reroll = self.calls.pop(call)
            made = call.result()
            for outcome in made.outcomes:
                metrics.engine_call(self.engine.name, made.seconds / len(made.outcomes), outcome)
            if reroll is not None:
                self._rerolled(reroll, made.outcomes[0])
                continue
            share = made.seconds / len(claims)
            results.extend((c, o, share) for c, o in zip(claims, made.outcomes, strict=True))
        # Every preview of the batch first; the raw pixels are written behind
        # them while this job goes on, so the next batch's previews do not
        # wait for this one's 4 MB writes either.
        for shown in self._side_by_side(self._record, results):
            if shown is not None:
                assert shown.image is not None  # the engine's image, just received
                write = self.runtime.writing.submit(self._store_pixels, shown.claim, shown.image)
                self.writing[write] = shown

    def _side_by_side(self, step: Callable[..., _T], items: list[tuple[Any, ...]]) -> list[_T]:
        """``step`` for each item, several at once: its results, in order.

        Encoding a preview, sealing and writing (to a bucket, too) mostly wait
        or run outside the GIL: several images at once show sooner.
        """
        if len(items) <= 1:
            return [step(*item) for item in items]
        running = [self.runtime.storing.submit(step, *item) for item in items]
        # All of them end before this job goes on or stops: a write still
        # under way after the job deleted its order's files would stay.
        wait(running)
        return [done.result() for done in running]

    def _record(self, claim: Claim, outcome: Outcome, seconds: float) -> _Made | None:
        """Record an engine call's outcome; an image shows as soon as its preview is stored.

        The raw pixels are stored right after (_store_pixels): a preview
        waits for no 4 MB write. A worker that dies between the two leaves
        a variation whose image is lost, and the next claim renders it again.
        """
        if isinstance(outcome, Failed):
            with transaction(self.runtime.sessions) as session:
                recorded = variations.failed(
                    session,
                    claim,
                    code=outcome.code,
                    reason=outcome.reason,
                    seconds=seconds or outcome.seconds,
                    details=outcome.details,
                )
            self._check_recorded(recorded)
            return None
        self._put(claim.preview_blob, self._preview(claim, outcome))
        with transaction(self.runtime.sessions) as session:
            recorded = variations.preview_stored(
                session, claim, seed=outcome.seed, seconds=seconds, details=outcome.details
            )
        return _Made(claim, outcome.image) if self._check_recorded(recorded) else None

    def _store_pixels(self, claim: Claim, image: Image.Image) -> None:
        self._put(claim.image_blob, service.encode_pixels(image))

    def _finish(self, made: _Made) -> None:
        """Start the face check of a stored image, or conclude if there is none to make."""
        if made.image is None:
            try:
                stored = self.runtime.blobs.get(
                    self.order_id, self.wrapped_key, made.claim.image_blob
                )
            except BlobNotFound:
                self._render_again(made.claim)
                return
            made.image = service.decode_image(stored)
        # Only a generative engine can change the face; a retouch of the
        # photo itself has the selfie's face by construction.
        if self.engine.generative and not made.checked:
            self._check(made, Rendered(seed=made.claim.seed, image=made.image, seconds=0.0))
            return
        self._conclude(made)

    def _render_again(self, claim: Claim) -> None:
        """An earlier worker showed the preview and died before storing the image."""
        with transaction(self.runtime.sessions) as session:
            recorded = variations.image_lost(session, claim)
        if self._check_recorded(recorded):
            self._start([claim], None)

    def _check(self, made: _Made, candidate: Rendered) -> None:
        made.candidate = candidate
        self.checks[submit_score(self.runtime, self.selfie, candidate.image, self.gate)] = made

    def _checked(self, made: _Made, check: Future[IdentityScore | None]) -> None:
        """A face check ended: keep the better try, then re-roll or conclude."""
        candidate, made.candidate, made.checked = made.candidate, None, True
        assert candidate is not None
        try:
            identity = check.result()
        except Exception as error:
            # The image is good whatever the check says; a check that cannot
            # run leaves the variation unscored rather than lost.
            log.warning(
                "identity check of order %s skipped: %s", self.order_id, type(error).__name__
            )
            identity = None
        if identity is not None:
            scored = dataclasses.replace(candidate, identity=identity)
            made.tries.append(identity_try(scored))
            if made.round == 0:
                made.scored = scored
            elif made.scored is None or better(scored, made.scored):
                # The better re-roll replaces the image and its preview.
                self._store_images(made.claim, scored)
                with transaction(self.runtime.sessions) as session:
                    recorded = variations.replaced(
                        session, made.claim, seed=scored.seed, details=scored.details
                    )
                if not self._check_recorded(recorded):
                    return
                made.image, made.scored = scored.image, scored
        self._conclude(made)

    def _conclude(self, made: _Made) -> None:
        """Re-roll a drifted face in the background, or record the variation done."""
        claim, scored = made.claim, made.scored
        if (
            scored is not None
            and flagged(scored)
            and rerolls_help(self.engine)
            and made.round < self.gate.rerolls
        ):
            assert scored.identity is not None
            with transaction(self.runtime.sessions) as session:
                recorded = variations.rerolling(
                    session, claim, distance=scored.identity.distance, flag=scored.identity.flag
                )
            if self._check_recorded(recorded):
                made.round += 1
                self._start([claim], made)
            return
        identity = scored.identity if scored is not None else None
        details: dict[str, Any] = {}
        if made.tries:
            details["identity_tries"] = made.tries
        elif self.engine.generative:
            details["identity_check"] = "skipped"
        with transaction(self.runtime.sessions) as session:
            recorded = variations.done(
                session,
                claim,
                distance=identity.distance if identity else None,
                flag=identity.flag if identity else None,
                scored=identity is not None,
                details=details,
            )
        if self._check_recorded(recorded):
            if self.runtime.compactor is not None:
                # It reads the image back when it gets to it: holding every
                # image of the job until then would be memory for nothing.
                self.runtime.compactor.add(claim)
            else:
                self.compacting.append(claim)
            made.image = None

    def _rerolled(self, made: _Made, outcome: Outcome) -> None:
        if isinstance(outcome, Rendered):
            self._check(made, outcome)
        else:
            self._conclude(made)  # the re-roll failed: keep what there is

    def _store_images(self, claim: Claim, made: Rendered) -> None:
        """A better try's watermarked preview and raw pixels, over the first's."""
        self._put(claim.preview_blob, self._preview(claim, made))
        self._store_pixels(claim, made.image)

    def _preview(self, claim: Claim, made: Rendered) -> bytes:
        """The watermarked, signed preview of an image."""
        preview = watermarked_preview(made.image, max_side=self.settings.preview_max)
        return credentials.sign_preview(
            self.runtime, claim.engine_name, claim.style_id, made.details, preview
        )

    def _put(self, name: str, data: bytes) -> None:
        if self.stop.is_set():
            raise _Stop()
        try:
            self.runtime.blobs.put(self.order_id, self.wrapped_key, name, data)
        except OrderDeleted:
            raise _Stop() from None

    def _check_recorded(self, recorded: Recorded) -> bool:
        """True when this job goes on with the variation; stops the job if the order is gone."""
        if recorded is Recorded.GONE:
            raise _Stop()
        if recorded is Recorded.STALE:
            return False
        self.runtime.changes.announce(self.order_id, final=recorded is Recorded.FINISHED)
        return True


def submit_score(
    runtime: Runtime, selfie: PreparedSelfie, image: Image.Image, gate: IdentityGate
) -> Future[IdentityScore | None]:
    """Check a face against the selfie's: in the scoring processes, or here.

    None when the selfie has no face dlib can describe (nothing to compare).
    """
    reference = reference_face(selfie)
    if reference is not None and runtime.scores is not None:
        return runtime.scores.submit(reference, image, gate.threshold)
    done: Future[IdentityScore | None] = Future()
    try:
        done.set_result(None if reference is None else score(reference, image, gate.threshold))
    except Exception as error:
        done.set_exception(error)
    return done


def compact(runtime: Runtime, claim: Claim) -> None:
    """Replace a done variation's raw pixels with its final, signed PNG.

    It comes after the variation is done: the image is final then, and a
    download before this encodes and signs the raw pixels itself, so the PNG
    (about 90 ms an image) is never what a person waits for.
    """
    blobs = runtime.blobs
    # Registered like a job, so a shred here stops it and waits for it.
    with runtime.working_on(claim.order_id) as stop, _store_outage_counted():
        try:
            stored = blobs.get(claim.order_id, claim.wrapped_key, claim.image_blob)
        except (BlobNotFound, OrderDeleted):
            return  # the order was deleted meanwhile
        if stored.startswith(service.PNG_SIGNATURE):
            return
        png = service.encode_png(service.decode_image(stored))
        signed = credentials.sign_final_png(runtime, claim.variation_id, png)
        if stop.is_set():
            return
        try:
            blobs.put(claim.order_id, claim.wrapped_key, claim.image_blob, signed)
        except OrderDeleted:
            return
    with transaction(runtime.sessions) as session:
        gone = variations.order_gone(session, claim.order_id)
    if gone:  # shredded while this was written: what was written goes too
        blobs.shred(claim.order_id)


@contextmanager
def _store_outage_counted() -> Iterator[None]:
    """A store that cannot be reached now is counted, and left to the caller to retry."""
    try:
        yield
    except StorageUnavailable:
        metrics.store_unavailable("final_png")
        raise


def _failure(error: Exception, order_id: str) -> Failed:
    if isinstance(error, HeadshotsError):
        return Failed(seed=0, reason=error.detail, code=error.code)
    log.error("order %s could not start: %s", order_id, type(error).__name__)
    return Failed(
        seed=0, reason="Something went wrong while making this image.", code="internal_error"
    )


@contextmanager
def _leases_kept(runtime: Runtime, claims: list[Claim], stop: threading.Event) -> Iterator[None]:
    """Renew the job's leases while it is alive; stop it if its order is shredded.

    A slow engine call is not a dead worker: only a lease that stops being
    renewed (the process died) runs out and lets the work move elsewhere.
    """
    settings = runtime.settings
    done = threading.Event()

    def renew() -> None:
        while not done.wait(settings.lease_renew_seconds):
            try:
                with transaction(runtime.sessions) as session:
                    alive = variations.renew(session, claims, lease_seconds=settings.lease_seconds)
            except Exception as error:  # a missed renewal is retried next period
                log.warning("lease renewal failed: %s", type(error).__name__)
                continue
            if not alive:
                stop.set()

    keeper = threading.Thread(target=renew, name=f"lease-{claims[0].order_id[:6]}", daemon=True)
    keeper.start()
    try:
        yield
    finally:
        done.set()
        keeper.join()


def sweep(runtime: Runtime) -> None:
    """Expire old orders and re-enqueue lost work; once per period overall."""
    with transaction(runtime.sessions) as session:
        if not service.claim_tick(session, "sweep", runtime.settings.sweep_seconds * 0.9):
            return
    run_sweep(runtime)


def run_sweep(runtime: Runtime) -> tuple[int, int]:
    """One sweep now: (orders expired, variations re-enqueued)."""
    with transaction(runtime.sessions) as session:
        expired = service.sweep_expired(session, runtime.blobs)
    runtime.shredded(expired)
    with transaction(runtime.sessions) as session:
        sweep_drafts(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        teams.sweep_teams(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        hourly = service.claim_tick(session, "unowned", unowned.EVERY_SECONDS)
    if hourly:
        with transaction(runtime.sessions) as session:
            left = unowned.delete_unowned(session, runtime.blobs)
            processes.forget_stopped(session)
        if left:
            log.info("sweep: blobs of %d ids no order owns deleted", left)
    with transaction(runtime.sessions) as session:
        stuck = service.stuck_variations(session, runtime.settings)
        jobs = variations.styles_of(session, stuck)
    # Apart: it locks orders, and a transaction holding variation rows must
    # not wait for an order row (a shred takes them the other way round).
    with transaction(runtime.sessions) as session:
        service.finish_stalled(session)
    runtime.queue.enqueue_styles(jobs)
    if expired or stuck:
        log.info("sweep: %d orders expired, %d variations re-enqueued", len(expired), len(stuck))
    return len(expired), len(stuck)
