"""After an image is stored: its face check, the gate's decision, what follows.

Once a variation's raw pixels are stored, a generative engine's image is
checked against the selfie's face, in the scoring processes and several at
once; a retouch keeps the selfie's face by construction and is done at
once. What a checked try leads to is the identity gate's decision
(headshots.reroll): kept, re-rolled with a new seed in the background (the
better try replaces the preview), or given up with its flag. The job's loop
(jobs.tasks) waits on the checks and on the re-rolls' engine calls; this
says what the end of each one means.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from headshots.engines.base import Engine, Outcome, Rendered
from headshots.imaging.identity import FaceDescriptor, IdentityScore, score
from headshots.imaging.selfie import PreparedSelfie
from headshots.jobs.storing import StyleStore
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
from headshots.storage.base import BlobNotFound

log = logging.getLogger(__name__)


@dataclass
class Made:
    """An image that is stored with its preview and waits for its check and PNG."""

    claim: Claim
    image: Image.Image | None  # None: read it back from the store
    scored: Rendered | None = None
    # A try whose face is being checked: the first image, or a re-roll.
    candidate: Rendered | None = None
    round: int = 0
    tries: list[dict[str, Any]] = field(default_factory=list)
    # What this variation's re-rolls cost that is not recorded yet: every
    # call is paid, whether its try replaces the image or not.
    paid_usd: float = 0.0

    def attempts(self, allowed: int) -> Attempts:
        best = self.scored.identity if self.scored is not None else None
        return Attempts(best=best, rerolls_made=self.round, rerolls_allowed=allowed)


# Starts engine calls, each seed for its claim: a fresh render (None) or a re-roll of one.
Start = Callable[[dict[int, Claim], Made | None], None]


class Checking:
    """The face checks of one job's images, and what the gate's decision on each leads to."""

    def __init__(
        self,
        runtime: Runtime,
        store: StyleStore,
        engine: Engine,
        selfie: PreparedSelfie,
        *,
        seeds: set[int],
        went_on: Callable[[Recorded], bool],
        start: Start,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.engine = engine
        self.selfie = selfie
        self.gate = IdentityGate.from_settings(runtime.settings)
        self.rerolls = self.gate.rerolls_for(engine)
        # The job's: whether it goes on with a variation after a record.
        self.went_on = went_on
        self.start = start
        # Every seed this job has asked for: a re-roll's seed is a new one.
        self.used_seeds = set(seeds)
        # Face checks in flight (in the scoring processes), several at once.
        self.checks: dict[Future[IdentityScore | None], Made] = {}
        # Done variations whose PNG the job makes itself, at its end, where
        # the process has no compactor.
        self.compacting: list[Claim] = []

    def finish(self, made: Made) -> None:
        """Start the face check of a stored image, or record it done if there is none to make."""
        if made.image is None:
            try:
                made.image = self.store.image(made.claim)
            except BlobNotFound:
                # An earlier worker showed the preview and died before storing the image.
                if self.went_on(self.store.image_lost(made.claim)):
                    self.start({made.claim.seed: made.claim}, None)
                return
        # Only a generative engine can change the face; a retouch of the
        # photo itself has the selfie's face by construction.
        if self.engine.generative:
            self._check(made, Rendered(seed=made.claim.seed, image=made.image, seconds=0.0))
        else:
            self._done(made)

    def ended(self, check: Future[IdentityScore | None]) -> None:
        """A face check ended: keep the better try, then re-roll or record it done."""
        made = self.checks.pop(check)
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
                paid, made.paid_usd = made.paid_usd, 0.0
                if not self.went_on(self.store.replaced(made.claim, scored, paid)):
                    return
                made.image = scored.image
            made.scored = scored
        self._next(made, decision.step)

    def rerolled(self, made: Made, outcome: Outcome) -> None:
        """A re-roll's engine call ended."""
        made.paid_usd += cost_of(outcome)
        if isinstance(outcome, Rendered):
            self._check(made, outcome)
        else:  # the re-roll failed: go on with what there is
            self._next(made, decide(None, made.attempts(self.rerolls)).step)

    def _check(self, made: Made, candidate: Rendered) -> None:
        made.candidate = candidate
        self.checks[submit_score(self.runtime, self.selfie, candidate.image, self.gate)] = made

    def _identity(self, check: Future[IdentityScore | None]) -> IdentityScore | None:
        try:
            return check.result()
        except Exception as error:
            # The image is good whatever the check says; a check that cannot
            # run leaves the variation unscored rather than lost.
            log.warning(
                "identity check of order %s skipped: %s", self.store.order_id, type(error).__name__
            )
            return None

    def _next(self, made: Made, step: Step) -> None:
        """Re-roll a drifted face in the background, or record the variation done."""
        if step is not Step.REROLL:
            self._done(made)
            return
        assert made.scored is not None and made.scored.identity is not None
        if self.went_on(self.store.rerolling(made.claim, made.scored.identity)):
            made.round += 1
            seed = reroll_seed(made.claim.seed, made.round, self.used_seeds)
            self.used_seeds.add(seed)
            self.start({seed: made.claim}, made)

    def _done(self, made: Made) -> None:
        identity = made.scored.identity if made.scored is not None else None
        details: dict[str, Any] = {}
        if made.tries:
            details["identity_tries"] = made.tries
        elif self.engine.generative:
            details["identity_check"] = "skipped"
        paid, made.paid_usd = made.paid_usd, 0.0
        if self.went_on(self.store.done(made.claim, identity, details, paid)):
            if self.runtime.compactor is not None:
                # It reads the image back when it gets to it: holding every
                # image of the job until then would be memory for nothing.
                self.runtime.compactor.add(made.claim)
            else:
                self.compacting.append(made.claim)
            made.image = None


def cost_of(outcome: Outcome) -> float:
    """What the provider charged for an engine call (0 where it says nothing)."""
    cost = outcome.details.get("cost_usd") if isinstance(outcome.details, dict) else None
    return float(cost) if isinstance(cost, int | float) and cost > 0 else 0.0


def selfie_face(runtime: Runtime, selfie: PreparedSelfie) -> FaceDescriptor | None:
    """The selfie's descriptor, found once: in the scoring processes where there are some."""
    return reference_face(selfie, runtime.scores.describe if runtime.scores else None)


def submit_score(
    runtime: Runtime, selfie: PreparedSelfie, image: Image.Image, gate: IdentityGate
) -> Future[IdentityScore | None]:
    """Check a face against the selfie's: in the scoring processes, or here.

    None when the selfie has no face dlib can describe (nothing to compare).
    """
    reference = selfie_face(runtime, selfie)
    if reference is not None and runtime.scores is not None:
        return runtime.scores.submit(reference, image, gate.threshold)
    done: Future[IdentityScore | None] = Future()
    try:
        done.set_result(None if reference is None else score(reference, image, gate.threshold))
    except Exception as error:
        done.set_exception(error)
    return done
