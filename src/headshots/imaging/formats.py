"""The shapes a finished headshot downloads in, cut from the final image.

Every variation is made once, as a 4:5 portrait. A square (LinkedIn and most
profile photos) and a round profile picture are crops of that image, framed
on the face, so asking for another shape never calls an engine again and the
pixels a person bought are the pixels they get, only cropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image

from headshots.imaging.faces import Box, detect_faces, sitters

# Where the face's centre sits in the square, from the top. A touch above
# the middle leaves room for the shoulders below and keeps the hair clear of
# the top edge, as profile-picture crops do (the circle most sites lay over
# a square cuts the corners, not the top and bottom middle).
FACE_CENTER_FROM_TOP = 0.45
# The square's side as a share of the portrait's width: all of it, so the
# square keeps the portrait's full resolution (1024 px on a 1024x1280 image).
SQUARE_MIN_SIDE = 1024
# The round picture's edge is drawn at this many times its size and shrunk,
# so the circle is smooth rather than stair-stepped.
_EDGE_SUPERSAMPLE = 4


class Format(StrEnum):
    PORTRAIT = "portrait"
    SQUARE = "square"
    ROUND = "round"


def parse_formats(text: str) -> list[Format]:
    """``"portrait,square"`` as formats, in the order asked, without repeats.

    Raises ValueError with a sentence naming the one it does not know.
    """
    chosen: list[Format] = []
    for part in (piece.strip().lower() for piece in text.split(",")):
        if not part:
            continue
        try:
            wanted = Format(part)
        except ValueError:
            known = ", ".join(f.value for f in Format)
            raise ValueError(f"There is no format called {part!r}; choose from {known}.") from None
        if wanted not in chosen:
            chosen.append(wanted)
    if not chosen:
        raise ValueError("Choose at least one format: portrait, square or round.")
    return chosen


def recorded_face(details: Mapping[str, Any]) -> Box | None:
    """The face's box an engine recorded for its output (``face_box``), when it did."""
    box = details.get("face_box")
    if not (isinstance(box, list) and len(box) == 4):
        return None
    try:
        return Box(*(float(value) for value in box))
    except (TypeError, ValueError):
        return None


def face_in(image: Image.Image) -> Box | None:
    """The sitter's face in a finished headshot, or None when none is found."""
    found = sitters(detect_faces(image))
    if not found:
        return None
    return max(found, key=lambda d: d.box.width * d.box.height).box


def shaped(image: Image.Image, wanted: Format, face: Box | None = None) -> Image.Image:
    """The final image in the ``wanted`` shape; ``face`` is looked for when not given."""
    if wanted is Format.PORTRAIT:
        return image.convert("RGB")
    if face is None:
        face = face_in(image)
    square = _square(image.convert("RGB"), face)
    if wanted is Format.SQUARE:
        return square
    return _round(square)


def _square(image: Image.Image, face: Box | None) -> Image.Image:
    """The largest square of the image, its top chosen so the face sits where profiles put it."""
    side = min(image.size)
    if face is None:
        # No face found (a generative engine's unusual output): the top of a
        # headshot is where the face is, so keep the top of the picture.
        center_x, center_y = image.width / 2, side * FACE_CENTER_FROM_TOP
    else:
        center_x, center_y = face.center
    left = _clamp(round(center_x - side / 2), 0, image.width - side)
    top = _clamp(round(center_y - side * FACE_CENTER_FROM_TOP), 0, image.height - side)
    square = image.crop((left, top, left + side, top + side))
    if side < SQUARE_MIN_SIDE:
        # Only a portrait narrower than 1024 px (an engine asked for a small
        # size) comes here; the promised square is at least 1024 px.
        square = square.resize((SQUARE_MIN_SIDE, SQUARE_MIN_SIDE), Image.Resampling.LANCZOS)
    return square


def _round(square: Image.Image) -> Image.Image:
    """The square with transparent corners outside the largest circle it holds."""
    rounded = square.convert("RGBA")
    rounded.putalpha(_circle(square.width))
    return rounded


@lru_cache(maxsize=4)
def _circle(side: int) -> Image.Image:
    """An opaque disc on a transparent square, its edge anti-aliased."""
    big = side * _EDGE_SUPERSAMPLE
    yy, xx = np.ogrid[:big, :big]
    radius = big / 2
    inside = ((xx + 0.5 - radius) ** 2 + (yy + 0.5 - radius) ** 2) <= radius**2
    mask = Image.fromarray((inside * 255).astype(np.uint8), "L")
    return mask.resize((side, side), Image.Resampling.BOX)


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))
