"""What the studio engine makes of a tightly cropped selfie (decision 0008).

For each fixture portrait, a close-up (4% of the face into the hair) and a
crop through the forehead are rendered by the studio engine (style
``corporate``, 4 seeds), next to the uncropped portrait. Per variation:

- ``head_share``: hair-to-chin over the output height: how tightly the
  headshot is cropped;
- ``frame_above_photo``: whether the photo's top edge lies inside the
  output (backdrop above it). The engine starts the frame at the photo's
  top when the hair touches it, so a head is never shown cut flat there.

Run: .venv/bin/python -m bench.studio_crops
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from tests.selfie_set import SINGLES, closeup, forehead_cut, head_and_shoulders

from headshots.config import Settings
from headshots.engines.base import Rendered
from headshots.engines.studio import StudioEngine
from headshots.imaging.faces import find_upright_face
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import get_style

SIZE = (1024, 1280)


def measure(image: Any) -> list[dict[str, Any]]:
    upright, face = find_upright_face(image)
    selfie = PreparedSelfie(image=upright, face=face)
    style = get_style("corporate")
    rows = []
    for outcome in StudioEngine(Settings()).generate(selfie, style, [1, 2, 3, 4], SIZE):
        if not isinstance(outcome, Rendered):
            # The engine's self-check refused it (a close-up's halo): never shown.
            rows.append({"refused_by_self_check": True})
            continue
        details = outcome.details
        # The photo's top edge inside the output: backdrop above it, and the
        # hair never touches it there (the frame starts at the photo's top
        # when the hair does).
        above = "top" in details["fades_into_backdrop"]
        rows.append({"head_share": details["head_share"], "frame_above_photo": above})
    return rows


def main() -> None:
    result: dict[str, Any] = {}
    for kind, make in (
        ("portrait", lambda name: head_and_shoulders(name, 640)),
        ("closeup", closeup),
        ("forehead_cut", forehead_cut),
    ):
        every = [row for name in SINGLES for row in measure(make(name))]
        rows = [row for row in every if "head_share" in row]
        result[kind] = {
            "variations": len(every),
            "refused_by_self_check": len(every) - len(rows),
            "median_head_share": round(statistics.median(r["head_share"] for r in rows), 3),
            "frame_above_photo": sum(r["frame_above_photo"] for r in rows),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
