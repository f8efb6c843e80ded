"""Real artworks, simulated masks and screens, and real photos for the non-photo statistics (26).

The artworks and photos are files in ``tests/fixtures/medium`` (provenance
in PROVENANCE.md there): ``art-<kind>-<name>.jpg`` and ``photo-<name>.jpg``.
No photo of a person in a mask ships in a package we could find, so masks
are simulated on the face fixtures (a covering laid over the face mesh with
the eyes left open, lit like the face), and reported apart as simulated;
so are screens (``tests.selfie_set.screen_photo``).

The split is fixed by name: ``HELD`` is what the figures in bench/README.md
report on; ``FIT`` is the rest. ``imaging/medium.py``'s ``ink`` and ``skin``
limits were chosen on an earlier fit part that also held four oils, a
ukiyo-e and a watercolour copied from GCompris (its held-apart part held
three oils and a ukiyo-e more). All ten GCompris copies were removed (nine
ship under GPL-3+, which a fixture here may not carry) and the limits were
left as they were, not fitted again. Drawings alternate by sorted name;
the one oil left (Mona Lisa, from Wand's tests) and the one watercolour
(Chalon's Ada Lovelace) are held apart, so no oil or watercolour is
fitted; of the two book plates the frontispiece is fitted and the sepia
ship's rail held apart.
Masks and screens are fitted on the selfie-set non-photo sources (obama,
biden, grace_hopper) and held apart on the other three portraits, with
colours the fit never saw.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from headshots.imaging.faces import find_one_face
from tests.selfie_set import screen_photo, source

MEDIUM = Path(__file__).parent / "fixtures" / "medium"
KINDS = ("oil", "watercolour", "drawing", "print", "mask", "screen")

FIT_ARTWORKS = (
    "art-drawing-blackdash_anime3.jpg",
    "art-drawing-openclipart_bust.jpg",
    "art-drawing-openclipart_grandpa.jpg",
    "art-drawing-semanticui_nan.jpg",
    "art-print-wood_frontispiece.jpg",
)
HELD_ARTWORKS = (
    "art-drawing-blackdash_anime6.jpg",
    "art-drawing-openclipart_cm1.jpg",
    "art-drawing-openclipart_youngster.jpg",
    "art-drawing-semanticui_tom.jpg",
    "art-oil-wand_mona_lisa.jpg",
    "art-print-wood_ship_rail.jpg",
    "art-watercolour-chalon_ada_lovelace.jpg",
)
PHOTOS = tuple(sorted(path.name for path in MEDIUM.glob("photo-*.jpg")))

# The covering's colour (RGB) and how strongly a coarse grain (papier-mache,
# fabric) varies it; how much of the skin shows through (paint, not a mask).
MASKS: dict[str, tuple[tuple[int, int, int], float, float]] = {
    "white": ((235, 230, 220), 0.0, 0.0),
    "gold": ((200, 160, 60), 0.08, 0.0),
    "black": ((50, 45, 45), 0.15, 0.0),
    "silver": ((185, 185, 190), 0.05, 0.0),
    "leather": ((140, 85, 55), 0.1, 0.0),
    "blue_paint": ((60, 90, 170), 0.0, 0.2),
}
FIT_SOURCES = ("obama.jpg", "biden.jpg", "grace_hopper.jpg")
HELD_SOURCES = ("obama2.jpg", "obama3.jpg", "astronaut.png")
FIT_MASKS = ("white", "gold", "black")
HELD_MASKS = ("silver", "leather", "blue_paint")

# The eye outlines of the face mesh: left open in the mask.
EYE_OUTLINES = (
    (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7),
    (362, 398, 384, 385, 386, 387, 388, 466, 263, 249, 390, 373, 374, 380, 381, 382),
)


@dataclass(frozen=True)
class Sample:
    name: str
    kind: str
    simulated: bool
    build: Callable[[], Image.Image]


def artwork(name: str) -> Image.Image:
    return Image.open(MEDIUM / name).convert("RGB")


def masked(name: str, style: str) -> Image.Image:
    """A portrait with a mask (or face paint) over the face, the eyes open, lit like the face."""
    colour, grain, skin = MASKS[style]
    image = source(name)
    pixels = np.asarray(image).astype(np.float32)
    height, width = pixels.shape[:2]
    face = find_one_face(image)
    points = face.landmarks[:, :2]
    cover = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(cover, cv2.convexHull(points.astype(np.int32)), (255,))
    for outline in EYE_OUTLINES:
        eye = points[list(outline)]
        middle = eye.mean(axis=0)
        cv2.fillPoly(cover, [(middle + (eye - middle) * 1.3).astype(np.int32)], (0,))
    alpha = cv2.GaussianBlur(cover.astype(np.float32) / 255, (0, 0), 1.5)[..., None]
    # The face's own light, without its detail, shades the covering.
    luma = cv2.cvtColor(pixels.astype(np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    light = cv2.GaussianBlur(luma, (0, 0), face.mesh_box.width / 25)
    light = 0.55 + 0.6 * light / max(float(np.percentile(light[cover > 0], 95)), 1.0)
    surface = np.array(colour, np.float32) * light[..., None]
    if grain:
        noise = np.random.default_rng(0).normal(0, 1, (height // 6 + 1, width // 6 + 1))
        coarse = cv2.resize(
            noise.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
        )
        surface = surface * (1 + grain * coarse[..., None])
    surface = surface * (1 - skin) + pixels * skin
    out = pixels * (1 - alpha) + surface * alpha
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


def samples(part: str) -> list[Sample]:
    """The non-photos of one part, ``fit`` or ``held``, in a stable order."""
    names, sources, styles = (
        (FIT_ARTWORKS, FIT_SOURCES, FIT_MASKS)
        if part == "fit"
        else (HELD_ARTWORKS, HELD_SOURCES, HELD_MASKS)
    )
    found = [
        Sample(name[4:-4], name.split("-")[1], False, functools.partial(artwork, name))
        for name in names
    ]
    for name in sources:
        stem = name.rsplit(".", 1)[0]
        found += [
            Sample(f"{stem}-{style}", "mask", True, functools.partial(masked, name, style))
            for style in styles
        ]
        found.append(
            Sample(f"{stem}-screen", "screen", True, functools.partial(screen_photo, name))
        )
    return found


def photo(name: str) -> Image.Image:
    return Image.open(MEDIUM / name).convert("RGB")
