"""Studio engine and intake benchmark.

Prints one JSON object with medians over ``--runs`` runs (at least 5):
- intake (read_photo) of a 12 MP JPEG and a 12 MP HEIC, made here from a
  fixture scaled up to 4000x3000;
- the whole `headshots generate` work for one style x 4 variations from the
  12 MP JPEG, in process: intake, face analysis, segmentation and the four
  renders (prepare_selfie + render_style). The one-time model load (first
  mediapipe call) is measured separately and left out of the medians;
- the renders alone, per variation;
- peak memory of the process (ru_maxrss).

Run: .venv/bin/python -m bench.studio [--runs 7] [--style corporate]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pillow_heif
from PIL import Image

from headshots.config import Settings
from headshots.engines.studio import StudioEngine
from headshots.imaging.intake import read_photo
from headshots.imaging.selfie import prepare_selfie
from headshots.render import render_style
from headshots.styles import get_style

FIXTURE = Path(__file__).parents[1] / "tests" / "fixtures" / "obama.jpg"
SEEDS = [11, 12, 13, 14]
SIZE = (1024, 1280)


def twelve_megapixels() -> Image.Image:
    """The fixture, centred on a 4000x3000 canvas at 3000 px tall (a phone photo's size)."""
    photo = Image.open(FIXTURE).convert("RGB")
    scaled = photo.resize(
        (round(photo.width * 3000 / photo.height), 3000), Image.Resampling.LANCZOS
    )
    canvas = scaled.resize((4000, 3000), Image.Resampling.BICUBIC)
    canvas.paste(scaled, ((4000 - scaled.width) // 2, 0))
    return canvas


def encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "HEIC":
        pillow_heif.from_pillow(image).save(buffer, quality=90)
    else:
        image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def median_ms(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--style", default="corporate")
    args = parser.parse_args()
    runs = max(5, args.runs)
    settings = Settings()
    style = get_style(args.style)
    engine = StudioEngine(settings)

    photo = twelve_megapixels()
    jpeg, heic = encoded(photo, "JPEG"), encoded(photo, "HEIC")

    def intake(data: bytes) -> None:
        read_photo(
            data,
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            working_size=settings.working_size,
        )

    def generate() -> None:
        selfie = prepare_selfie(jpeg, settings)
        render_style(engine, selfie, style, SEEDS, SIZE)

    started = time.perf_counter()
    generate()  # loads the face and segmentation models once
    first = time.perf_counter() - started

    selfie = prepare_selfie(jpeg, settings)
    selfie.person_mask  # noqa: B018 - computed once, as an order would
    renders = median_ms(lambda: render_style(engine, selfie, style, SEEDS, SIZE), runs)

    result = {
        "runs": runs,
        "input": {"size": list(photo.size), "jpeg_bytes": len(jpeg), "heic_bytes": len(heic)},
        "intake_jpeg_12mp_ms": median_ms(lambda: intake(jpeg), runs),
        "intake_heic_12mp_ms": median_ms(lambda: intake(heic), runs),
        "generate_1_style_4_variations_ms": median_ms(generate, runs),
        "first_generate_with_model_load_ms": round(first * 1000, 1),
        "render_per_variation_ms": round(renders / len(SEEDS), 1),
        "style": style.id,
        "output_size": list(SIZE),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
