"""Real artworks, masks and screens against the preflight's not_a_photo (decision 0008).

Prints one JSON object:
- per part (``fit``: what imaging/medium.py's limits were chosen on;
  ``held``: the rest) and per kind (oil, watercolour, drawing, print, mask,
  screen): how many are flagged ``not_a_photo``, how many are refused
  anyway (no face found, several faces: the person is told something), and
  which pass silently; masks and screens are simulated (tests/artworks.py);
- false ``not_a_photo`` on real photos: the fixtures' photos, the selfie-set
  set's photo cases and degraded copies, and colour-graded copies of the
  portraits (a warm grade, uncorrected tungsten light);
- the medium statistics' time per face (the six portraits' face boxes at
  1024 px), over ``--runs`` runs; with ``--against CHECKOUT``, that
  checkout's statistics timed interleaved with these.

Run: .venv/bin/python -m bench.artworks [--runs 21] [--against /tmp/before] [--timing-only]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tests.artworks import KINDS, PHOTOS, photo, samples
from tests.selfie_set import SINGLES, cases, source

from bench.selfies import degraded
from headshots.imaging.faces import find_one_face
from headshots.imaging.medium import measure
from headshots.imaging.preflight import preflight


def _cast(red: float, blue: float) -> Callable[[Image.Image], Image.Image]:
    def apply(image: Image.Image) -> Image.Image:
        pixels = np.asarray(image).astype(np.float32) * np.array([red, 1.0, blue])
        return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")

    return apply


# A warm grade (a phone's "warm" filter) and a tungsten lamp nobody corrected.
CASTS = {"warm": _cast(1.08, 0.85), "tungsten": _cast(1.15, 0.7)}


def outcome(image: Image.Image) -> str:
    report = preflight(image)
    if "not_a_photo" in report.codes:
        return "flagged"
    return "refused" if report.errors else "silent"


def parts() -> dict[str, Any]:
    result: dict[str, Any] = {}
    for part in ("fit", "held"):
        kinds: dict[str, dict[str, Any]] = {}
        for sample in samples(part):
            seen = outcome(sample.build())
            row = kinds.setdefault(sample.kind, {"flagged": 0, "refused": 0, "silent": [], "of": 0})
            row["of"] += 1
            if seen == "silent":
                row["silent"].append(sample.name)
            else:
                row[seen] += 1
            row["simulated"] = sample.simulated
        result[part] = {kind: kinds[kind] for kind in KINDS if kind in kinds}
    return result


def false_flags() -> dict[str, Any]:
    flagged: list[str] = []
    checked = 0
    pictures: list[tuple[str, Image.Image]] = [(name, photo(name)) for name in PHOTOS]
    pictures += [(name, source(name)) for name in SINGLES]
    pictures += [(c.name, c.build()) for c in cases() if not c.non_photo and c.has_face]
    for name in SINGLES:
        pictures += [(f"{name}:{tag}", image) for tag, image in degraded(source(name)).items()]
    for name, image in pictures:
        checked += 1
        if "not_a_photo" in preflight(image).codes:
            flagged.append(name)
    graded: dict[str, list[str]] = {}
    everyone = [(name, photo(name)) for name in PHOTOS] + [(n, source(n)) for n in SINGLES]
    for tag, cast in CASTS.items():
        graded[tag] = [
            name for name, image in everyone if "not_a_photo" in preflight(cast(image)).codes
        ]
    return {
        "real_photos_checked": checked,
        "false_not_a_photo": flagged,
        "graded_copies_checked_each": len(everyone),
        "false_not_a_photo_graded": graded,
    }


def _medium_of(checkout: Path) -> Callable[[Any], Any]:
    """Another checkout's imaging.medium.measure, loaded from its file."""
    spec = importlib.util.spec_from_file_location(
        "medium_against", checkout / "src" / "headshots" / "imaging" / "medium.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module.measure  # type: ignore[no-any-return]


def timing(runs: int, against: Path | None) -> dict[str, float]:
    regions = []
    for name in SINGLES:
        image = source(name)
        box = find_one_face(image).mesh_box
        pixels = np.asarray(image)
        regions.append(
            np.ascontiguousarray(
                pixels[int(box.top) : int(box.bottom), int(box.left) : int(box.right)]
            )
        )
    old = _medium_of(against) if against else None
    times, old_times = [], []
    # Interleaved, so that both see the same load on a shared machine.
    for _ in range(runs):
        for region in regions:
            started = time.perf_counter()
            measure(region, face=True)
            times.append(time.perf_counter() - started)
            if old is not None:
                started = time.perf_counter()
                old(region)
                old_times.append(time.perf_counter() - started)
    result = {
        "medium_per_face_median_ms": round(1000 * statistics.median(times), 2),
        "medium_per_face_max_ms": round(1000 * max(times), 2),
    }
    if old_times:
        result["against_medium_per_face_median_ms"] = round(1000 * statistics.median(old_times), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--against", type=Path, help="another checkout, timed interleaved")
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    figures = {} if args.timing_only else {**parts(), **false_flags()}
    print(json.dumps({**figures, **timing(args.runs, args.against)}, indent=2))


if __name__ == "__main__":
    main()
