"""Rendering one style for one selfie in one call: ``headshots generate``'s path.

:func:`render_style` calls the engine, checks it returned one outcome per
seed, and (when given an :class:`IdentityGate`) scores every image against
the selfie's face, whatever the engine: a variation with no face, several
faces or a face too far from the selfie is flagged and, for engines where a
new seed can change the face, tried again with a new seed. The better of the
tries is kept, and every try is reported in the outcome's details. What to
do with each checked try is :func:`headshots.reroll.decide`, the same
decision the style jobs make.

The job workers do not come through :func:`render_style`. ``jobs.tasks``
stores each preview first and checks identity afterwards (``jobs.checking``),
one image at a time in a pool of processes, and differs in what it checks
and records: it scores only generative engines' images (a retouch keeps the
selfie's face), counts outcomes in ``jobs.lanes``, and marks a variation
whose check could not run ``identity_check: "skipped"`` where this path
only logs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from headshots.engines.base import Engine, Outcome, Rendered, Size, check_seeds
from headshots.imaging.identity import FaceDescriptor, IdentityScore, score
from headshots.imaging.selfie import PreparedSelfie
from headshots.reroll import (
    Attempts,
    IdentityGate,
    Step,
    decide,
    identity_try,
    reference_face,
    reroll_seed,
)
from headshots.styles import Style

# The gate is part of render_style's signature: importable from here too.
__all__ = ["IdentityGate", "render_style"]

log = logging.getLogger(__name__)


def render_style(
    engine: Engine,
    selfie: PreparedSelfie,
    style: Style,
    seeds: Sequence[int],
    size: Size,
    identity: IdentityGate | None = None,
) -> list[Outcome]:
    check_seeds(seeds)
    outcomes = _generate(engine, selfie, style, seeds, size)
    if identity is None:
        return outcomes
    reference = reference_face(selfie)
    if reference is None:
        return outcomes
    return _gate(engine, selfie, style, size, identity, reference, outcomes)


def _generate(
    engine: Engine, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
) -> list[Outcome]:
    outcomes = engine.generate(selfie, style, seeds, size)
    if len(outcomes) != len(seeds):
        raise RuntimeError(f"engine {engine.name} returned {len(outcomes)} of {len(seeds)}")
    return outcomes


def _gate(
    engine: Engine,
    selfie: PreparedSelfie,
    style: Style,
    size: Size,
    gate: IdentityGate,
    reference: FaceDescriptor,
    outcomes: list[Outcome],
) -> list[Outcome]:
    """Score each try; re-roll the drifted ones a round at a time, a round in one call."""
    kept = list(outcomes)
    tries: list[list[dict[str, Any]]] = [[] for _ in outcomes]
    allowed = gate.rerolls_for(engine)
    used = {outcome.seed for outcome in outcomes}
    arrived = list(enumerate(outcomes))
    round_ = 0
    while arrived:
        again: list[int] = []
        for index, outcome in arrived:
            scored = _scored(outcome, reference, gate.threshold)
            identity = _identity(scored)
            if isinstance(scored, Rendered) and identity is not None:
                tries[index].append(identity_try(scored))
            decision = decide(identity, Attempts(_identity(kept[index]), round_, allowed))
            if decision.replaces:
                kept[index] = scored
            if decision.step is Step.REROLL:
                again.append(index)
        if not again:
            break
        round_ += 1
        # From the variation's first seed, as the jobs do.
        seeds = [reroll_seed(outcomes[index].seed, round_, used) for index in again]
        used.update(seeds)
        arrived = list(zip(again, _generate(engine, selfie, style, seeds, size), strict=True))
    return _with_tries(kept, tries)


def _with_tries(kept: list[Outcome], tries: list[list[dict[str, Any]]]) -> list[Outcome]:
    result: list[Outcome] = []
    for outcome, attempts in zip(kept, tries, strict=True):
        if isinstance(outcome, Rendered) and outcome.identity is not None:
            # Every seed tried for this variation, so a re-roll is visible.
            details = {**outcome.details, "identity_tries": attempts}
            outcome = dataclasses.replace(outcome, details=details)
        result.append(outcome)
    return result


def _scored(outcome: Outcome, reference: FaceDescriptor, threshold: float) -> Outcome:
    if not isinstance(outcome, Rendered):
        return outcome
    try:
        identity = score(reference, outcome.image, threshold)
    except Exception as error:
        # As in the jobs: the image is good whatever the check says; one
        # whose check cannot run is kept unscored rather than lost.
        log.warning("identity check skipped: %s", type(error).__name__)
        return outcome
    return dataclasses.replace(outcome, identity=identity)


def _identity(outcome: Outcome) -> IdentityScore | None:
    return outcome.identity if isinstance(outcome, Rendered) else None
