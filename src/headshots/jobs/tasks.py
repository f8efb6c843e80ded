"""The task bodies. They orchestrate; every state change is orders/'s.

A job is one style of one order: the ids of its variations. It claims them
(orders.variations), hands their seeds to the engine as the engine's shape
asks (jobs.lanes), and stores each image with its watermarked preview the
moment its call ends (jobs.storing), so a preview never waits for anything
but its own image. The identity check comes after; what to do with a
checked try is the identity gate's decision (headshots.reroll): a drifted
face is re-rolled in the background and the better try replaces the
preview; the final PNG replaces the raw pixels once the variation is done.
A job can run twice or after a crash: only claims the job holds are worked
on, and every result is recorded only while the claim still stands.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from sqlalchemy.orm.exc import StaleDataError

from headshots import metrics
from headshots.credentials import images as credentials
from headshots.engines.base import Engine, Failed, Outcome, Rendered
from headshots.errors import HeadshotsError
from headshots.imaging.identity import IdentityScore, score
from headshots.imaging.selfie import PreparedSelfie
from headshots.jobs.compactor import Compactor
from headshots.jobs.lanes import Call
from headshots.jobs.storing import Stopped, StyleStore
from headshots.orders import processes, service, unowned, variations
from headshots.orders.db import transaction
from headshots.orders.drafts import sweep_drafts
from headshots.orders.variations import Claim, Recorded
from headshots.reroll import (
    Attempts,
    IdentityGate,
    Step,
    decide,
    identity_try,
    reference_face,
    reroll_seed,
)
from headshots.runtime import Runtime
from headshots.storage.base import BlobNotFound, OrderDeleted, StorageUnavailable
from headshots.styles import Style, get_style

log = logging.getLogger(__name__)


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
    round: int = 0
    tries: list[dict[str, Any]] = field(default_factory=list)

    def attempts(self, allowed: int) -> Attempts:
        best = self.scored.identity if self.scored is not None else None
        return Attempts(best=best, rerolls_made=self.round, rerolls_allowed=allowed)


class _StyleJob:
    """One job's loop: its engine calls, writes and face checks, all in flight at once.

    The loop takes what has ended in this order: engine calls (their
    previews show before anything else is done), raw pixels written (the
    image can be checked), face checks (keep, re-roll or give up), then the
    stored images waiting for their check. Writing is the store's
    (:class:`StyleStore`), the re-roll decision the gate's (``decide``).
    """

    def __init__(self, runtime: Runtime, claims: list[Claim], stop: threading.Event) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.claims = claims
        self.order_id = claims[0].order_id
        self.stop = stop
        self.store = StyleStore(runtime, claims[0], stop)
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
        except Stopped:
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
        if not self._prepared(fresh):
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
            self._loop(compactor)
        # Without a compactor, the final PNGs once nothing is left to show or check.
        for claim in self.compacting:
            try:
                compact(self.runtime, claim)
            except StorageUnavailable:
                # Counted; with no compactor to try again later, the raw
                # pixels stay, and a download makes the PNG on the spot.
                log.warning("a final PNG was not stored: the store is unavailable")

    def _prepared(self, fresh: list[Claim]) -> bool:
        """The selfie, engine and style; False (and the fresh variations failed) without them."""
        try:
            self.selfie = self.runtime.selfies.get(self.order_id, self.store.selfie)
            self.engine: Engine = self.runtime.engine(self.claims[0].engine_name)
            # Its calls wait on a provider, not on this machine's CPU.
            self.remote = self.engine.shape().asynchronous
            self.style: Style = get_style(self.claims[0].style_id)
        except StorageUnavailable:
            raise  # not this order's fault: its work runs again once the store is back
        except Exception as error:
            outcome = _failure(error, self.order_id)
            for claim in fresh:
                self._show(claim, outcome, 0.0)
            return False
        self.rerolls = self.gate.rerolls_for(self.engine)
        return True

    def _loop(self, compactor: Compactor[Claim] | None) -> None:
        while self.calls or self.writing or self.finishing or self.checks:
            if self.stop.is_set():
                raise Stopped()
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

    def _idle(self, compactor: Compactor[Claim] | None) -> AbstractContextManager[None]:
        """While nothing but a remote engine's calls is left, PNGs may be made."""
        if compactor is None or not self.remote or self.writing or self.checks:
            return nullcontext()
        return compactor.idle()

    def _start(self, claims: list[Claim], reroll: _Made | None) -> None:
        if not claims:
            return
        if reroll is None:
            by_seed = {claim.seed: claim for claim in claims}
        else:
            seed = reroll_seed(reroll.claim.seed, reroll.round, self.used_seeds)
            self.used_seeds.add(seed)
            by_seed = {seed: reroll.claim}
        for seeds, call in self.runtime.lanes.submit(
            self.engine, self.selfie, self.style, list(by_seed), self.settings.output_size
        ):
            self.calls[call] = ([by_seed[seed] for seed in seeds], reroll)

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
        for shown in self.store.side_by_side(self._show, results):
            if shown is not None:
                assert shown.image is not None  # the engine's image, just received
                write = self.runtime.writing.submit(self.store.pixels, shown.claim, shown.image)
                self.writing[write] = shown

    def _show(self, claim: Claim, outcome: Outcome, seconds: float) -> _Made | None:
        """Record an engine call's outcome; an image shows as soon as its preview is stored."""
        if isinstance(outcome, Failed):
            self._check_recorded(self.store.failed(claim, outcome, seconds))
            return None
        if self._check_recorded(self.store.shown(claim, outcome, seconds)):
            return _Made(claim, outcome.image)
        return None

    def _finish(self, made: _Made) -> None:
        """Start the face check of a stored image, or record it done if there is none to make."""
        if made.image is None:
            try:
                made.image = self.store.image(made.claim)
            except BlobNotFound:
                # An earlier worker showed the preview and died before storing the image.
                if self._check_recorded(self.store.image_lost(made.claim)):
                    self._start([made.claim], None)
                return
        # Only a generative engine can change the face; a retouch of the
        # photo itself has the selfie's face by construction.
        if self.engine.generative:
            self._check(made, Rendered(seed=made.claim.seed, image=made.image, seconds=0.0))
        else:
            self._done(made)

    def _check(self, made: _Made, candidate: Rendered) -> None:
        made.candidate = candidate
        self.checks[submit_score(self.runtime, self.selfie, candidate.image, self.gate)] = made

    def _checked(self, made: _Made, check: Future[IdentityScore | None]) -> None:
        """A face check ended: keep the better try, then re-roll or record it done."""
        candidate, made.candidate = made.candidate, None
        assert candidate is not None
        identity = self._identity(check)
        scored = dataclasses.replace(candidate, identity=identity)
        if identity is not None:
            made.tries.append(identity_try(scored))
        decision = decide(identity, made.attempts(self.rerolls))
        if decision.replaces:
            # A first try shows already; a better re-roll replaces its image and preview.
            if made.round > 0:
                if not self._check_recorded(self.store.replaced(made.claim, scored)):
                    return
                made.image = scored.image
            made.scored = scored
        self._next(made, decision.step)

    def _identity(self, check: Future[IdentityScore | None]) -> IdentityScore | None:
        try:
            return check.result()
        except Exception as error:
            # The image is good whatever the check says; a check that cannot
            # run leaves the variation unscored rather than lost.
            log.warning(
                "identity check of order %s skipped: %s", self.order_id, type(error).__name__
            )
            return None

    def _rerolled(self, made: _Made, outcome: Outcome) -> None:
        if isinstance(outcome, Rendered):
            self._check(made, outcome)
        else:  # the re-roll failed: go on with what there is
            self._next(made, decide(None, made.attempts(self.rerolls)).step)

    def _next(self, made: _Made, step: Step) -> None:
        """Re-roll a drifted face in the background, or record the variation done."""
        if step is not Step.REROLL:
            self._done(made)
            return
        assert made.scored is not None and made.scored.identity is not None
        if self._check_recorded(self.store.rerolling(made.claim, made.scored.identity)):
            made.round += 1
            self._start([made.claim], made)

    def _done(self, made: _Made) -> None:
        identity = made.scored.identity if made.scored is not None else None
        details: dict[str, Any] = {}
        if made.tries:
            details["identity_tries"] = made.tries
        elif self.engine.generative:
            details["identity_check"] = "skipped"
        if self._check_recorded(self.store.done(made.claim, identity, details)):
            if self.runtime.compactor is not None:
                # It reads the image back when it gets to it: holding every
                # image of the job until then would be memory for nothing.
                self.runtime.compactor.add(made.claim)
            else:
                self.compacting.append(made.claim)
            made.image = None

    def _check_recorded(self, recorded: Recorded) -> bool:
        """True when this job goes on with the variation; stops the job if the order is gone."""
        if recorded is Recorded.GONE:
            raise Stopped()
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
