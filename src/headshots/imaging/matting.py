"""Matting: a clean cut-out of the person from the coarse segmentation mask.

The selfie segmenter sees the photo at 256 px, so its mask is soft and a
few pixels off at full size. :func:`cut_out` snaps it to the photo's own
edges with a guided filter, then recovers the person's true colours along
the edge, where the old background shines through (hair, shoulders): without
that step, putting the person on a new backdrop leaves a fringe of the old
one around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
Pixels = npt.NDArray[np.uint8]

# Rec. 601 luma weights: the fallback guide when person and background
# differ in brightness more than in hue.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# The edge's own colours are estimated on at most this many pixels on the
# long side (docs/decisions/0013 has the timings and the halo figures).
MATTE_SIDE = 512
# Pieces of the old background are looked for on at most this many pixels
# on the long side; what the close look at the head added further than
# FRAGMENT_REACH (a share of the long side) outside the whole photo's
# outline of the person may be a bridge to such a piece.
FRAGMENT_SIDE = 512
FRAGMENT_REACH = 0.015


@dataclass(frozen=True)
class Cutout:
    """The person as straight (not premultiplied) colours and their coverage.

    ``foreground`` is (H, W, 3) float32 in 0..1 and ``alpha`` (H, W) float32
    in 0..1, both at the photo's size. Where alpha is 1 the foreground is the
    photo itself, untouched.
    """

    foreground: FloatArray
    alpha: FloatArray


def cut_out(
    image: Pixels,
    mask: FloatArray,
    scene: FloatArray | None = None,
    anchor: npt.NDArray[np.uint8] | None = None,
) -> Cutout:
    """Refine ``mask`` against ``image`` and decontaminate the edge colours.

    With ``scene`` (the segmenter's mask of the whole photo) and ``anchor``
    (non-zero on the face), pieces of the old background that are not the
    person are dropped first (:func:`drop_fragments`).
    """
    photo = image.astype(np.float32) * (1 / 255)
    alpha = refine_alpha(photo, mask)
    if scene is not None and anchor is not None:
        alpha = drop_fragments(alpha, scene, anchor)
    return Cutout(foreground=decontaminate(photo, alpha), alpha=alpha)


def drop_fragments(
    alpha: FloatArray, scene: FloatArray, anchor: npt.NDArray[np.uint8]
) -> FloatArray:
    """``alpha`` without the pieces of the old background that the segmenter took for the person.

    A blurred lamp beside the hair, a railing beside an arm: the segmenter
    marks them as person, either apart from the person (an island) or, in
    its close look at the head, joined to them. What is kept is what is
    connected to the face (``anchor``), or reaches the photo's bottom edge
    as a body does, in ``alpha`` and in the mask of the whole photo
    (``scene``); a piece that the whole photo's mask holds apart from the
    person stays apart, and what the close look added far from the person's
    outline is dropped where it touches such a piece (the bridge that
    joined a railing to an arm). Hair wisps and the soft edge are never
    counted as pieces: only what is solidly covered is, and only those
    pieces, a little widened, are taken out.
    """
    height, width = alpha.shape
    scale = min(1.0, FRAGMENT_SIDE / max(height, width))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))

    def small(plane: npt.NDArray[Any]) -> FloatArray:
        return np.asarray(cv2.resize(plane.astype(np.float32), size, interpolation=cv2.INTER_AREA))

    face = small(anchor) > 0.5
    if not face.any():
        return alpha
    whole = small(scene) > 0.5
    person = _attached(whole, face)
    if not person.any():
        return alpha
    foreign = whole & ~person
    # What the close look or the refinement added well outside the whole
    # photo's outline of the person, where it touches a foreign piece.
    reach = max(1, round(FRAGMENT_REACH * max(size)))
    near = cv2.dilate(person.astype(np.uint8), _disc(reach)) > 0
    solid = small(alpha) > 0.5
    stray = solid & ~near & ~foreign
    touching = cv2.dilate(foreign.astype(np.uint8), _disc(1)) > 0
    bridges = _attached(stray, touching)
    kept = _attached(solid & ~foreign & ~bridges, face)
    # Islands near the person (a lock of hair the small size cut off) stay;
    # those away from them, the foreign pieces and the bridges go.
    around = cv2.dilate(kept.astype(np.uint8), _disc(reach)) > 0
    islands = solid & ~kept & ~foreign & ~bridges
    dropped = (solid & foreign) | bridges | (islands & ~_attached(islands, around, bottom=False))
    if dropped.any():
        # Widened by a couple of pixels to take the piece's soft edge with it.
        wide = cv2.dilate(dropped.astype(np.uint8), _disc(2)).astype(np.float32)
        soft = cv2.GaussianBlur(wide, (0, 0), 1.0)
        gone = np.asarray(cv2.resize(soft, (width, height), interpolation=cv2.INTER_LINEAR))
        alpha = np.asarray(alpha * (1 - np.clip(gone * 1.5, 0.0, 1.0)), np.float32)
    # At full size, what lies apart from the person and away from them goes
    # too: a faint glow left of a piece, a speck too small to see at the
    # small size (hair wisps lie within reach of the head, and stay).
    held = cv2.resize(around.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST) > 0
    present = alpha > 0.02
    return np.asarray(alpha * _attached(present, held & present, bottom=False), np.float32)


def _attached(
    region: npt.NDArray[np.bool_], seed: npt.NDArray[np.bool_], bottom: bool = True
) -> npt.NDArray[np.bool_]:
    """The connected parts of ``region`` that overlap ``seed`` (or reach the bottom edge widely).

    With ``bottom``, a part that reaches the photo's bottom edge over at
    least a tenth of its width is kept too: a body cut by the frame below
    something in front of it, not a piece of the background.
    """
    count, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(region)
    keep = np.zeros(count, bool)
    keep[np.unique(labels[seed & region])] = True
    if bottom:
        keep |= np.bincount(labels[-1], minlength=count) >= 0.1 * region.shape[1]
    keep[0] = False
    return np.asarray(keep[labels], bool)


def _disc(radius: int) -> npt.NDArray[np.uint8]:
    return np.asarray(
        cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)), np.uint8
    )


def decontaminate(photo: FloatArray, alpha: FloatArray) -> FloatArray:
    """The person's own colours along the edge, where the old background shines through.

    pymatting's multilevel foreground estimation solves ``photo = alpha * F
    + (1 - alpha) * B`` for smooth F and B over the whole photo, so a wisp
    of hair or the rim of an ear takes the colour of the hair or skin next
    to it, not of the wall behind. It runs at most MATTE_SIDE pixels on the
    long side: edge colours are smooth, and the cost grows with the pixels.
    Fully covered pixels keep their photo value exactly.
    """
    import pymatting  # numba compiles it on first use: only the studio engine pays

    height, width = alpha.shape
    scale = min(1.0, MATTE_SIDE / max(height, width))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small_photo = cv2.resize(photo, size, interpolation=cv2.INTER_AREA).astype(np.float64)
    small_alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA).astype(np.float64)
    colours = pymatting.estimate_foreground_ml(small_photo, small_alpha)
    own = np.asarray(
        cv2.resize(
            np.asarray(colours, np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        ),
        np.float32,
    )
    covered = _smoothstep(0.9, 0.995, alpha)[..., None]
    return np.clip(covered * photo + (1 - covered) * own, 0.0, 1.0).astype(np.float32)


def refine_alpha(photo: FloatArray, mask: FloatArray) -> FloatArray:
    """A soft alpha that follows the photo's edges, from a coarse person mask.

    ``photo`` is (H, W, 3) float32 in 0..1; ``mask`` the person probability
    at the same size.
    """
    height, width = mask.shape
    long_side = max(height, width)
    guide = separating_guide(photo, mask)
    mask = colour_vote(photo, mask)
    # The window must span the segmenter's blur (one 256 px model pixel is
    # about 6 px at a 1536 px photo) to pull the edge onto the photo's edge.
    radius = max(2, round(long_side / 160))
    snapped = np.asarray(
        cv2.ximgproc.guidedFilter(guide, mask.astype(np.float32), radius, 2e-3), np.float32
    )
    # Tighten the wide, uncertain band to a few pixels, leaning slightly
    # inwards: a thin lost edge is invisible, a thin band of old background
    # is a halo.
    alpha = _smoothstep(0.42, 0.78, snapped)
    # A second, small pass gives the hard threshold back a natural soft edge
    # that follows hair and fabric rather than a smooth curve.
    fine = max(1, round(long_side / 640))
    soft = cv2.ximgproc.guidedFilter(guide, alpha, fine, 1e-3)
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


def colour_vote(photo: FloatArray, mask: FloatArray) -> FloatArray:
    """Move the uncertain band of ``mask`` towards what the colours say.

    Each pixel of the band is compared with the person's colours and the
    background's colours just around it: an ear that the coarse mask half
    lost is skin next to skin, not curtain. Where the two sides look alike
    the colours cannot tell, and the mask is kept.
    """
    rows, cols = np.nonzero((mask > 0.02) & (mask < 0.98))
    if rows.size == 0:
        return mask
    sigma = max(mask.shape) / 100
    sure_person = np.clip(mask * 20 - 19, 0.0, 1.0)
    sure_backdrop = np.clip(1 - mask * 20, 0.0, 1.0)
    person = weighted_blur(photo, sure_person, sigma)[rows, cols]
    backdrop = weighted_blur(photo, sure_backdrop, sigma)[rows, cols]
    seen = photo[rows, cols]
    to_person = np.square(seen - person).sum(1)
    to_backdrop = np.square(seen - backdrop).sum(1)
    vote = to_backdrop / (to_person + to_backdrop + 1e-4)
    apart = np.clip(np.square(person - backdrop).sum(1) / 0.03, 0.0, 1.0)
    voted = mask.copy()
    before = voted[rows, cols]
    # A vote for the person only counts next to them: skin-coloured wood
    # further out must not become part of the person.
    near = np.where(vote > before, _nearness(sure_person, sigma)[rows, cols], 1.0)
    voted[rows, cols] = before + 0.75 * apart * near * (vote - before)
    return voted


def _nearness(weight: FloatArray, sigma: float) -> FloatArray:
    """About 1 within a couple of ``sigma`` of where ``weight`` is 1, falling to 0."""
    height, width = weight.shape
    scale = min(1.0, 3.0 / sigma)
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    spread = cv2.GaussianBlur(small, (0, 0), 3.0)
    near = cv2.resize(np.clip(spread * 8, 0.0, 1.0), (width, height))
    return np.asarray(near, np.float32)


def separating_guide(photo: FloatArray, mask: FloatArray) -> FloatArray:
    """One channel in which person and background differ most.

    A colour guide would follow every edge but costs ten times a grey one
    here; projecting the colours onto the axis between the person's mean
    colour and the background's keeps most of its edge contrast (a dark
    suit on a red curtain is clear in this channel and weak in plain luma).
    """
    small = cv2.resize(photo, None, fx=0.125, fy=0.125, interpolation=cv2.INTER_AREA)
    weight = cv2.resize(mask, (small.shape[1], small.shape[0]), interpolation=cv2.INTER_AREA)
    pixels = small.reshape(-1, 3)
    inside = weight.reshape(-1, 1)
    person = (pixels * inside).sum(0) / max(float(inside.sum()), 1e-3)
    backdrop = (pixels * (1 - inside)).sum(0) / max(float((1 - inside).sum()), 1e-3)
    axis = person - backdrop
    if float(np.linalg.norm(axis)) < 0.05:
        axis = _LUMA.copy()
    axis = np.abs(axis) / float(np.abs(axis).sum())
    # Keep some luma in the mix: the global axis misses local edges (a face
    # against a flag) that brightness still shows.
    weights = (0.6 * axis + 0.4 * _LUMA).astype(np.float32)
    guide: FloatArray = np.ascontiguousarray(photo @ weights)
    return guide


def merge_detail(mask: FloatArray, detail: FloatArray, left: int, top: int) -> FloatArray:
    """``mask`` with a sharper mask of one region (the head) blended in.

    The segmenter sees the whole photo at 256 px; run again on a crop around
    the head, it sees hair and ears several times larger. The crop's mask
    takes over inside the crop and fades out towards its inner borders, so
    no seam shows where the two meet.
    """
    height, width = detail.shape
    fade = max(4, round(min(height, width) * 0.08))
    ramp_y = _ramp(height, fade, top > 0, top + height < mask.shape[0])
    ramp_x = _ramp(width, fade, left > 0, left + width < mask.shape[1])
    weight = np.minimum(ramp_y[:, None], ramp_x[None, :])
    merged = mask.copy()
    region = merged[top : top + height, left : left + width]
    region += weight * (detail - region)
    return merged


def _ramp(length: int, fade: int, fade_start: bool, fade_end: bool) -> FloatArray:
    ramp = np.ones(length, dtype=np.float32)
    steps = np.linspace(0.0, 1.0, min(fade, length), dtype=np.float32)
    if fade_start:
        ramp[: steps.size] = np.minimum(ramp[: steps.size], steps)
    if fade_end:
        ramp[length - steps.size :] = np.minimum(ramp[length - steps.size :], steps[::-1])
    return ramp


def weighted_blur(image: FloatArray, weight: FloatArray, sigma: float) -> FloatArray:
    """Gaussian blur of ``image`` that counts each pixel by ``weight``.

    Holes (weight 0) fill in from their surroundings, so blurring the
    background with the person's weight at 0 gives the background behind
    them. Computed at a scale where the blur is a few pixels wide: the
    result is smooth, so the small grid loses nothing.
    """
    height, width = weight.shape
    scale = min(1.0, 3.0 / max(sigma, 1e-3))
    size = (max(2, round(width * scale)), max(2, round(height * scale)))
    small_image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    small_weight = cv2.resize(weight.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small_sigma = max(sigma * scale, 0.5)
    total = cv2.GaussianBlur(small_weight, (0, 0), small_sigma)
    per_pixel = small_weight if small_image.ndim == 2 else small_weight[..., None]
    summed = cv2.GaussianBlur(small_image * per_pixel, (0, 0), small_sigma)
    # Where no weight reaches at all, fall back to the plain blur.
    plain = cv2.GaussianBlur(small_image, (0, 0), small_sigma)
    if small_image.ndim == 3:
        total = total[..., None]
    # Even a faint reach of weight is a better guess than the plain blur.
    reach = np.clip(total * 1e4, 0.0, 1.0)
    filled = summed / np.maximum(total, 1e-9)
    blurred = reach * filled + (1 - reach) * plain
    result = cv2.resize(blurred, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(result, dtype=np.float32).reshape(image.shape)


def _smoothstep(low: float, high: float, values: FloatArray) -> FloatArray:
    t = np.clip((values - low) * (1 / (high - low)), 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)
