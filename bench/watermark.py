"""The watermarked preview: its time, and how much of the face it covers.

Run: .venv/bin/python -m bench.watermark [--runs N] [--photos N]

Prints JSON. Times are medians in milliseconds to make a preview from a
1024 x 1280 render: "first" builds the mark layer for a new size (once per
size per process), "repeat" reuses it. Face coverage is the share of the
face's box whose grey level the mark moves by more than 8 levels, on studio
corporate headshots of the face set (the face found in each output), with
the mark at full strength over the face (as before decision 0016) and
thinned there (today): medians and the largest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from headshots.imaging import watermark
from headshots.imaging.faces import FaceError
from headshots.imaging.formats import face_in

FIXTURES = Path(__file__).parents[1] / "tests" / "fixtures"


def timings(runs: int) -> dict[str, float]:
    with Image.open(FIXTURES / "obama.jpg") as source:
        render = source.convert("RGB").resize((1024, 1280))
    first, repeat = [], []
    for _ in range(runs):
        watermark._overlay.cache_clear()
        watermark._label.cache_clear()
        watermark._usual_weights.cache_clear()
        started = time.perf_counter()
        watermark.watermarked_preview(render)
        first.append(time.perf_counter() - started)
        started = time.perf_counter()
        watermark.watermarked_preview(render)
        repeat.append(time.perf_counter() - started)
    return {
        "first_ms": round(statistics.median(first) * 1000, 2),
        "repeat_ms": round(statistics.median(repeat) * 1000, 2),
    }


def coverage(photos: int) -> dict[str, object]:
    # Imported here: the timing part needs no engine.
    from headshots.config import Settings
    from headshots.engines.base import Rendered
    from headshots.engines.studio import StudioEngine
    from headshots.imaging.selfie import SelfieRefused, prepare_selfie
    from headshots.styles import get_style

    os.environ.setdefault("HEADSHOTS_DATA_DIR", tempfile.mkdtemp())
    settings = Settings()
    engine = StudioEngine(settings)
    full, thinned, unknown = [], [], []
    for path in sorted((FIXTURES / "faces-more").glob("*.*"))[:photos]:
        if path.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp"}:
            continue
        try:
            selfie = prepare_selfie(path.read_bytes(), settings)
        except (SelfieRefused, FaceError):
            continue
        made = engine.generate(selfie, get_style("corporate"), [1], (1024, 1280))[0]
        if not isinstance(made, Rendered):
            continue
        preview = made.image.resize((614, 768), Image.Resampling.LANCZOS)
        face = face_in(preview)
        if face is None:
            continue
        plain = np.asarray(preview)
        full.append(
            watermark.face_coverage(
                plain, watermark.mark(plain, face=face, face_strength=1.0), face
            )
        )
        thinned.append(watermark.face_coverage(plain, watermark.mark(plain, face=face), face))
        # Without the face's box the mark is thinned where faces usually are.
        unknown.append(watermark.face_coverage(plain, watermark.mark(plain), face))
    return {
        "outputs": len(full),
        "full_mark": _summary(full),
        "thinned_over_face": _summary(thinned),
        "thinned_where_faces_usually_are": _summary(unknown),
    }


def _summary(shares: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(shares), 3), "max": round(max(shares), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--photos", type=int, default=30)
    args = parser.parse_args()
    result: dict[str, object] = {"input": [1024, 1280], "runs": max(5, args.runs)}
    result |= timings(max(5, args.runs))
    result["face_coverage"] = coverage(args.photos)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
