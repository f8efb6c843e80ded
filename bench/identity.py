"""Identity and preflight benchmark: accuracy on the fixtures and speed.

Prints one JSON object:
- same-person accept rate and different-person reject rate at the threshold,
  over every pair of fixture faces (the group photo's five faces count as five
  people);
- the studio engine's median distance to its selfie, when the engine exists;
- median identity-score and preflight time per 1024 px image (>= 5 runs each).

Run: .venv/bin/python -m bench.identity [--runs 7]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from pathlib import Path
from typing import Any

from PIL import Image
from tests.support import FIXTURE_PEOPLE

from headshots.config import Settings
from headshots.imaging.identity import DEFAULT_THRESHOLD, describe, describe_all, score
from headshots.imaging.preflight import preflight

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"


def load(name: str, size: int | None = None) -> Image.Image:
    image = Image.open(FIXTURES / name).convert("RGB")
    if size and max(image.size) != size:
        ratio = size / max(image.size)
        image = image.resize((round(image.width * ratio), round(image.height * ratio)))
    return image


def pairs(threshold: float) -> dict[str, Any]:
    faces = [(person, describe(load(name))) for name, person in FIXTURE_PEOPLE.items()]
    faces += [(f"group-{i}", f) for i, f in enumerate(describe_all(load("group_of_five.jpg")))]
    same, different = [], []
    for (pa, a), (pb, b) in itertools.combinations(faces, 2):
        (same if pa == pb else different).append(a.distance(b))
    return {
        "threshold": threshold,
        "same_pairs": len(same),
        "same_accept_rate": sum(d <= threshold for d in same) / len(same),
        "same_max_distance": round(max(same), 3),
        "different_pairs": len(different),
        "different_reject_rate": sum(d > threshold for d in different) / len(different),
        "different_min_distance": round(min(different), 3),
    }


def studio(threshold: float) -> dict[str, Any] | None:
    try:
        from headshots.engines.studio import StudioEngine
    except ImportError:
        return None
    from headshots.engines.base import Rendered
    from headshots.imaging.intake import Photo
    from headshots.imaging.selfie import prepare_photo
    from headshots.styles import STYLES

    engine = StudioEngine(Settings())
    distances = []
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg", "grace_hopper.jpg"):
        image = load(name)
        selfie = prepare_photo(Photo(image=image, source_format="JPEG", source_size=image.size))
        for style in STYLES:
            for outcome in engine.generate(selfie, style, [1, 2], (1024, 1280)):
                if isinstance(outcome, Rendered):
                    found = score(selfie.descriptor, outcome.image, threshold)
                    distances.append(found.distance if found.distance is not None else 9.0)
    return {
        "outputs": len(distances),
        "median_distance": round(statistics.median(distances), 3),
        "max_distance": round(max(distances), 3),
        "over_threshold": sum(d > threshold for d in distances),
    }


def timings(runs: int) -> dict[str, Any]:
    images = [load(name, 1024) for name in ("obama.jpg", "obama2.jpg", "biden.jpg")]
    reference = describe(images[0])
    preflight(images[0])  # load the models before timing
    score_ms, preflight_ms = [], []
    for _ in range(runs):
        for image in images:
            started = time.perf_counter()
            score(reference, image)
            score_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            preflight(image)
            preflight_ms.append((time.perf_counter() - started) * 1000)
    return {
        "runs_per_image": runs,
        "images": len(images),
        "identity_score_ms_median": round(statistics.median(score_ms), 1),
        "preflight_ms_median": round(statistics.median(preflight_ms), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    runs = max(5, args.runs)
    result = {
        "pairs": pairs(DEFAULT_THRESHOLD),
        "studio": studio(DEFAULT_THRESHOLD),
        "speed_1024px": timings(runs),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
