"""The self-check that no visible person pixel comes from outside the photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headshots.imaging.framing import Framing, reaches_outside

PHOTO = (600, 800)  # width, height
SIZE = (512, 640)


def framing(angle: float, scale: float, shift: tuple[float, float]) -> Framing:
    matrix = cv2.getRotationMatrix2D((300.0, 300.0), angle, scale)
    matrix[:, 2] += shift
    return Framing(
        matrix=matrix,
        size=SIZE,
        head_share=0.4,
        levelled_degrees=angle,
        kind="head_and_shoulders",
        fades={},
        scale=scale,
    )


def every_pixel(frame: Framing, alpha: np.ndarray) -> bool:
    """The plain reading: map every visible pixel back into the photo."""
    ys, xs = np.nonzero(alpha > 0.02)
    inverse = cv2.invertAffineTransform(frame.matrix)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    slack = 1.0 + np.ceil(1 / frame.scale)
    width, height = PHOTO
    outside = (src_x < -slack) | (src_y < -slack)
    outside |= (src_x > width - 1 + slack) | (src_y > height - 1 + slack)
    return bool(outside.any())


def photo_area(frame: Framing) -> np.ndarray:
    """1 where the output shows the photo."""
    return np.asarray(
        cv2.warpAffine(
            np.ones((PHOTO[1], PHOTO[0]), np.float32), frame.matrix, SIZE, flags=cv2.INTER_NEAREST
        )
    )


@pytest.mark.parametrize("angle", [0.0, 3.0, -7.0])
def test_a_person_inside_the_photo_passes(angle: float) -> None:
    frame = framing(angle, 1.3, (-150, 60))
    alpha = cv2.erode(photo_area(frame), np.ones((9, 9), np.uint8))
    assert alpha.any()
    assert not reaches_outside(frame, alpha, PHOTO)
    assert not every_pixel(frame, alpha)


@pytest.mark.parametrize("angle", [0.0, 3.0, -7.0])
def test_person_pixels_past_the_photos_edge_are_caught(angle: float) -> None:
    """What stretching did: the body continued below the photo's last row."""
    frame = framing(angle, 0.7, (0, -80))
    alpha = cv2.erode(photo_area(frame), np.ones((9, 9), np.uint8))
    inside_rows = np.nonzero(alpha.any(axis=1))[0]
    below = inside_rows.max() + 12
    assert below < SIZE[1]
    # A few pixels of person under the photo's end, away from any row's ends.
    alpha[below : below + 3, 250:253] = 1.0
    assert reaches_outside(frame, alpha, PHOTO)
    assert every_pixel(frame, alpha)


def test_agrees_with_mapping_every_pixel_on_random_cut_outs() -> None:
    rng = np.random.default_rng(5)
    for _ in range(40):
        frame = framing(rng.uniform(-8, 8), rng.uniform(0.7, 2.0), tuple(rng.uniform(-400, 100, 2)))
        alpha = (rng.random((SIZE[1] // 16, SIZE[0] // 16)) > 0.7).astype(np.float32)
        alpha = cv2.resize(alpha, SIZE, interpolation=cv2.INTER_NEAREST)
        assert reaches_outside(frame, alpha, PHOTO) == every_pixel(frame, alpha)
