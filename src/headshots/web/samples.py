"""Sample results for the landing page and the style cards.

The shipped samples in ``web/samples/`` are real outputs of the studio
engine, made ahead by ``python -m bench.samples`` from licensed photos of
people in their ordinary clothes (``web/samples/PROVENANCE.md``). The
folder's ``samples.json`` names the engine that made them, and a page shows
them only when the configured engine is that one: a studio retouch shown as
what a generative engine makes, or the reverse, would promise what the
person will not get. An operator may point ``HEADSHOTS_SAMPLES_DIR`` at a
folder of their own in the same layout (``STYLE.jpg`` per style and a
``samples.json`` saying ``{"engine": "NAME"}``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from headshots.config import Settings
from headshots.styles import STYLE_IDS

log = logging.getLogger(__name__)

SHIPPED = Path(__file__).parent / "samples"
INDEX = "samples.json"
# The styles the landing page shows, in its order.
LANDING: tuple[str, ...] = ("corporate", "friendly", "executive", "creative")
SIZE = (480, 600)


@dataclass(frozen=True)
class Samples:
    """One folder of samples and the engine that made them."""

    folder: Path
    # None when the folder has no readable index: then nothing is shown.
    engine: str | None

    @classmethod
    def of(cls, settings: Settings) -> Samples:
        return cls.read(settings.samples_dir or SHIPPED)

    @classmethod
    def read(cls, folder: Path) -> Samples:
        try:
            index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
            engine = index["engine"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            # The pages say there are no samples; the service works without them.
            log.warning("no samples shown: %s has no readable %s (%s)", folder, INDEX, error)
            return cls(folder, None)
        return cls(folder, engine if isinstance(engine, str) and engine else None)

    def for_engine(self, engine: str) -> dict[str, Path]:
        """The sample of each style made by ``engine``; empty when another engine made them."""
        if self.engine != engine:
            return {}
        found = {style_id: self.folder / f"{style_id}.jpg" for style_id in STYLE_IDS}
        return {style_id: path for style_id, path in found.items() if path.is_file()}
