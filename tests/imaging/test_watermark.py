from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshots.imaging.faces import Box
from headshots.imaging.watermark import (
    JPEG_QUALITY,
    face_coverage,
    mark,
    usual_face,
    watermarked_preview,
)


def photo(path: Path) -> Image.Image:
    image = Image.open(path)
    image.load()
    return image


def plain_preview(image: Image.Image, max_side: int = 768) -> np.ndarray:
    """The same downscale and JPEG encoding, without the mark."""
    scale = min(1.0, max_side / max(image.size))
    size = (round(image.width * scale), round(image.height * scale))
    small = image.convert("RGB").resize(size, Image.Resampling.BICUBIC)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=JPEG_QUALITY)
    return np.asarray(Image.open(out).convert("L"), dtype=float)


def grey(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=float)


def cell_differences(
    marked: np.ndarray, plain: np.ndarray, grid: int = 4, skip: Box | None = None
) -> list[float]:
    """The mean change per cell of a grid, leaving out cells that touch ``skip``."""
    h, w = marked.shape
    cells = []
    for r in range(grid):
        for c in range(grid):
            top, bottom = r * h // grid, (r + 1) * h // grid
            left, right = c * w // grid, (c + 1) * w // grid
            if skip is not None and not (
                right <= skip.left or left >= skip.right or bottom <= skip.top or top >= skip.bottom
            ):
                continue
            cells.append(
                float(np.abs(marked[top:bottom, left:right] - plain[top:bottom, left:right]).mean())
            )
    return cells


def faded_zone(size: tuple[int, int]) -> Box:
    """Where faces usually are, with room for the fade back to the full mark."""
    face = usual_face(size)
    grow = face.width * 0.32  # half the widening, then the fade (watermark._thinned)
    return Box(face.left - grow, face.top - grow, face.width + 2 * grow, face.height + 2 * grow)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("obama.jpg", (615, 768)),  # portrait, 910 x 1137
        ("group_of_five.jpg", (768, 432)),  # landscape, 1920 x 1080
        ("grace_hopper.jpg", (512, 600)),  # already small: never enlarged
    ],
)
def test_the_preview_is_a_jpeg_no_larger_than_the_limit(
    fixtures: Path, name: str, expected: tuple[int, int]
) -> None:
    data = watermarked_preview(photo(fixtures / name))
    preview = Image.open(io.BytesIO(data))
    assert preview.format == "JPEG"
    assert preview.size == expected


def test_a_smaller_limit_is_respected(fixtures: Path) -> None:
    preview = Image.open(io.BytesIO(watermarked_preview(photo(fixtures / "obama.jpg"), 300)))
    assert max(preview.size) == 300


def test_the_preview_carries_no_metadata_of_the_original(fixtures: Path) -> None:
    original = photo(fixtures / "obama.jpg")
    assert "exif" in original.info and "icc_profile" in original.info  # the fixture has both
    preview = Image.open(io.BytesIO(watermarked_preview(original)))
    assert not preview.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp"} & set(preview.info)
    assert original.info["exif"][:64] not in watermarked_preview(original)


@pytest.mark.parametrize("name", ["obama.jpg", "group_of_five.jpg", "grace_hopper.jpg"])
def test_no_part_of_the_preview_is_free_of_the_mark(fixtures: Path, name: str) -> None:
    image = photo(fixtures / name)
    marked = grey(watermarked_preview(image))
    plain = plain_preview(image)
    # An 8 x 8 grid: every cell outside the face's zone, each a 64th of the
    # picture, carries the full mark.
    cells = cell_differences(marked, plain, grid=8, skip=faded_zone(marked.shape[::-1]))
    assert len(cells) >= 20
    assert min(cells) > 6, cells
    # The face's own cells carry the mark too, only fainter.
    assert min(cell_differences(marked, plain)) > 1


@pytest.mark.parametrize("colour", [(250, 250, 250), (12, 12, 16), (128, 128, 128)])
def test_the_mark_shows_on_white_black_and_grey_backdrops(colour: tuple[int, int, int]) -> None:
    image = Image.new("RGB", (1024, 1280), colour)
    marked = grey(watermarked_preview(image))
    plain = plain_preview(image)
    assert min(cell_differences(marked, plain, grid=8, skip=faded_zone(marked.shape[::-1]))) > 6


def test_the_face_is_thinly_marked_so_a_person_can_judge_it(fixtures: Path) -> None:
    # A 1024 x 1280 headshot-shaped picture with its face where the framing
    # rules put it; the face's box is the one a detector reports for it.
    image = photo(fixtures / "obama.jpg").convert("RGB").resize((768, 960))
    plain = np.asarray(image)
    face = Box(283, 72, 236, 236)
    full = face_coverage(plain, mark(plain, face=face, face_strength=1.0), face)
    thin = face_coverage(plain, mark(plain, face=face), face)
    # At full strength a third of the face moves visibly; thinned, under a
    # sixth does, and the mark is still there (a crop of the face is not clean).
    assert full > 0.25
    assert 0.01 < thin < full / 2


def test_a_known_face_is_where_the_mark_thins(fixtures: Path) -> None:
    image = Image.new("RGB", (768, 960), (128, 128, 128))
    plain = np.asarray(image)
    low_left = Box(40, 600, 200, 220)
    marked = mark(plain, face=low_left)
    # The given face is thinly marked; where faces usually are, the full mark.
    assert face_coverage(plain, marked, low_left) < 0.5 * face_coverage(
        plain, marked, usual_face((768, 960))
    )


def test_the_photo_stays_easy_to_judge(fixtures: Path) -> None:
    image = photo(fixtures / "obama.jpg")
    marked = grey(watermarked_preview(image))
    plain = plain_preview(image)
    # The mark is translucent, so the picture's structure survives: an opaque
    # mark of the same layout moves pixels by ~38 levels on average and drops
    # the correlation with the unmarked preview to ~0.5.
    assert np.abs(marked - plain).mean() < 20
    assert np.corrcoef(marked.ravel(), plain.ravel())[0, 1] > 0.85


def test_the_text_of_the_mark_can_be_chosen(fixtures: Path) -> None:
    image = photo(fixtures / "grace_hopper.jpg")
    assert watermarked_preview(image, text="SAMPLE") != watermarked_preview(image)


@pytest.mark.parametrize("mode", ["RGBA", "L", "P"])
def test_any_image_mode_becomes_a_colour_jpeg(fixtures: Path, mode: str) -> None:
    image = photo(fixtures / "grace_hopper.jpg").convert(mode)
    preview = Image.open(io.BytesIO(watermarked_preview(image)))
    assert preview.mode == "RGB"
    assert preview.size == image.size
