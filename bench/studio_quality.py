"""The studio engine's headshots, judged as a person would judge them.

Every style, four seeds each, for every photo of the face set (the 30
people of ``tests/fixtures/faces-more`` and the singles of
``tests/fixtures``) and for crops made from the portraits that show a body
(the photo ending at the chin, the neck, the chest; a small copy). Each
photo first goes through the studio engine's own preflight: a refused one
is counted as refused, not rendered.

Per check, the number of outputs that fail it:

- ``stretched``: a run of copied rows or columns (imaging.quality.stretched),
  looked for in the output itself;
- ``head_cut``: the person touches the frame's top edge above the face
  although the photo had room above the head (the segmenter run on the
  output itself, not the engine's own mask);
- ``halo``: the engine's halo measure at the cut-out's edge over its limit;
- ``skin``: the skin tone of cheeks and forehead moved by more than
  Delta-E 5 (the face found again in the output and aligned with the
  selfie's, imaging.quality.matched_landmarks, so both are read at the
  same spots); the median is reported too. ``face_lost`` counts outputs
  whose face is not found again, ``skin_unmatched`` those whose face does
  not align with the selfie's;
- ``alike``: two of a style's four variations closer than the stated minimum.

It writes contact sheets (selfie, then the four variations of a style, a
row per photo) to ``bench/results/studio_quality/``: look at them.

Run: .venv/bin/python -m bench.studio_quality [--styles corporate,friendly] [--photos 8]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from headshots.config import Settings
from headshots.engines.base import Rendered
from headshots.engines.studio import VARIATION_MIN_DISTANCE, StudioEngine
from headshots.errors import HeadshotsError
from headshots.imaging import quality
from headshots.imaging.faces import CHIN, FOREHEAD, find_one_face, segment_person
from headshots.imaging.selfie import prepare_selfie
from headshots.styles import STYLES, get_style

ROOT = Path(__file__).parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
OUT = ROOT / "bench" / "results" / "studio_quality"
SIZE = (1024, 1280)
SEEDS = [1, 2, 3, 4]
THUMB = (160, 200)
# Portraits that show a body below the chin, from which crops are cut.
BODIES = (
    "obama.jpg",
    "obama3.jpg",
    "biden.jpg",
    "grace_hopper.jpg",
    "faces-more/softui_charles.jpg",
    "faces-more/gatsbyblog_profile-pic.jpg",
    "faces-more/sbpersonal_profile.png",
    "faces-more/ons_woman-in-purple-dress-shirt.jpg",
)
# Where a crop's bottom edge lies, in face heights below the chin.
CROPS = {"chin": 0.25, "neck": 0.7, "chest": 1.4}


@dataclass(frozen=True)
class Photo:
    name: str
    image: Image.Image
    # Whether the photo has room above the head (the person does not touch
    # its top edge): then the headshot must not cut the head either.
    room_above: bool


def face_set() -> list[Photo]:
    names = sorted(f"faces-more/{p.name}" for p in (FIXTURES / "faces-more").glob("*.*"))
    names = [n for n in names if not n.endswith(".md")]
    names += ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "grace_hopper.jpg"]
    photos = [_photo(name, Image.open(FIXTURES / name).convert("RGB")) for name in names]
    for name in BODIES:
        image = Image.open(FIXTURES / name).convert("RGB")
        image.thumbnail((1536, 1536), Image.Resampling.LANCZOS)
        face = find_one_face(image)
        top, chin = face.landmarks[FOREHEAD, 1], face.landmarks[CHIN, 1]
        for label, below in CROPS.items():
            bottom = round(chin + below * (chin - top))
            if bottom < image.height - 4:
                photos.append(_photo(f"{name}#{label}", image.crop((0, 0, image.width, bottom))))
        small = image.resize((image.width * 320 // image.height, 320), Image.Resampling.LANCZOS)
        photos.append(_photo(f"{name}#small", small))
    return photos


def _photo(name: str, image: Image.Image) -> Photo:
    mask = segment_person(image)
    return Photo(name, image, room_above=bool(mask[0].max() < 0.5))


def head_cut(output: Image.Image) -> bool:
    """The person reaches the frame's top edge above the face."""
    mask = segment_person(output)
    face = find_one_face(output).mesh_box
    left, right = int(max(0, face.left)), int(min(output.width, face.right))
    return bool(mask[:3, left:right].max() > 0.5)


def skin(selfie: Image.Image, output: Image.Image) -> float:
    before = find_one_face(selfie)
    after = find_one_face(output)
    return quality.skin_delta_e(
        np.asarray(selfie), before.landmarks, np.asarray(output), after.landmarks
    )


