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

import logging
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, CancelledError, Future, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy.orm.exc import StaleDataError

from headshots import metrics
from headshots.backdrops import parse_backdrop, with_backdrop
from headshots.credentials import images as credentials
from headshots.engines.base import Engine, Failed, Outcome
from headshots.errors import HeadshotsError
from headshots.imaging import codecs
from headshots.jobs.checking import Checking, Made, selfie_face
from headshots.jobs.compactor import Compactor
from headshots.jobs.lanes import Call
from headshots.jobs.storing import Stopped, StyleStore
from headshots.orders import processes, sweeping, unowned, variations
from headshots.orders.db import transaction
from headshots.orders.drafts import sweep_drafts
from headshots.orders.teams import service as teams
from headshots.orders.variations import Claim, Recorded
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
    with runtime.shreds.working_on(order_id) as stop, _leases_kept(runtime, claims, stop):
        _run(_StyleJob(runtime, claims, stop))


def _run(job: _StyleJob) -> None:
    """Run a style job; each way it can end early ends it quietly."""
    try:
        try:
            job.run()
        finally:
            # A write still under way after the job stops (and its order's
            # files are deleted) would stay.
            wait(job.writing)
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
        job.stopped()
    except StaleDataError:
        # A row changed between this job's read and its write: its order
        # was deleted, or (rarely) its lease was taken over meanwhile.
        with transaction(job.runtime.sessions) as session:
            gone = variations.order_gone(session, job.order_id)
        if gone:
            job.stopped()


class _StyleJob:
    """One job's loop: its engine calls, writes and face checks, all in flight at once.

    The loop takes what has ended in this order: engine calls (their
    previews show before anything else is done), raw pixels written (the
    image can be checked), face checks, then the stored images waiting for
    their check. Reading and writing is the store's (jobs.storing), what a
    check leads to is the checking's (jobs.checking).
    """

    def __init__(self, runtime: Runtime, claims: list[Claim], stop: threading.Event) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.claims = claims
        self.order_id = claims[0].order_id
        self.stop = stop
        self.store = StyleStore(runtime, claims[0], stop)
        # Engine calls in flight: their future, and what to do with the result.
        self.calls: dict[Future[Call], tuple[list[Claim], Made | None]] = {}
        # Raw pixels being written behind their shown previews.
        self.writing: dict[Future[None], Made] = {}
        self.finishing: deque[Made] = deque()

    def stopped(self) -> None:
        """The order was shredded: nothing more is made, and anything stored after goes too."""
        for call in self.calls:
            call.cancel()
        self.runtime.blobs.shred(self.order_id)

    def run(self) -> None:
        fresh = [claim for claim in self.claims if not claim.finishing]
        if not self._prepared(fresh):
            return
        if fresh:
            self._start({claim.seed: claim for claim in fresh}, None)
        if self.engine.generative:
            # The first check needs the selfie's face: found (once per order,
            # in a scoring process) while the engine works, not after its
            # images arrived, the busiest moment of the order.
            selfie_face(self.runtime, self.selfie)
        self.finishing.extend(Made(claim, None) for claim in self.claims if claim.finishing)
        compactor = self.runtime.compactor
        with compactor.busy() if compactor else nullcontext():
            self._loop(compactor)
        # Without a compactor, the final PNGs once nothing is left to show or check.
        _compact_each(self.runtime, self.checking.compacting)

    def _prepared(self, fresh: list[Claim]) -> bool:
        """The selfie, engine and style; False (and the fresh variations failed) without them."""
        try:
            self.selfie = self.runtime.selfies.get(self.order_id, self.store.selfie)
            self.engine: Engine = self.runtime.engine(self.claims[0].engine_name)
            # Its calls wait on a provider, not on this machine's CPU.
            self.remote = self.engine.shape().asynchronous
            # The person's chosen backdrop, in the style's look and prompt.
            self.style: Style = with_backdrop(
                get_style(self.claims[0].style_id), parse_backdrop(self.claims[0].backdrop)
            )
        except StorageUnavailable:
            raise  # not this order's fault: its work runs again once the store is back
        except Exception as error:
            outcome = _failure(error, self.order_id)
            for claim in fresh:
                self._show(claim, outcome, 0.0)
            return False
        self.checking = Checking(
            self.runtime,
            self.store,
            self.engine,
            self.selfie,
            seeds={claim.seed for claim in self.claims},
            went_on=self._check_recorded,
            start=self._start,
        )
        return True

    def _loop(self, compactor: Compactor[Claim] | None) -> None:
        checks = self.checking.checks
        while self.calls or self.writing or self.finishing or checks:
            if self.stop.is_set():
                raise Stopped()
            ended = [call for call in self.calls if call.done()]
            written = [write for write in self.writing if write.done()]
            checked = [check for check in checks if check.done()]
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
                    self.checking.ended(check)
            elif self.finishing:
                self.checking.finish(self.finishing.popleft())
            else:
                waiting: list[Future[Any]] = [*self.calls, *self.writing, *checks]
                with self._idle(compactor):
                    wait(waiting, timeout=1.0, return_when=FIRST_COMPLETED)

    def _idle(self, compactor: Compactor[Claim] | None) -> AbstractContextManager[None]:
        """While nothing but a remote engine's calls is left, PNGs may be made."""
        if compactor is None or not self.remote or self.writing or self.checking.checks:
            return nullcontext()
        return compactor.idle()

    def _start(self, by_seed: dict[int, Claim], reroll: Made | None) -> None:
        """Engine calls for these seeds, each the first try of its claim or ``reroll``'s next."""
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
                self.checking.rerolled(reroll, made.outcomes[0])
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

    def _show(self, claim: Claim, outcome: Outcome, seconds: float) -> Made | None:
        """Record an engine call's outcome; an image shows as soon as its preview is stored."""
        if isinstance(outcome, Failed):
            self._check_recorded(self.store.failed(claim, outcome, seconds))
            return None
        if self._check_recorded(self.store.shown(claim, outcome, seconds)):
            return Made(claim, outcome.image)
        return None

    def _check_recorded(self, recorded: Recorded) -> bool:
        """True when this job goes on with the variation; stops the job if the order is gone."""
        if recorded is Recorded.GONE:
            raise Stopped()
        # Recorded: the order's pages are woken at its commit (orders.effects).
        return recorded is not Recorded.STALE


