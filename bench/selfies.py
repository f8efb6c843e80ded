"""The selfies people actually have (decision 0008): outcomes on the selfie set, and speed.

Prints one JSON object:
- per case: the codes found, for an engine that extends a cropped head
  (generative) and for one that cannot (studio);
- the figures the issue asks for: faces found where there is one, refusals
  whose code is the true reason, tight crops accepted for generative
  engines, false "not a photo" on real photos (the set's photos and
  degraded copies of the fixture portraits), non-photo kinds flagged;
- the median preflight time per 1024 px image (the six fixture portraits
  at 1024 px, faces found from scratch), over ``--runs`` runs.

Run: .venv/bin/python -m bench.selfies [--runs 7]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from typing import Any

from PIL import Image, ImageEnhance, ImageFilter
from tests.selfie_set import SINGLES, cases, source

from headshots.imaging.preflight import preflight


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def degraded(image: Image.Image) -> dict[str, Image.Image]:
    """Real photos at their worst: compressed, small, soft, dark, grey."""
    half = image.resize((image.width // 2, image.height // 2))
    return {
        "jpeg_q30": _jpeg(image, 30),
        "half_q50": _jpeg(half, 50),
        "blur2": image.filter(ImageFilter.GaussianBlur(2)),
        "dark": ImageEnhance.Brightness(image).enhance(0.4),
        "grey": image.convert("L").convert("RGB"),
        "small300": _jpeg(image.resize((300 * image.width // image.height, 300)), 70),
    }


def evaluate() -> dict[str, Any]:
    rows = []
    for case in cases():
        image = case.build()
        generative = preflight(image, repairs_crop=True)
        studio = preflight(image, repairs_crop=False)
        rows.append(
            {
                "case": case.name,
                "kind": case.kind,
                "has_face": case.has_face,
                "non_photo": case.non_photo,
                "generative": generative.codes,
                "studio": studio.codes,
                "refused_generative": generative.errors[0].code if generative.errors else None,
                "refused_studio": studio.errors[0].code if studio.errors else None,
                "expected_generative": case.refusal_generative,
                "expected_studio": case.refusal_studio,
            }
        )
    photos = [r for r in rows if r["has_face"] and not r["non_photo"]]
    found = [r for r in photos if "no_face" not in r["generative"]]
    # A non-photo's refusal (often no_face: the detectors miss a drawn face)
    # is judged by its not_a_photo flag below, not here.
    judged = [r for r in rows if not r["non_photo"]]
    refusals = [r for r in judged if r["refused_generative"] or r["refused_studio"]]
    true_reason = [
        r
        for r in judged
        if r["refused_generative"] == r["expected_generative"]
        and r["refused_studio"] == r["expected_studio"]
    ]
    tight = [r for r in rows if r["kind"] in ("closeup", "tight_crop")]
    false_flags = [r["case"] for r in rows if not r["non_photo"] and "not_a_photo" in r["studio"]]
    for name in SINGLES:
        for tag, image in degraded(source(name)).items():
            if "not_a_photo" in preflight(image).codes:
                false_flags.append(f"{name}:{tag}")
    kinds: dict[str, list[bool]] = {}
    for r in rows:
        if r["non_photo"]:
            kinds.setdefault(r["kind"], []).append("not_a_photo" in r["studio"])
    return {
        "faces_found": f"{len(found)}/{len(photos)}",
        "refusals_with_true_reason": f"{sum(r in true_reason for r in refusals)}/{len(refusals)}",
        "photo_outcomes_as_expected": f"{len(true_reason)}/{len(judged)}",
        "tight_crops_accepted_generative": (
            f"{sum(r['refused_generative'] is None for r in tight)}/{len(tight)}"
        ),
        "tight_crops_refused_studio_as_tight_crop": (
            f"{sum(r['refused_studio'] == 'tight_crop' for r in tight)}/{len(tight)}"
        ),
        "false_not_a_photo_on_photos": false_flags,
        "real_photos_checked_for_not_a_photo": len(photos) + len(SINGLES) * 6,
        "non_photo_kinds_flagged": {kind: f"{sum(v)}/{len(v)}" for kind, v in kinds.items()},
        "unexpected": [
            r["case"]
            for r in rows
            if (r in judged and r not in true_reason)
            or (r["non_photo"] and "not_a_photo" not in r["studio"])
        ],
    }


def timing(runs: int) -> dict[str, float]:
    images = [source(name, 1024) for name in SINGLES]
    preflight(images[0])  # load the models
    times = []
    for _ in range(runs):
        for image in images:
            started = time.perf_counter()
            preflight(image)
            times.append(time.perf_counter() - started)
    return {
        "preflight_median_ms": round(1000 * statistics.median(times), 1),
        "preflight_max_ms": round(1000 * max(times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps({**evaluate(), **timing(args.runs)}, indent=2))


if __name__ == "__main__":
    main()
