"""What the stricter-preflight checks say on real portraits and on photos made to trigger them.

Prints one JSON object:
- per portrait in tests/fixtures (whole, and as a head-and-shoulders crop):
  the stricter-preflight codes found (mouth_open, eyes_off_camera, face_covered,
  other_person, cut_at_side) and the measured values;
- per kind of made photo (a microphone or a phone over the chin, part of a
  neighbour at the edge, a shoulder cut at the side): how many of the
  portraits it was made from get its code;
- the median preflight time per 1024 px portrait, and of the person
  segmentation it now runs, over ``--runs`` runs.

Run: .venv/bin/python -m bench.findings [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from PIL import Image
from tests.selfie_set import (
    SINGLES,
    head_and_shoulders,
    shoulder_cut,
    source,
    with_microphone,
    with_neighbour,
    with_phone,
)

from headshots.imaging.faces import FaceError, segment_person
from headshots.imaging.preflight import preflight

CODES = ("mouth_open", "eyes_off_camera", "face_covered", "other_person", "cut_at_side")
PORTRAITS = (
    *SINGLES,
    "shards_avatar-1.jpg",
    "shards_avatar-2.jpg",
    "shards_avatar-3.jpg",
    "blackdash_mike.jpg",
    "blackdash_james.jpg",
    "sblanding_testimonials-1.jpg",
    "uikit_avatar.jpg",
    "sneat_avatar-1.png",
    "sneat_avatar-7.png",
    "voltreact_profile-picture-2.jpg",
    "adminkit_avatar.jpg",
    "adminkit_avatar-3.jpg",
    "gentelella_picture.jpg",
    "paperdash_face-2.jpg",
)
MADE: dict[str, tuple[str, Callable[[str], Image.Image]]] = {
    "microphone": ("face_covered", with_microphone),
    "phone": ("face_covered", with_phone),
    "neighbour": ("other_person", lambda name: with_neighbour(name, _neighbour(name))),
    "shoulder_cut": ("cut_at_side", shoulder_cut),
}


def _neighbour(name: str) -> str:
    return "obama.jpg" if name == "shards_avatar-1.jpg" else "shards_avatar-1.jpg"


def _found(image: Image.Image) -> dict[str, float]:
    report = preflight(image, repairs_crop=False)
    return {f.code: f.value for f in report.findings if f.code in CODES}


def evaluate() -> dict[str, Any]:
    portraits: dict[str, Any] = {}
    for name in PORTRAITS:
        try:
            portraits[name] = {
                "whole": _found(source(name)),
                "head_and_shoulders": _found(head_and_shoulders(name, 640)),
            }
        except FaceError as error:
            portraits[name] = {"error": error.code}
    made: dict[str, Any] = {}
    for kind, (code, make) in MADE.items():
        hits, missed = [], []
        for name in PORTRAITS:
            try:
                found = _found(make(name))
            except FaceError:
                found = {}
            (hits if code in found else missed).append(name)
        made[kind] = {"caught": f"{len(hits)}/{len(PORTRAITS)}", "missed": missed}
    return {"portraits": portraits, "made": made}


def timing(runs: int) -> dict[str, float]:
    images = [source(name, 1024) for name in SINGLES]
    preflight(images[0])  # load the models
    result = {}
    for label, work in (("preflight", preflight), ("segmentation", segment_person)):
        times = []
        for _ in range(runs):
            for image in images:
                started = time.perf_counter()
                work(image)
                times.append(time.perf_counter() - started)
        result[f"{label}_median_ms"] = round(1000 * statistics.median(times), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps({**evaluate(), **timing(args.runs)}, indent=1))


if __name__ == "__main__":
    main()