def judge(
    photo: Photo, engine: StudioEngine, settings: Settings, styles: list[str]
) -> dict[str, Any]:
    buffer = io.BytesIO()
    photo.image.save(buffer, format="PNG")
    try:
        selfie = prepare_selfie(buffer.getvalue(), settings, repairs_crop=False)
    except HeadshotsError as error:
        return {"photo": photo.name, "refused": getattr(error, "code", "refused")}
    result: dict[str, Any] = {"photo": photo.name, "styles": {}}
    for style_id in styles:
        began = time.perf_counter()
        outcomes = engine.generate(selfie, get_style(style_id), SEEDS, SIZE)
        seconds = time.perf_counter() - began
        images = [o.image for o in outcomes if isinstance(o, Rendered)]
        rows: list[dict[str, Any]] = []
        for outcome in outcomes:
            if not isinstance(outcome, Rendered):
                rows.append({"failed": outcome.reason})
                continue
            pixels = np.asarray(outcome.image)
            row: dict[str, Any] = {
                "stretched": quality.stretched(pixels),
                "halo": outcome.details.get("halo", 0.0),
                "details": outcome.details,
            }
            try:
                row["head_cut"] = photo.room_above and head_cut(outcome.image)
                row["skin"] = round(skin(selfie.image, outcome.image), 2)
            except HeadshotsError:
                row["face_lost"] = True
            except ValueError:
                # The face found does not align with the selfie's as framed.
                row["skin_unmatched"] = True
            rows.append(row)
        distances = [
            quality.variation_distance(np.asarray(a), np.asarray(b))
            for i, a in enumerate(images)
            for b in images[i + 1 :]
        ]
        result["styles"][style_id] = {
            "seconds": round(seconds, 3),
            "outputs": rows,
            "closest": round(min(distances), 2) if distances else None,
            "images": images,
        }
    result["selfie"] = selfie.image
    return result


def contact_sheet(results: list[dict[str, Any]], style_id: str, path: Path) -> None:
    rows = [r for r in results if "styles" in r]
    width, height = THUMB
    label = 14
    sheet = Image.new("RGB", (width * 5, (height + label) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for row, result in enumerate(rows):
        y = row * (height + label)
        draw.text((4, y), result["photo"][:60], fill="black")
        selfie = result["selfie"].copy()
        selfie.thumbnail(THUMB)
        sheet.paste(selfie, (0, y + label))
        for column, image in enumerate(result["styles"][style_id]["images"], start=1):
            sheet.paste(image.resize(THUMB, Image.Resampling.LANCZOS), (column * width, y + label))
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--styles", default=",".join(s.id for s in STYLES))
    parser.add_argument("--photos", type=int, default=0, help="only the first N photos")
    parser.add_argument("--sheet-rows", type=int, default=12)
    args = parser.parse_args()
    styles = args.styles.split(",")
    settings = Settings()
    engine = StudioEngine(settings)
    photos = face_set()
    if args.photos:
        photos = photos[: args.photos]
    results = [judge(photo, engine, settings, styles) for photo in photos]

    failures: Counter[str] = Counter()
    where: dict[str, set[str]] = {}
    skins: list[float] = []
    halos: list[float] = []
    seconds: list[float] = []
    outputs = 0
    for result in results:
        for style_id, style in result.get("styles", {}).items():
            seconds.append(style["seconds"])
            checks: dict[str, bool] = {
                "alike": style["closest"] is not None and style["closest"] < VARIATION_MIN_DISTANCE
            }
            for row in style["outputs"]:
                outputs += 1
                checks["failed"] = "failed" in row
                if "failed" not in row:
                    halos.append(row["halo"])
                    checks["stretched"] = row["stretched"]
                    checks["halo"] = row["halo"] > quality.HALO_LIMIT
                    checks["face_lost"] = bool(row.get("face_lost"))
                    checks["skin_unmatched"] = bool(row.get("skin_unmatched"))
                    if not row.get("face_lost"):
                        checks["head_cut"] = row["head_cut"]
                    if "skin" in row:
                        skins.append(row["skin"])
                        checks["skin"] = row["skin"] > quality.SKIN_DELTA_E_MAX
                for check, failed in checks.items():
                    if failed:
                        failures[check] += 1 if check != "alike" else 0
                        where.setdefault(check, set()).add(f"{result['photo']} {style_id}")
                checks = {}
            if style["closest"] is not None and style["closest"] < VARIATION_MIN_DISTANCE:
                failures["alike"] += 1
    OUT.mkdir(parents=True, exist_ok=True)
    for style_id in styles:
        for page in range(0, len(results), args.sheet_rows):
            chunk = results[page : page + args.sheet_rows]
            contact_sheet(chunk, style_id, OUT / f"{style_id}-{page // args.sheet_rows + 1}.png")
    closest = [s["closest"] for r in results for s in r.get("styles", {}).values() if s["closest"]]
    summary = {
        "photos": len(photos),
        "refused": {r["photo"]: r["refused"] for r in results if "refused" in r},
        "outputs": outputs,
        "failing": dict(failures),
        "where": {check: sorted(names) for check, names in where.items()},
        "skin_delta_e": {"median": round(statistics.median(skins), 2), "max": round(max(skins), 2)},
        "halo": {
            "median": round(statistics.median(halos), 4),
            "max": round(max(halos), 4),
            "limit": quality.HALO_LIMIT,
        },
        "closest_variations": {
            "min": round(min(closest), 2),
            "median": round(statistics.median(closest), 2),
            "limit": VARIATION_MIN_DISTANCE,
        },
        "style_x4_seconds_median": round(statistics.median(seconds), 3),
        "sheets": str(OUT),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
