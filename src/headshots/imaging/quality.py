"""Measures of what a person sees in a headshot, for the studio engine's self-check and bench/.

Each measure turns a defect that a look once found into a number with a
limit (docs/decisions/0013-studio-headshots.md):

- :func:`copied_rows`: rows that copy the row next to them while holding
  detail, the streaks left when a photo's last row is stretched to fill a
  frame. Natural photos and painted backdrops never hold more than a few.
- :func:`halo`: at the edge of the cut-out, how far the composite strays
  from a mix of the person's nearby colour and the new backdrop: a pale
  ring of the old background, a coloured fringe.
- :func:`skin_delta_e`: how far the grade moved the skin (cheeks and
  forehead, CIELAB, read at the same spots of the face) from the selfie's.
- :func:`variation_distance`: how different two variations look, as the
  mean CIELAB difference of small copies.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Pixels = npt.NDArray[np.uint8]

# Rows count as copied when their difference from the next row (after the
# best shift of one pixel either way, for a slightly turned frame) is under
# COPY_RATIO of the row's own change from pixel to pixel, and that change is
# over COPY_DETAIL levels (a smooth backdrop with grain has rows alike but
# no detail). A photo's last row repeated and turned 3 degrees measures
# 0.05-0.1; real photos, long locs and pinstripes included, stay over 0.15
# in any run longer than a few rows.
COPY_RATIO = 0.12
COPY_DETAIL = 2.0
# A run of copied rows this long (share of the image height) is a stretch.
# The set's photos and studio outputs reach 3 rows at 1280 px.
COPY_RUN_LIMIT = 0.012

# Mesh points at the middle of each cheek and of the forehead, where skin
# tone is read; patches of this share of the face's height around them.
SKIN_POINTS = (50, 280, 151)
SKIN_PATCH = 0.05
# How the grade may move the skin (docs/decisions/0013): median and largest.
SKIN_DELTA_E_MEDIAN, SKIN_DELTA_E_MAX = 3.0, 5.0
# How closely a headshot's face, mapped back onto the selfie, must match the
# selfie's face (ECC correlation of brightness over the face) to be taken as
# the same face framed; the set's headshots match at 0.98 or more.
MATCHED_CORRELATION = 0.9

# A composite pixel at the cut-out's edge is part of a halo when its colour
# lies this far (CIELAB units) from every mix of the person's nearby colour
# and the backdrop behind it.
HALO_DELTA_E = 12.0
# The share of edge pixels that may stray that far before the edge counts
# as haloed; clean cut-outs of the set stay under a third of it.
HALO_LIMIT = 0.06

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def copied_rows(pixels: Pixels) -> int:
    """The longest run of rows that copy their neighbour while holding detail."""
    grey = np.asarray(pixels, np.float32) @ _LUMA if pixels.ndim == 3 else pixels.astype(np.float32)
    upper, lower = grey[:-1, 1:-1], grey[1:]
    difference = np.minimum.reduce(
        [np.abs(upper - lower[:, shift : shift + upper.shape[1]]).mean(1) for shift in (0, 1, 2)]
    )
    detail = np.abs(np.diff(grey, axis=1)).mean(1)[:-1]
    copied = (difference < COPY_RATIO * detail) & (detail > COPY_DETAIL)
    longest = run = 0
    for flag in copied:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return longest


def stretched(pixels: Pixels) -> bool:
    """Whether an image holds a run of copied rows (or columns) long enough to see."""
    limit = COPY_RUN_LIMIT * max(pixels.shape[:2])
    turned = np.ascontiguousarray(np.swapaxes(pixels, 0, 1))
    return max(copied_rows(pixels), copied_rows(turned)) > limit


def lab(pixels: Pixels | FloatArray) -> FloatArray:
    """CIELAB (L 0..100) of sRGB pixels given as uint8 or floats in 0..1."""
    as_float = (
        pixels.astype(np.float32) * (1 / 255)
        if pixels.dtype == np.uint8
        else np.asarray(pixels, np.float32)
    )
    return np.asarray(cv2.cvtColor(np.clip(as_float, 0, 1), cv2.COLOR_RGB2LAB), np.float32)


def skin_tone(pixels: Pixels, landmarks: npt.NDArray[np.floating[Any]]) -> FloatArray:
    """Mean CIELAB of the cheeks and forehead, from mesh landmarks in these pixels."""
    height, width = pixels.shape[:2]
    face = float(np.hypot(*(landmarks[152, :2] - landmarks[10, :2])))
    radius = max(1, round(face * SKIN_PATCH))
    mask = np.zeros((height, width), np.uint8)
    for point in SKIN_POINTS:
        x, y = (round(float(v)) for v in landmarks[point, :2])
        cv2.circle(mask, (x, y), radius, (1,), -1)
    # Only inside the face's outline: on a turned head a cheek's patch
    # would otherwise take in the background beyond it.
    outline = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(np.round(landmarks[:, :2]).astype(np.int32))
    cv2.fillConvexPoly(outline, hull, (1,))
    inner = np.asarray(
        cv2.erode(outline, np.ones((3, 3), np.uint8), iterations=max(1, radius // 2)), np.uint8
    )
    mask &= inner
    values = lab(pixels)[mask > 0]
    if values.size == 0:
        raise ValueError("The skin patches lie outside the image.")
    return np.asarray(values.mean(0), np.float32)


def skin_delta_e(
    selfie: Pixels,
    selfie_landmarks: npt.NDArray[np.floating[Any]],
    output: Pixels,
    output_landmarks: npt.NDArray[np.floating[Any]],
) -> float:
    """Delta-E76 between the skin tone of the selfie and of a headshot made from it.

    The skin is read at the same spots of the face in both: the selfie's
    points, carried into the headshot by :func:`matched_landmarks`. Read at
    the points of the mesh found again in the headshot instead, a face the
    mesh reads unsteadily (small, turned far aside, looking up) puts a
    cheek's patch on skin in one picture and on hair or backdrop in the
    other, and the measure reports a change of place as a change of colour.
    """
    matched = matched_landmarks(selfie, selfie_landmarks, output, output_landmarks)
    if matched is None:
        raise ValueError("The face in the headshot could not be matched to the selfie's.")
    before = skin_tone(selfie, selfie_landmarks)
    after = skin_tone(output, matched)
    return float(np.linalg.norm(after - before))


def matched_landmarks(
    selfie: Pixels,
    selfie_landmarks: npt.NDArray[np.floating[Any]],
    output: Pixels,
    output_landmarks: npt.NDArray[np.floating[Any]],
) -> FloatArray | None:
    """The selfie's mesh carried into a headshot made from it, or None.

    A studio headshot is the photo turned, scaled and moved. The two
    meshes give that map roughly (a robust fit: a mesh read again can
    misplace its points by several percent of the face); the pictures
    themselves then give it exactly: the headshot is mapped back onto the
    selfie and aligned to it over the face by ECC, which a colour grade
    does not mislead (it matches brightness patterns up to gain and
    offset). None when the face does not align (correlation under
    MATCHED_CORRELATION): then it is not the selfie's face as framed.
    """
    source = np.ascontiguousarray(selfie_landmarks[:, :2], np.float32)
    target = np.ascontiguousarray(output_landmarks[:, :2], np.float32)
    tall = float(np.hypot(*(target[152] - target[10])))
    rough, _ = cv2.estimateAffinePartial2D(
        source, target, method=cv2.RANSAC, ransacReprojThreshold=max(2.0, 0.05 * tall)
    )
    if rough is None:
        return None
    height, width = selfie.shape[:2]
    back = cv2.warpAffine(
        np.ascontiguousarray(output), cv2.invertAffineTransform(rough), (width, height)
    )
    face = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(face, cv2.convexHull(np.round(source).astype(np.int32)), (255,))
    grey_selfie = np.asarray(
        cv2.cvtColor(np.ascontiguousarray(selfie), cv2.COLOR_RGB2GRAY), np.uint8
    )
    grey_back = np.asarray(cv2.cvtColor(back, cv2.COLOR_RGB2GRAY), np.uint8)
    correction = np.eye(2, 3, dtype=np.float32)
    correlation = 0.0
    # Coarse to fine: at a quarter size a mesh misread by a tenth of the
    # face is a few pixels off, within ECC's reach; the coarse steps are
    # left out where the face would be too small in them to align.
    tall = float(np.hypot(*(source[152] - source[10])))
    for scale in [s for s in (0.25, 0.5) if tall * s >= 48] + [1.0]:
        size = (max(8, round(width * scale)), max(8, round(height * scale)))

        def at_scale(image: Pixels, size: tuple[int, int] = size) -> Pixels:
            return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)

        guess = correction.copy()
        guess[:, 2] *= scale
        try:
            correlation, found = cv2.findTransformECC(
                at_scale(grey_selfie).astype(np.float32),
                at_scale(grey_back).astype(np.float32),
                guess,
                cv2.MOTION_AFFINE,
                (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6),
                at_scale(face),
                5,
            )
        except cv2.error:
            if scale < 1.0:
                continue
            return None
        correction = np.asarray(found, np.float32)
        correction[:, 2] /= scale
    if correlation < MATCHED_CORRELATION:
        return None
    in_back = source @ correction[:, :2].T + correction[:, 2]
    carried = np.array(selfie_landmarks, np.float32, copy=True)
    carried[:, :2] = in_back @ rough[:, :2].T.astype(np.float32) + rough[:, 2].astype(np.float32)
    return carried


def halo(
    composite: FloatArray, alpha: FloatArray, backdrop: FloatArray, old_background: FloatArray
) -> float:
    """The share of the cut-out's edge that shows the photo's old background.

    All arrays are at the output's size: ``composite``, ``backdrop`` and
    ``old_background`` (the photo's background near the person, with the
    person taken out) are (H, W, 3) floats in 0..1, ``alpha`` the person's
    coverage. An edge pixel (coverage between 0.03 and 0.97) is clean when
    its colour is a mix of the person's colour nearby and the new backdrop.
    It is part of a halo when it strays from every such mix by more than
    HALO_DELTA_E and lies closer to the old background than to those mixes:
    a pale ring from a bright wall, a fringe of a flag's colour.
    """
    solid = (alpha > 0.97).astype(np.float32)
    edge = (alpha > 0.03) & (alpha < 0.97)
    if not edge.any() or not solid.any():
        return 0.0
    sigma = max(alpha.shape) / 160
    person = _weighted_mean(composite, solid, sigma)
    rows, cols = np.nonzero(edge)
    seen = lab(composite[rows, cols][None])[0]
    near = lab(person[rows, cols][None])[0]
    behind = lab(backdrop[rows, cols][None])[0]
    old = lab(old_background[rows, cols][None])[0]
    along = behind - near
    length = np.maximum((along * along).sum(1, keepdims=True), 1e-6)
    t = np.clip(((seen - near) * along).sum(1, keepdims=True) / length, 0.0, 1.0)
    off_mix = np.linalg.norm(seen - (near + t * along), axis=1)
    to_old = np.linalg.norm(seen - old, axis=1)
    return float(np.mean((off_mix > HALO_DELTA_E) & (to_old < off_mix)))


def _weighted_mean(image: FloatArray, weight: FloatArray, sigma: float) -> FloatArray:
    """The mean of ``image`` around each pixel, counting each by ``weight``; on a small grid."""
    height, width = weight.shape
    scale = min(1.0, 2.0 / sigma)
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small_weight = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_sigma = max(0.5, sigma * scale)
    total = cv2.GaussianBlur(small_weight, (0, 0), small_sigma)
    summed = cv2.GaussianBlur(small_image * small_weight[..., None], (0, 0), small_sigma)
    mean = summed / np.maximum(total, 1e-6)[..., None]
    return np.asarray(cv2.resize(mean, (width, height), interpolation=cv2.INTER_LINEAR), np.float32)


def variation_distance(a: Pixels, b: Pixels) -> float:
    """Mean Delta-E76 between small copies of two variations: what a glance tells apart."""
    size = (64, 80)
    small_a = np.asarray(
        cv2.resize(np.ascontiguousarray(a), size, interpolation=cv2.INTER_AREA), np.uint8
    )
    small_b = np.asarray(
        cv2.resize(np.ascontiguousarray(b), size, interpolation=cv2.INTER_AREA), np.uint8
    )
    return float(np.linalg.norm(lab(small_a) - lab(small_b), axis=2).mean())
