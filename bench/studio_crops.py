"""What the studio engine makes of a tightly cropped selfie (decision 0008).

For each fixture portrait, a close-up (4% of the face into the hair) and a
crop through the forehead are rendered by the studio engine (style
``corporate``, 4 seeds), next to the uncropped portrait. Per variation:

- ``head_share``: forehead-to-chin over the output height (the style asks
  for 0.36): how tightly the headshot is cropped;
- ``sliced``: whether the photo's top edge lies inside the output, where it
  shows as the head cut flat against the backdrop. The engine lets the crop
  leave the photo at the top when the photo is too tight for the style.

Run: .venv/bin/python -m bench.studio_crops
"""

from __future__ import annotations

import json
import statistics
from typing import Any

from tests.selfie_set import SINGLES, closeup, forehead_cut, head_and_shoulders

from headshots.config import Settings
from headshots.engines.base import Rendered
from headshots.engines.studio import StudioEngine, frame_face
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
        assert isinstance(outcome, Rendered)
        details = outcome.details
        from headshots.engines.studio import plan_variation

        variation = plan_variation(outcome.seed)
        framing = frame_face(
            face, upright.size, style.look.head_share, SIZE, variation.tightness, variation.shift
        )
        # Where the photo's top edge lands in the output, above the eyes.
        _, top_y = framing.to_output(face.eye_center[0], 0.0)
        rows.append({"head_share": details["head_share"], "sliced": top_y > 0.5})
    return rows


def main() -> None:
    result: dict[str, Any] = {}
    for kind, make in (
        ("portrait", lambda name: head_and_shoulders(name, 640)),
        ("closeup", closeup),
        ("forehead_cut", forehead_cut),
    ):
        rows = [row for name in SINGLES for row in measure(make(name))]
        result[kind] = {
            "variations": len(rows),
            "median_head_share": round(statistics.median(r["head_share"] for r in rows), 3),
            "sliced": sum(r["sliced"] for r in rows),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
