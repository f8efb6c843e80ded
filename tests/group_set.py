"""Group photos and the single people in them (decision 0008).

Every case is built on the fly from photos in ``tests/fixtures`` (see
PROVENANCE.md there): the real group photos as they are, crops of them
that keep two or more people, and pairs composed from single portraits
(side by side, heads tilted towards each other, one turned away, one in
front of the other, mirrored). Beside each group case stand its controls:
single-person crops of the same photos, which must be accepted.

The cases are split once, by name, into a tuning part (what the detection
windows and limits were chosen on) and a held-apart part (looked at only to
report, never to tune): ``Case.tuning``. The split is by source photo, so
no held-apart case shares a person with a tuning case.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from headshots.imaging.faces import segment_person
from tests.selfie_set import FIXTURES

# Group photos (name -> tuning part or not).
GROUP_PHOTOS = {
    "group_of_five.jpg": True,
    "adminbsb_profile-post-image.jpg": True,
    "ons_people-mob.png": True,
    "ons_students.jpg": False,
    "ons_ons-award-winners.jpg": False,
}
# One person each, as (left, top, right, bottom) shares of the photo: a
# head-and-shoulders crop with the neighbours outside, scaled to 400 px.
SINGLE_CROPS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    # Only the man in the checked shirt: the others' faces are in profile
    # or bowed (no face mesh can be made of them alone: refused as no_face).
    "adminbsb_profile-post-image.jpg": ((0.36, 0.05, 0.46, 0.60),),
    "ons_people-mob.png": (
        (0.08, 0.05, 0.34, 0.75),
        (0.40, 0.08, 0.65, 0.75),
        (0.73, 0.08, 0.99, 0.75),
    ),
    "ons_students.jpg": (
        (0.12, 0.25, 0.40, 0.70),
        (0.44, 0.33, 0.74, 0.85),
    ),
}
# Crops that keep two people of a group photo, scaled to 600 px.
GROUP_CROPS: dict[str, tuple[tuple[float, float, float, float], ...]] = {
    "adminbsb_profile-post-image.jpg": (
        (0.24, 0.0, 0.46, 1.0),  # the woman in profile and the laughing man
        (0.48, 0.2, 0.72, 1.0),  # the man bowing his head and the woman in sunglasses
    ),
    "ons_people-mob.png": ((0.05, 0.0, 0.65, 1.0),),
    "ons_students.jpg": ((0.1, 0.2, 0.9, 0.9),),
    "softui_toa-heftiba.jpg": ((0.15, 0.33, 0.85, 0.6),),
}
# Portraits of one person for composed pairs (name -> tuning part or not).
PORTRAITS = {
    "shards_avatar-1.jpg": True,
    "blackdash_mike.jpg": True,
    "sblanding_testimonials-1.jpg": True,
    "uikit_avatar.jpg": True,
    "sneat_avatar-7.png": False,
    "voltreact_profile-picture-2.jpg": False,
    "adminkit_avatar-3.jpg": False,
    "shards_avatar-3.jpg": False,
}
# (left, right) pairs; the second portrait of each pair is turned away from
# the camera in the uikit and adminkit photos.
PAIRS = (
    ("shards_avatar-1.jpg", "sblanding_testimonials-1.jpg"),
    ("blackdash_mike.jpg", "uikit_avatar.jpg"),
    ("sneat_avatar-7.png", "adminkit_avatar-3.jpg"),
    ("voltreact_profile-picture-2.jpg", "shards_avatar-3.jpg"),
)
PORTRAIT_HEIGHT = 480
CANVAS_GREY = (196, 192, 186)


@dataclass(frozen=True)
class Case:
    name: str
    # "group": more than one person, refused as several_faces;
    # "single": one person from the same photos, accepted.
    kind: str
    provenance: str
    build: Callable[[], Image.Image]
    tuning: bool


@functools.cache
def photo(name: str) -> Image.Image:
    return Image.open(FIXTURES / name).convert("RGB")


def crop(name: str, share: tuple[float, float, float, float], out: int) -> Image.Image:
    image = photo(name)
    left, top, right, bottom = share
    box = (
        round(left * image.width),
        round(top * image.height),
        round(right * image.width),
        round(bottom * image.height),
    )
    part = image.crop(box)
    ratio = out / max(part.size)
    return part.resize(
        (round(part.width * ratio), round(part.height * ratio)), Image.Resampling.LANCZOS
    )


@functools.cache
def portrait(name: str) -> tuple[Image.Image, Image.Image]:
    """A portrait at PORTRAIT_HEIGHT and its person mask (soft, 0-255)."""
    image = photo(name)
    width = round(image.width * PORTRAIT_HEIGHT / image.height)
    image = image.resize((width, PORTRAIT_HEIGHT), Image.Resampling.LANCZOS)
    mask = (segment_person(image) * 255).astype(np.uint8)
    mask = cv2.GaussianBlur(mask, (0, 0), 2)
    return image, Image.fromarray(mask, "L")


def composed(
    left: str | None,
    right: str | None,
    *,
    overlap: float = 0.0,
    tilt: float = 0.0,
    mirror: bool = False,
) -> Image.Image:
    """Two portraits on one grey canvas, the right one cut out and in front.

    ``overlap`` is the share of a portrait's width the two share; ``tilt``
    leans both heads towards each other by that many degrees (turned about
    the bottom centre, as a person leans); ``mirror`` flips the right one.
    With one name left out, the same canvas holds that person alone: the
    single-person control of the pair.
    """
    width = PORTRAIT_HEIGHT
    canvas = Image.new("RGB", (round(width * (2 - overlap)), PORTRAIT_HEIGHT), CANVAS_GREY)
    for side, name in ((0, left), (1, right)):
        if name is None:
            continue
        image, mask = portrait(name)
        if side == 1 and mirror:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        # Fit to a square slot of the canvas.
        image = image.resize((width, PORTRAIT_HEIGHT), Image.Resampling.LANCZOS)
        mask = mask.resize((width, PORTRAIT_HEIGHT), Image.Resampling.LANCZOS)
        if tilt:
            angle = -tilt if side == 0 else tilt
            centre = (width / 2, PORTRAIT_HEIGHT)
            image = image.rotate(
                angle, Image.Resampling.BICUBIC, center=centre, fillcolor=CANVAS_GREY
            )
            mask = mask.rotate(angle, Image.Resampling.BICUBIC, center=centre)
        x = 0 if side == 0 else round(width * (1 - overlap))
        # The left person keeps their own backdrop; the right one is cut out.
        canvas.paste(image, (x, 0), mask if side == 1 else None)
    return canvas


PAIR_VARIANTS: dict[str, dict[str, float | bool]] = {
    "side": {},
    "tilted": {"tilt": 15.0},
    "overlap": {"overlap": 0.3},
    "mirrored": {"mirror": True, "overlap": 0.15},
    "tilted-overlap": {"tilt": 12.0, "overlap": 0.35},
}


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def cases() -> list[Case]:
    """The whole set, in a stable order."""
    found: list[Case] = []
    for name, tuning in GROUP_PHOTOS.items():
        found.append(
            Case(
                f"{_stem(name)}",
                "group",
                f"{name} as it is",
                functools.partial(photo, name),
                tuning,
            )
        )
    for name, shares in GROUP_CROPS.items():
        tuning = GROUP_PHOTOS.get(name, False)
        for index, share in enumerate(shares):
            found.append(
                Case(
                    f"{_stem(name)}-crop{index + 1}",
                    "group",
                    f"{name}: crop {share} (shares of the photo) keeping two people, to 600 px",
                    functools.partial(crop, name, share, 600),
                    tuning,
                )
            )
    for name, shares in SINGLE_CROPS.items():
        tuning = GROUP_PHOTOS[name]
        for index, share in enumerate(shares):
            found.append(
                Case(
                    f"{_stem(name)}-person{index + 1}",
                    "single",
                    f"{name}: crop {share} (shares of the photo) around one person, to 400 px",
                    functools.partial(crop, name, share, 400),
                    tuning,
                )
            )
    for left, right in PAIRS:
        tuning = PORTRAITS[left] and PORTRAITS[right]
        pair = f"{_stem(left)}+{_stem(right)}"
        for variant, options in PAIR_VARIANTS.items():
            found.append(
                Case(
                    f"pair-{variant}-{pair}",
                    "group",
                    f"{left} and {right} (cut out, in front) at {PORTRAIT_HEIGHT} px, {options}",
                    functools.partial(composed, left, right, **options),  # type: ignore[arg-type]
                    tuning,
                )
            )
        for alone, options in ((left, {"tilt": 15.0}), (right, {"overlap": 0.3})):
            found.append(
                Case(
                    f"pair-alone-{_stem(alone)}",
                    "single",
                    f"{alone} alone on the canvas of the pair {pair}, {options}",
                    functools.partial(
                        composed,
                        alone if alone == left else None,
                        alone if alone == right else None,
                        **options,  # type: ignore[arg-type]
                    ),
                    tuning,
                )
            )
    return found
