from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshots.imaging.formats import (
    FACE_CENTER_FROM_TOP,
    Format,
    face_in,
    parse_formats,
    shaped,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def headshot() -> Image.Image:
    """A real portrait at the size every variation is made in (4:5, 1024 x 1280)."""
    with Image.open(FIXTURES / "obama.jpg") as source:
        return source.convert("RGB").resize((1024, 1280))


def test_the_portrait_is_the_final_image_itself(headshot: Image.Image) -> None:
    portrait = shaped(headshot, Format.PORTRAIT)
    assert portrait.size == (1024, 1280)
    assert np.array_equal(np.asarray(portrait), np.asarray(headshot))


def test_the_square_keeps_full_resolution_and_the_whole_face(headshot: Image.Image) -> None:
    face = face_in(headshot)
    assert face is not None
    square = shaped(headshot, Format.SQUARE)
    assert square.size == (1024, 1024)
    # Cut from the portrait, not resampled: the rows are the portrait's own.
    top = top_of(square, headshot)
    assert face.top >= top and face.bottom <= top + 1024
    # This face is near the portrait's top: the square starts at the top
    # rather than reach above the picture.
    assert top == 0


def test_the_square_follows_a_face_low_in_the_picture(headshot: Image.Image) -> None:
    # The same face moved down by 200 px (backdrop above it): the square follows.
    moved = Image.new("RGB", headshot.size, headshot.getpixel((5, 5)))
    moved.paste(headshot.crop((0, 0, 1024, 1080)), (0, 200))
    face = face_in(moved)
    assert face is not None
    top = top_of(shaped(moved, Format.SQUARE), moved)
    assert top > 0  # the square moved down with the face
    assert (face.center[1] - top) / 1024 == pytest.approx(FACE_CENTER_FROM_TOP, abs=0.01)


def top_of(square: Image.Image, portrait: Image.Image) -> int:
    """Which row of the portrait the square starts at (it is a crop, not a resample)."""
    # The middle row: the top rows may be plain backdrop, alike at any offset.
    middle = np.asarray(square)[512]
    rows = np.asarray(portrait)
    return next(top for top in range(0, 257) if np.array_equal(middle, rows[top + 512]))


def test_the_round_picture_has_transparent_corners_and_a_smooth_edge(
    headshot: Image.Image,
) -> None:
    round_ = shaped(headshot, Format.ROUND)
    square = shaped(headshot, Format.SQUARE)
    assert round_.mode == "RGBA" and round_.size == (1024, 1024)
    alpha = np.asarray(round_)[..., 3]
    for corner in (alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1], alpha[30, 30]):
        assert corner == 0
    assert alpha[512, 512] == 255 and alpha[512, 2] == 255 and alpha[2, 512] == 255
    # The edge is anti-aliased: partly transparent pixels ring the circle.
    assert ((alpha > 0) & (alpha < 255)).sum() > 1000
    # Inside the circle the pixels are the square's.
    assert np.array_equal(
        np.asarray(round_)[200:800, 200:800, :3], np.asarray(square)[200:800, 200:800]
    )


def test_a_picture_without_a_face_keeps_its_top() -> None:
    blank = Image.new("RGB", (1024, 1280), (200, 200, 210))
    blank.paste((10, 10, 10), (0, 0, 1024, 5))
    assert np.asarray(shaped(blank, Format.SQUARE))[0, 0].tolist() == [10, 10, 10]


def test_a_narrow_render_still_gives_a_square_of_at_least_1024() -> None:
    small = Image.new("RGB", (768, 960), (90, 90, 90))
    assert shaped(small, Format.SQUARE).size == (1024, 1024)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("portrait", [Format.PORTRAIT]),
        ("square, round", [Format.SQUARE, Format.ROUND]),
        ("ROUND,round,portrait", [Format.ROUND, Format.PORTRAIT]),
    ],
)
def test_formats_are_read_from_a_list(text: str, expected: list[Format]) -> None:
    assert parse_formats(text) == expected


@pytest.mark.parametrize("text", ["", " , ", "portrait,oval", "jpeg"])
def test_an_unknown_or_empty_list_of_formats_is_refused_with_a_sentence(text: str) -> None:
    with pytest.raises(ValueError, match=r"format"):
        parse_formats(text)