def compact(runtime: Runtime, claim: Claim) -> None:
    """Replace a done variation's raw pixels with its final, signed PNG.

    It comes after the variation is done: the image is final then, and a
    download before this encodes and signs the raw pixels itself, so the PNG
    (about 90 ms an image) is never what a person waits for.
    """
    blobs = runtime.blobs
    # A redo (orders.redo) writes a new image under the same name: the PNG
    # of the image read here must not land over it.
    seed = _final_seed(runtime, claim)
    if seed is None:
        return  # being made again: the redo's own PNG follows it
    # Registered like a job, so a shred here stops it and waits for it.
    with runtime.shreds.working_on(claim.order_id) as stop, _store_outage_counted():
        try:
            stored = blobs.get(claim.order_id, claim.wrapped_key, claim.image_blob)
        except (BlobNotFound, OrderDeleted):
            return  # the order was deleted meanwhile
        if stored.startswith(codecs.PNG_SIGNATURE):
            return
        png = codecs.clean_png(stored)
        signed = credentials.sign_final_png(
            runtime.settings, runtime.sessions, claim.variation_id, png
        )
        if stop.is_set() or _final_seed(runtime, claim) != seed:
            return
        try:
            blobs.put(claim.order_id, claim.wrapped_key, claim.image_blob, signed)
        except OrderDeleted:
            return
    with transaction(runtime.sessions) as session:
        gone = variations.order_gone(session, claim.order_id)
    if gone:  # shredded while this was written: what was written goes too
        blobs.shred(claim.order_id)


def _final_seed(runtime: Runtime, claim: Claim) -> int | None:
    with transaction(runtime.sessions) as session:
        return variations.final_seed(session, claim.variation_id)


def _compact_each(runtime: Runtime, claims: list[Claim]) -> None:
    for claim in claims:
        try:
            compact(runtime, claim)
        except StorageUnavailable:
            # Counted; with no compactor to try again later, the raw
            # pixels stay, and a download makes the PNG on the spot.
            log.warning("a final PNG was not stored: the store is unavailable")


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
        if not sweeping.claim_tick(session, "sweep", runtime.settings.sweep_seconds * 0.9):
            return
    run_sweep(runtime)


def run_sweep(runtime: Runtime) -> tuple[int, int]:
    """One sweep now: (orders expired, variations re-enqueued)."""
    with transaction(runtime.sessions) as session:
        expired = sweeping.sweep_expired(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        sweep_drafts(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        teams.sweep_teams(session, runtime.blobs)
    with transaction(runtime.sessions) as session:
        hourly = sweeping.claim_tick(session, "unowned", unowned.EVERY_SECONDS)
    if hourly:
        with transaction(runtime.sessions) as session:
            left = unowned.delete_unowned(session, runtime.blobs)
            processes.forget_stopped(session)
        if left:
            log.info("sweep: blobs of %d ids no order owns deleted", left)
    with transaction(runtime.sessions) as session:
        stuck = sweeping.stuck_variations(session, runtime.settings)
    # Apart: it locks orders, and a transaction holding variation rows must
    # not wait for an order row (a shred takes them the other way round).
    with transaction(runtime.sessions) as session:
        sweeping.finish_stalled(session)
    if expired or stuck:
        log.info("sweep: %d orders expired, %d variations re-enqueued", len(expired), len(stuck))
    return len(expired), len(stuck)
