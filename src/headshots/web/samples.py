"""Sample results for the landing page and the style cards.

They are made by the offline studio engine from two public-domain photos
shipped in ``web/samples/``, once, in a background thread, and kept as
plain JPEG files in the data dir (no person's upload is ever involved).
Pages show a placeholder until a sample exists.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from headshots.config import Settings
from headshots.styles import STYLE_IDS, get_style

log = logging.getLogger(__name__)

PHOTOS = Path(__file__).parent / "samples"
# Which shipped photo shows which style.
SITTER: dict[str, str] = {
    "corporate": "grace_hopper.jpg",
    "executive": "grace_hopper.jpg",
    "minimal": "grace_hopper.jpg",
    "creative": "astronaut.jpg",
    "startup": "astronaut.jpg",
    "friendly": "astronaut.jpg",
}
LANDING: tuple[str, ...] = ("corporate", "friendly", "executive", "creative")
SIZE = (480, 600)
SEED = 7


class Samples:
    """The sample files of one data dir, rendered at most once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.data_dir / "samples"
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def path(self, style_id: str) -> Path | None:
        """The finished sample of a style, or None while it is being made."""
        if style_id not in SITTER:
            return None
        path = self.folder / f"{style_id}.jpg"
        return path if path.is_file() else None

    def ready(self) -> dict[str, bool]:
        return {style_id: self.path(style_id) is not None for style_id in STYLE_IDS}

    def start(self) -> None:
        """Render the missing samples in the background (once)."""
        with self._lock:
            if self._thread is not None or all(self.ready().values()):
                return
            self._thread = threading.Thread(target=self._run, name="samples", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            render_samples(self.settings, self.folder)
        except Exception as error:
            # The pages keep their placeholders; the service works without samples.
            log.warning("sample results could not be made: %s", type(error).__name__)


def render_samples(settings: Settings, folder: Path) -> list[Path]:
    """Render every missing sample into ``folder``; returns the files written."""
    from headshots.engines.base import get_engine
    from headshots.imaging.selfie import prepare_selfie

    folder.mkdir(parents=True, exist_ok=True)
    engine = get_engine(settings, "studio")
    prepared = {}
    written: list[Path] = []
    for style_id, photo in SITTER.items():
        target = folder / f"{style_id}.jpg"
        if target.is_file():
            continue
        if photo not in prepared:
            prepared[photo] = prepare_selfie((PHOTOS / photo).read_bytes(), settings)
        outcome = engine.generate(prepared[photo], get_style(style_id), [SEED], SIZE)[0]
        image = getattr(outcome, "image", None)
        if image is None:
            log.warning("the studio engine made no sample for %s", style_id)
            continue
        # Write then rename, so a page never serves half a file.
        partial = target.with_suffix(".part")
        image.convert("RGB").save(partial, format="JPEG", quality=86, optimize=True)
        os.replace(partial, target)
        written.append(target)
    return written
