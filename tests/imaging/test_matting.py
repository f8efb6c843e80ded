"""Matting on a synthetic photo whose true edge is known exactly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headshots.imaging.matting import (
    cut_out,
    decontaminate,
    drop_fragments,
    merge_detail,
    refine_alpha,
    weighted_blur,
)

SIZE = 480
OLD_BACKDROP = np.array([0.80, 0.25, 0.15], np.float32)  # a red curtain
NEW_BACKDROP = np.array([0.10, 0.75, 0.15], np.float32)
PERSON = np.array([0.20, 0.22, 0.35], np.float32)  # a navy jacket
CENTRE, RADIUS = (240.0, 260.0), 150.0


def true_alpha() -> np.ndarray:
    """A disc with an exact anti-aliased edge (coverage from 8x supersampling)."""
    big = SIZE * 8
    ys, xs = np.mgrid[0:big, 0:big].astype(np.float32)
    inside = ((xs + 0.5) / 8 - CENTRE[0]) ** 2 + ((ys + 0.5) / 8 - CENTRE[1]) ** 2 <= RADIUS**2
    return cv2.resize(inside.astype(np.float32), (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def photo_of(alpha: np.ndarray) -> np.ndarray:
    """The person (with some fabric texture) over the old backdrop, as uint8."""
    rng = np.random.default_rng(3)
    texture = rng.normal(0, 0.03, (SIZE, SIZE, 1)).astype(np.float32)
    person = np.clip(PERSON + texture, 0, 1)
    image = alpha[..., None] * person + (1 - alpha[..., None]) * OLD_BACKDROP
    return (image * 255 + 0.5).astype(np.uint8)


def coarse_mask(alpha: np.ndarray) -> np.ndarray:
    """What a 64 px segmenter gives back: blurry and a few pixels too wide."""
    small = cv2.resize(alpha, (64, 64), interpolation=cv2.INTER_AREA)
    wide = cv2.dilate(small, np.ones((2, 2), np.uint8))
    mask = cv2.resize(wide, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(mask, (0, 0), 4).astype(np.float32)


def distance_from_edge() -> np.ndarray:
    """Signed distance to the true edge in pixels: positive outside."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return np.hypot(xs + 0.5 - CENTRE[0], ys + 0.5 - CENTRE[1]) - RADIUS


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    alpha = true_alpha()
    return alpha, photo_of(alpha), coarse_mask(alpha)


def test_refined_edge_lands_on_the_true_edge(scene) -> None:
    alpha, image, mask = scene
    refined = refine_alpha(image.astype(np.float32) / 255, mask)
    band = np.abs(distance_from_edge()) < 12
    before = np.abs(mask - alpha)[band].mean()
    after = np.abs(refined - alpha)[band].mean()
    assert after < before / 3, (before, after)
    assert after < 0.04


def test_edge_is_soft_but_narrow(scene) -> None:
    alpha, image, mask = scene
    refined = refine_alpha(image.astype(np.float32) / 255, mask)
    distance = distance_from_edge()
    partial = (refined > 0.05) & (refined < 0.95)
    # Soft: the pixels the true edge half covers come out partly covered too.
    half_covered = (alpha > 0.2) & (alpha < 0.8)
    assert 0.2 < refined[half_covered].mean() < 0.8
    assert partial.sum() > 300
    # Narrow: no partly covered pixel further than a few pixels from the edge
    # (the coarse mask's band is about 20 pixels wide).
    assert np.abs(distance[partial]).max() < 4.5
    assert np.abs(distance[(mask > 0.05) & (mask < 0.95)]).max() > 8


def test_new_backdrop_shows_no_halo_of_the_old_one(scene) -> None:
    _, image, mask = scene
    cut = cut_out(image, mask)
    a = cut.alpha[..., None]
    composite = a * cut.foreground + (1 - a) * NEW_BACKDROP
    outside = distance_from_edge() > 2.5
    assert np.abs(composite[outside] - NEW_BACKDROP).max() < 0.03


def test_hair_fine_edges_lose_the_old_backdrop_colour() -> None:
    """Over a wide soft edge (hair), the recovered colours carry no red curtain."""
    hair = cv2.GaussianBlur(true_alpha(), (0, 0), 4)
    photo = photo_of(hair).astype(np.float32) / 255
    foreground = decontaminate(photo, hair)
    a = hair[..., None]
    cleaned = a * foreground + (1 - a) * NEW_BACKDROP
    naive = a * photo + (1 - a) * NEW_BACKDROP
    wisps = (hair > 0.1) & (hair < 0.9)
    expected = a * PERSON + (1 - a) * NEW_BACKDROP

    def extra_red(image: np.ndarray) -> np.ndarray:
        return (image[..., 0] - expected[..., 0])[wisps]

    # The naive cut-out carries the red curtain into the wisps; the cleaned
    # one looks like navy over green, as it should.
    assert np.percentile(extra_red(naive), 90) > 0.1
    assert np.percentile(extra_red(cleaned), 90) < 0.03
    assert np.abs(cleaned - expected)[wisps].mean() < 0.03


