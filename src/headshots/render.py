"""Rendering one style for one selfie in one call: ``headshots generate``'s path.

:func:`render_style` calls the engine, checks it returned one outcome per
seed, and (when given an :class:`IdentityGate`) scores every image against
the selfie's face, whatever the engine: a variation with no face, several
faces or a face too far from the selfie is flagged and, for engines where a
new seed can change the face, tried again with a new seed. The better of the
tries is kept, and every try is reported in the outcome's details.

The job workers do not come through :func:`render_style`. ``jobs.tasks``
stores each preview first and checks identity afterwards, one image at a
time in a pool of processes, and differs in what it checks and records:
it scores only generative engines' images (a retouch keeps the selfie's
face), counts outcomes in ``jobs.lanes``, and marks a variation whose check
could not run ``identity_check: "skipped"`` where this path only logs. What
the two share is defined here: :class:`IdentityGate`, :func:`reference_face`,
:func:`flagged`, :func:`better`, :func:`identity_try`, :func:`reroll_seed`
and :func:`rerolls_help`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from headshots.config import Settings
from headshots.engines.base import Engine, Outcome, Rendered, Size, check_seeds
from headshots.errors import HeadshotsError
from headshots.imaging.identity import FaceDescriptor, IdentityScore, score
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style

log = logging.getLogger(__name__)

# A re-roll's seed is the original plus this stride per round: far from the
# consecutive seeds of one order, so it never repeats one of its variations.
REROLL_STRIDE = 1_000_003


@dataclass(frozen=True)
class IdentityGate:
    """Check every output's face against the selfie; re-roll drifted ones."""

    threshold: float = 0.6
    rerolls: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityGate:
        return cls(threshold=settings.identity_threshold, rerolls=settings.identity_rerolls)


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


def rerolls_help(engine: Engine) -> bool:
    """Whether a new seed can give a drifted face another chance."""
    return engine.rerolls_help


def reference_face(selfie: PreparedSelfie) -> FaceDescriptor | None:
    """The selfie's face descriptor, None if dlib finds no face in it."""
    try:
        return selfie.descriptor
    except HeadshotsError:
        # dlib's detector missed a face mediapipe found (a strongly turned
        # head): nothing to score against, so the outputs go unscored.
        log.warning("identity gate skipped: no reference face in the selfie")
        return None


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
    kept: list[Outcome] = []
    tries: list[list[dict[str, Any]]] = []
    for outcome in outcomes:
        scored = _scored(outcome, reference, gate.threshold)
        kept.append(scored)
        tries.append([identity_try(scored)] if isinstance(scored, Rendered) else [])

    rerolls = gate.rerolls if rerolls_help(engine) else 0
    used = {outcome.seed for outcome in outcomes}
    for round_ in range(1, rerolls + 1):
        drifted = [i for i, outcome in enumerate(kept) if flagged(outcome)]
        if not drifted:
            break
        new_seeds = [reroll_seed(kept[i].seed, round_, used) for i in drifted]
        used.update(new_seeds)
        again = _generate(engine, selfie, style, new_seeds, size)
        for index, outcome in zip(drifted, again, strict=True):
            scored = _scored(outcome, reference, gate.threshold)
            if isinstance(scored, Rendered):
                tries[index].append(identity_try(scored))
                if better(scored, kept[index]):
                    kept[index] = scored

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
    return dataclasses.replace(outcome, identity=score(reference, outcome.image, threshold))


def flagged(outcome: Outcome) -> bool:
    return (
        isinstance(outcome, Rendered)
        and outcome.identity is not None
        and not outcome.identity.passed
    )


def better(new: Rendered, old: Outcome) -> bool:
    if not isinstance(old, Rendered) or old.identity is None or new.identity is None:
        return True
    return _rank(new.identity) < _rank(old.identity)


def _rank(identity: IdentityScore) -> tuple[int, float]:
    # A pass beats any flag; then the closer face wins; no face is last.
    distance = identity.distance if identity.distance is not None else float("inf")
    return (0 if identity.passed else 1, distance)


def identity_try(outcome: Rendered) -> dict[str, Any]:
    assert outcome.identity is not None
    return {
        "seed": outcome.seed,
        "distance": outcome.identity.as_dict()["distance"],
        "flag": outcome.identity.flag,
    }


def reroll_seed(seed: int, round_: int, used: set[int]) -> int:
    candidate = (seed + REROLL_STRIDE * round_) % 2**31
    while candidate in used:
        candidate = (candidate + 1) % 2**31
    return candidate
