"""Rendering one style for one selfie: the engine call every path shares.

The CLI and the job workers both come through here, so whatever is checked
about an engine's output is checked the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from headshots.engines.base import Engine, Outcome, Size, check_seeds
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style


def render_style(
    engine: Engine, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
) -> list[Outcome]:
    check_seeds(seeds)
    outcomes = engine.generate(selfie, style, seeds, size)
    if len(outcomes) != len(seeds):
        raise RuntimeError(f"engine {engine.name} returned {len(outcomes)} of {len(seeds)}")
    return outcomes
