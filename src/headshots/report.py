"""report.json: what ``headshots generate`` made, with which engine, and how long it took.

The command chooses (styles, engine, seeds) and writes the images; this
module only keeps the record of it, so the report's shape lives in one place.
It holds facts about the run and the photo's format and size, never the
photo's file name, EXIF or pixels: the report is written unencrypted beside
the images.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from headshots.engines.base import Engine, Failed, Rendered
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style

REPORT_NAME = "report.json"


class GenerateReport:
    """The report of one ``headshots generate`` run, one entry per variation."""

    def __init__(self, engine: Engine, selfie: PreparedSelfie, prepare_seconds: float) -> None:
        self.engine = {
            "name": engine.name,
            "description": engine.description,
            "generative": engine.generative,
        }
        self.input = {
            "format": selfie.source_format,
            "size": list(selfie.source_size),
            "working_size": list(selfie.image.size),
            "face_box": selfie.face.box.as_list(),
        }
        self.timings: dict[str, float] = {"prepare_seconds": round(prepare_seconds, 3)}
        self.variations: list[dict[str, Any]] = []
        self.failures = 0

    @property
    def done(self) -> int:
        return len(self.variations) - self.failures

    def failed(self, style: Style, index: int, outcome: Failed) -> None:
        self.failures += 1
        entry = _entry(style, index, outcome)
        entry.update(status="failed", reason=outcome.reason, code=outcome.code)
        self.variations.append(entry)

    def rendered(self, style: Style, index: int, outcome: Rendered, file: str) -> None:
        entry = _entry(style, index, outcome)
        entry.update(status="done", file=file, size=list(outcome.image.size))
        entry["identity"] = outcome.identity.as_dict() if outcome.identity else None
        self.variations.append(entry)

    def write(self, out: Path, total_seconds: float) -> Path:
        """Writes report.json into ``out`` with the run's total time; returns its path."""
        self.timings["total_seconds"] = round(total_seconds, 3)
        path = out / REPORT_NAME
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n")
        return path

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "input": self.input,
            "timings": self.timings,
            "variations": self.variations,
        }


def _entry(style: Style, index: int, outcome: Rendered | Failed) -> dict[str, Any]:
    return {
        "style": style.id,
        "index": index,
        # A model without a seed cannot remake the image: no seed to report.
        "seed": None if outcome.details.get("reproducible") is False else outcome.seed,
        "seconds": round(outcome.seconds, 3),
        "details": outcome.details,
    }
