"""The identity gate: what to do with each try of a variation.

Both paths that make headshots go through it: ``headshots generate``
(:mod:`headshots.render`), which re-rolls a style's drifted variations a
round at a time, and the style jobs (:mod:`headshots.jobs.tasks`), which
check each image after its preview showed and re-roll one variation at a
time in the background. What happens to a try once its face is checked is
:func:`decide`, a pure function of the check's result and the variation's
attempts so far:

    try arrives ──check──> better than the best so far? ──yes──> it replaces it
                                  │
                best passed, or none could be checked ──> KEEP
                best drifted, a re-roll left          ──> REROLL (a new seed)
                best drifted, none left               ──> GIVE_UP (kept, flagged)

When to check and what to record stay each path's own: the jobs check only
generative engines' images (a retouch keeps the selfie's face) and record
each step in the database; ``generate`` scores every image it is given a
gate for and reports the tries in its outcomes.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image

from headshots.config import Settings
from headshots.engines.base import Engine, Rendered
from headshots.errors import HeadshotsError
from headshots.imaging.identity import FaceDescriptor, IdentityScore
from headshots.imaging.selfie import PreparedSelfie

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

    def rerolls_for(self, engine: Engine) -> int:
        """The re-rolls a variation of ``engine`` may have: none where seeds cannot help."""
        return self.rerolls if rerolls_help(engine) else 0


class Step(enum.Enum):
    # The best try passed, or no try could be checked: it is final as it is.
    KEEP = "keep"
    # The best try drifted and a re-roll is left: try a new seed.
    REROLL = "reroll"
    # The best try drifted and no re-roll is left: it is final, with its flag.
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class Attempts:
    """Where a variation stands when one of its tries has been checked."""

    # The score of the try the variation shows now; None while no try of it
    # has been scored (its first, or one whose check could not run).
    best: IdentityScore | None
    rerolls_made: int
    rerolls_allowed: int


@dataclass(frozen=True)
class Decision:
    step: Step
    # The checked try is better than the best so far and becomes the
    # variation's image (a first try is its image already).
    replaces: bool


def decide(identity: IdentityScore | None, attempts: Attempts) -> Decision:
    """What to do with a checked try: ``identity`` is its score, None if it has none.

    A try has no score when its check could not run or when the re-roll
    failed to render: the image shown is good whatever the check would have
    said, so the variation goes on with the best it has.
    """
    replaces = identity is not None and (
        attempts.best is None or _rank(identity) < _rank(attempts.best)
    )
    best = identity if replaces else attempts.best
    if best is None or best.passed:
        return Decision(Step.KEEP, replaces)
    if attempts.rerolls_made < attempts.rerolls_allowed:
        return Decision(Step.REROLL, replaces)
    return Decision(Step.GIVE_UP, replaces)


def _rank(identity: IdentityScore) -> tuple[int, float]:
    # A pass beats any flag; then the closer face wins; no face is last.
    distance = identity.distance if identity.distance is not None else float("inf")
    return (0 if identity.passed else 1, distance)


def rerolls_help(engine: Engine) -> bool:
    """Whether a new seed can give a drifted face another chance."""
    return engine.rerolls_help


def reroll_seed(seed: int, round_: int, used: set[int]) -> int:
    """The seed of re-roll ``round_`` of the variation first tried with ``seed``."""
    candidate = (seed + REROLL_STRIDE * round_) % 2**31
    while candidate in used:
        candidate = (candidate + 1) % 2**31
    return candidate


def reference_face(
    selfie: PreparedSelfie, describe: Callable[[Image.Image], FaceDescriptor] | None = None
) -> FaceDescriptor | None:
    """The selfie's face descriptor (found by ``describe``), None if dlib finds no face in it."""
    try:
        return selfie.described(describe)
    except HeadshotsError:
        # dlib's detector missed a face mediapipe found (a strongly turned
        # head): nothing to score against, so the outputs go unscored.
        log.warning("identity gate skipped: no reference face in the selfie")
        return None


def identity_try(outcome: Rendered) -> dict[str, Any]:
    """One try as the variation's details list it, so a re-roll is visible."""
    assert outcome.identity is not None
    return {
        "seed": outcome.seed,
        "distance": outcome.identity.as_dict()["distance"],
        "flag": outcome.identity.flag,
    }