def test_covered_pixels_keep_their_exact_colours(scene) -> None:
    _, image, mask = scene
    photo = image.astype(np.float32) / 255
    refined = refine_alpha(photo, mask)
    foreground = decontaminate(photo, refined)
    covered = refined >= 0.995
    assert covered.sum() > 50_000
    np.testing.assert_array_equal(foreground[covered], photo[covered])


def test_weighted_blur_fills_a_hole_from_its_surroundings() -> None:
    image = np.zeros((200, 300, 3), np.float32)
    image[:, :150] = (1, 0, 0)
    image[:, 150:] = (0, 0, 1)
    image[80:120, 200:260] = (0, 1, 0)  # the person, to be ignored
    weight = np.ones((200, 300), np.float32)
    weight[80:120, 200:260] = 0
    filled = weighted_blur(image, weight, sigma=12)
    hole = filled[90:110, 215:245]
    np.testing.assert_allclose(hole, np.broadcast_to((0, 0, 1), hole.shape), atol=0.02)


def test_merged_detail_takes_over_inside_without_a_seam() -> None:
    mask = np.zeros((300, 300), np.float32)
    detail = np.ones((100, 120), np.float32)
    merged = merge_detail(mask, detail, left=100, top=90)
    assert merged[140, 160] == pytest.approx(1.0)
    assert merged[10, 10] == 0.0
    # The fade: no jump bigger than a few percent between neighbours.
    assert np.abs(np.diff(merged, axis=1)).max() < 0.15
    assert np.abs(np.diff(merged, axis=0)).max() < 0.15


def _portrait_with_fragments() -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """A head and shoulders with the pieces of background a segmenter leaves.

    ``alpha`` is what the cut-out holds after the close look at the head:
    the person, a lamp beside the hair (an island), a railing joined to
    the shoulder by a bridge, a wisp of hair just outside the head and a
    speck. ``scene`` is the whole photo's mask: the railing there stands
    apart from the person, the bridge and the wisp are not in it.
    """
    height, width = 600, 480
    alpha = np.zeros((height, width), np.float32)
    cv2.circle(alpha, (240, 200), 90, 1.0, -1)  # the head
    cv2.ellipse(alpha, (240, 600), (220, 200), 0, 180, 360, 1.0, -1)  # shoulders
    parts = {name: np.zeros((height, width), np.uint8) for name in ("lamp", "railing", "wisp")}
    cv2.ellipse(parts["lamp"], (420, 120), (40, 25), 0, 0, 360, 1, -1)
    cv2.rectangle(parts["railing"], (0, 430), (70, 450), 1, -1)
    bridge = np.zeros_like(parts["railing"])
    cv2.rectangle(bridge, (70, 430), (130, 450), 1, -1)
    cv2.line(parts["wisp"], (320, 150), (345, 128), 1, 3)
    scene = alpha.copy()
    scene[parts["lamp"] > 0] = 1.0
    scene[parts["railing"] > 0] = 1.0
    for piece in (parts["lamp"], parts["railing"], bridge, parts["wisp"]):
        alpha[piece > 0] = 1.0
    alpha[50:53, 60:63] = 0.8  # a speck
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    anchor = np.zeros((height, width), np.uint8)
    cv2.circle(anchor, (240, 210), 50, 1, -1)  # the face
    return alpha, scene, anchor, parts


def test_pieces_of_the_old_background_are_dropped() -> None:
    """A lamp beside the hair, a railing the close look joined to an arm, a speck:
    none is the person, and the new backdrop must not show them."""
    alpha, scene, anchor, parts = _portrait_with_fragments()
    kept = drop_fragments(alpha, scene, anchor)
    assert kept[parts["lamp"] > 0].max() < 0.02
    assert kept[parts["railing"] > 0].max() < 0.02
    assert kept[40:64, 50:74].max() < 0.02
    # The bridge goes too, up to a short stub by the shoulder.
    assert kept[430:445, 70:90].max() < 0.02


def test_the_person_and_their_hair_stay_whole() -> None:
    alpha, scene, anchor, parts = _portrait_with_fragments()
    kept = drop_fragments(alpha, scene, anchor)
    person = np.zeros_like(anchor)
    cv2.circle(person, (240, 200), 85, 1, -1)
    cv2.ellipse(person, (240, 600), (215, 195), 0, 180, 360, 1, -1)
    np.testing.assert_array_equal(kept[person > 0], alpha[person > 0])
    # A wisp of hair the close look found just outside the head is the person.
    np.testing.assert_array_equal(kept[parts["wisp"] > 0], alpha[parts["wisp"] > 0])


def test_a_body_below_something_in_front_of_it_stays() -> None:
    """A bar across the chest splits the person in the mask: the body below it still
    reaches the photo's bottom edge, and is kept."""
    alpha, scene, anchor, _ = _portrait_with_fragments()
    alpha[500:520] = 0.0
    scene[500:520] = 0.0
    kept = drop_fragments(alpha, scene, anchor)
    np.testing.assert_array_equal(kept[540:, 100:380], alpha[540:, 100:380])
