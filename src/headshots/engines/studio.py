"""The offline studio engine: a retoucher's work on the real photo.

No generative model runs here, and the engine says so. It keeps the person's
own pixels and changes what a careful retoucher would: the framing (a
headshot crop, the head levelled), the background (the person cut out and
set on the preset's backdrop), the light (a soft key from one side, fill and
a rim light on the edge) and the colour grade. Clothes stay as they are.

Each seed picks one variation: how tight the crop is, which side the light
comes from and at what angle, and the tone of the backdrop. Seeds that
differ in their last two bits always differ in light side and crop, so the
four consecutive seeds of an order look visibly different. Work shared by
the seeds (the cut-out, the defocused background) is done once per call.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from headshots.config import Settings
from headshots.engines.base import (
    EngineDefaults,
    EngineFailure,
    Failed,
    Outcome,
    Rendered,
    Shape,
    Size,
    check_seeds,
)
from headshots.imaging import quality
from headshots.imaging.faces import Face, segment_person
from headshots.imaging.framing import (
    Framing,
    Subject,
    face_height,
    frame,
    photo_fade,
    reaches_outside,
    subject_of,
)
from headshots.imaging.matting import Cutout, cut_out, merge_detail, weighted_blur
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import RGB, StudioLook, Style

FloatArray = npt.NDArray[np.float32]

BACKDROPS = ("solid", "gradient", "radial", "blur")
# Output sizes the engine accepts, per side.
MIN_SIDE, MAX_SIDE = 256, 4096

# Two of a style's four variations must differ by at least this mean
# CIELAB difference at a glance (imaging.quality.variation_distance); the
# seed plan below keeps them further apart than that.
VARIATION_MIN_DISTANCE = 3.0
# How far (CIELAB Delta-E) the grade may move the skin of the cheeks and
# forehead before the head is pulled back towards its own tone; under the
# limits of imaging.quality with room for the light's own shaping.
SKIN_SHIFT = 1.5

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# Backdrop tone per corner of the seed grid (seed & 3), -1 darker .. 1
# lighter, each a step of TONE_STEP in CIELAB lightness; a backdrop lighter
# than LIGHT_BACKDROP only goes darker, by a step at most, and a solid
# one varies by how much light falls off towards its corners (at most to
# SOLID_CORNER of its colour).
_TONES = (-1.0, 0.35, 1.0, -0.35)
TONE_STEP = 12.0
LIGHT_BACKDROP = 85.0
SOLID_CORNER = 0.62
# How far the key light's sweep across a solid backdrop darkens its far
# edge (a share of the way to SOLID_CORNER), and how much more on the
# variation of the darkest tone.
SWEEP, SWEEP_DARK = 0.15, 0.55


@dataclass(frozen=True)
class Variation:
    """What one seed varies."""

    seed: int
    # Multiplies the preset's head share: above 1 is a closer frame.
    tightness: float
    # -1: the key light comes from the left of the picture, 1: from the right.
    light_side: int
    # Degrees above the horizontal the key light comes from.
    light_angle: float
    # Multiplies the preset's fill: below 1 is a stronger light ratio
    # (deeper shadow side), above 1 a flatter one.
    fill: float
    # -1 .. 1: darker or lighter backdrop than the preset's colour.
    tone: float
    # Where the face sits across the frame, as a share of its width from the
    # centre line: positive is right of centre.
    shift: float = 0.0

    def as_details(self) -> dict[str, Any]:
        return {
            "crop_tightness": round(self.tightness, 3),
            "horizontal_shift": round(self.shift, 3),
            "light_side": "left" if self.light_side < 0 else "right",
            "light_angle": round(self.light_angle, 1),
            "light_fill": round(self.fill, 3),
            "background_tone": round(self.tone, 3),
        }


def plan_variation(seed: int) -> Variation:
    """The variation a seed stands for; the same seed always gives the same one."""
    rng = random.Random(seed)
    # The two lowest bits choose the corner of a 2x2 grid (light side x
    # framing distance) so any four consecutive seeds cover all four; the
    # rest is jitter. The light ratio follows the same two bits crosswise,
    # and each corner has a backdrop tone of its own (_TONES), furthest
    # apart between corners that share a framing distance: a photo too
    # tight to vary the framing still gives four pictures apart.
    close = (seed >> 1) & 1
    side = seed & 1
    low, high = (1.1, 1.16) if close else (0.84, 0.9)
    contrasty = side ^ close
    return Variation(
        seed=seed,
        tightness=rng.uniform(low, high),
        light_side=1 if side else -1,
        light_angle=rng.uniform(20.0, 50.0),
        fill=rng.uniform(0.55, 0.7) if contrasty else rng.uniform(1.15, 1.3),
        tone=_TONES[seed & 3] * rng.uniform(0.9, 1.0),
        # The face moves a little away from the key light, as a photographer
        # leaves room on the lit side: two variations that share a frame
        # still differ in composition, not only in light.
        shift=rng.uniform(0.035, 0.06) * (-1 if side else 1),
    )


@dataclass(frozen=True)
class _Prepared:
    """Work shared by every seed of one generate() call."""

    # The person's premultiplied colour and coverage as one (H, W, 4)
    # array: one warp moves both.
    layers: FloatArray
    alpha: FloatArray
    # The photo's background near the person, the person taken out: what
    # a halo would show (imaging.quality.halo).
    old_background: FloatArray
    backdrop_photo: FloatArray | None
    face_luma: float
    photo_size: Size
    subject: Subject


class StudioEngine(EngineDefaults):
    """Offline, CPU-only, non-generative headshots from the real photo."""

    name: ClassVar[str] = "studio"
    description: ClassVar[str] = (
        "Studio (offline, CPU only, no generative AI): keeps your real photo and "
        "retouches framing, background, light and colour; it does not change clothes."
    )
    generative: ClassVar[bool] = False
    # A new seed changes the light and crop, never the face.
    rerolls_help: ClassVar[bool] = False
    repairs_crop: ClassVar[bool] = False
    # The real photo is kept, clothes included: no style can dress the person.
    changes_clothes: ClassVar[bool] = False
    # The backdrop is drawn, so it can be drawn in any colour.
    takes_backdrop_colour: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def shape(self) -> Shape:
        # One seed per call and about one call per core: the work a style's
        # seeds share (segmentation, matting) is kept with the selfie, so
        # each seed's image arrives as soon as it is made.
        return Shape(calls=self.settings.studio_calls or os.cpu_count() or 1, batch=1)

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        check_seeds(seeds)
        _check_size(size)
        if style.look.backdrop not in BACKDROPS:
            raise EngineFailure(
                f"The style {style.id!r} asks for a backdrop the studio engine does not have."
            )
        started = time.perf_counter()
        # Every seed of every style shares one cut-out; the styles set in
        # the photo's own room (blurred) share that room too.
        shared = selfie.shared(("studio", "cut-out"), lambda: _prepare(selfie))
        if style.look.backdrop == "blur":
            cut = shared
            shared = selfie.shared(("studio", "room"), lambda: _with_room(selfie, cut))
        shared_seconds = (time.perf_counter() - started) / len(seeds)
        outcomes: list[Outcome] = []
        for seed in seeds:
            began = time.perf_counter()
            outcome = _checked(shared, selfie.face, style.look, plan_variation(seed), size)
            seconds = time.perf_counter() - began + shared_seconds
            outcomes.append(dataclasses.replace(outcome, seconds=seconds))
        return outcomes


def _check_size(size: Size) -> None:
    if len(size) != 2 or not all(MIN_SIDE <= side <= MAX_SIDE for side in size):
        raise EngineFailure(
            f"The output size must be between {MIN_SIDE} and {MAX_SIDE} pixels on each side."
        )


def _face_in_output(face: Face, framing: Framing) -> list[int]:
    """The face's box carried by the framing's map into the output: [left, top, width, height]."""
    box = face.box
    corners = np.array(
        [
            [box.left, box.top, 1],
            [box.right, box.top, 1],
            [box.left, box.bottom, 1],
            [box.right, box.bottom, 1],
        ],
        dtype=np.float64,
    )
    mapped = corners @ np.asarray(framing.matrix, dtype=np.float64).T
    left, top = mapped.min(axis=0)
    right, bottom = mapped.max(axis=0)
    return [round(left), round(top), round(right - left), round(bottom - top)]


def _checked(
    shared: _Prepared, face: Face, look: StudioLook, variation: Variation, size: Size
) -> Outcome:
    """One variation that passed its self-check, or a failure; a failing image is never shown.

    An image that fails (a person pixel from outside the photo, a halo at
    the cut-out's edge) is made again with the next framing: closer, then
    centred.
    """
    tries = [
        variation,
        dataclasses.replace(variation, tightness=variation.tightness * 1.12),
        dataclasses.replace(variation, tightness=1.0, shift=0.0),
    ]
    problems: list[str] = []
    for attempt, planned in enumerate(tries):
        made = render(shared, look, planned, size)
        problems = made.problems()
        if not problems:
            details: dict[str, Any] = {
                "generative": False,
                "backdrop": look.backdrop,
                **planned.as_details(),
                "framing": made.framing.kind,
                "head_share": round(made.framing.head_share, 3),
                "levelled_degrees": round(made.framing.levelled_degrees, 2),
                "enlarged": round(made.framing.scale, 2),
                "fades_into_backdrop": sorted(made.framing.fades),
                "halo": round(made.halo, 4),
                "reframed": attempt,
                # Where the face landed in the output: the preview's mark
                # thins there (imaging.watermark), the square is framed on it.
                "face_box": _face_in_output(face, made.framing),
            }
            return Rendered(seed=variation.seed, image=made.image, seconds=0.0, details=details)
    return Failed(
        seed=variation.seed,
        reason="This variation did not pass the studio's own check of the picture.",
        code="self_check_failed",
        retryable=True,
    )


def _prepare(selfie: PreparedSelfie) -> _Prepared:
    pixels = np.ascontiguousarray(np.asarray(selfie.image.convert("RGB")))
    mask = _person_mask(selfie, pixels)
    face = _face_area(selfie.face, mask.shape)
    # Pieces of the old background the segmenter took for the person (a
    # lamp by the hair, a railing by an arm) go: what is kept is connected
    # to the face.
    anchor = (face > 0.5).astype(np.uint8)
    cutout: Cutout = cut_out(pixels, mask, scene=selfie.person_mask, anchor=anchor)
    alpha = np.asarray(np.maximum(cutout.alpha, face), np.float32)
    # On the face the colour is the photo's own, not an edge estimate.
    photo = pixels.astype(np.float32) * (1 / 255)
    foreground = cutout.foreground + _channels(face) * (photo - cutout.foreground)
    layers = np.ascontiguousarray(np.dstack([foreground * _channels(alpha), alpha]), np.float32)
    return _Prepared(
        layers=layers,
        alpha=alpha,
        old_background=weighted_blur(
            pixels.astype(np.float32) * (1 / 255), _steep(1 - alpha), max(alpha.shape) / 96
        ),
        backdrop_photo=None,
        face_luma=_face_luma(pixels, selfie.face),
        photo_size=(pixels.shape[1], pixels.shape[0]),
        subject=subject_of(selfie.face, alpha),
    )


def _with_room(selfie: PreparedSelfie, cut: _Prepared) -> _Prepared:
    """The cut-out with the photo's own background defocused, for the "blur" backdrop.

    The person's own area is filled from the background around them before
    defocusing, so the blur does not smear them into it.
    """
    photo = np.asarray(selfie.image.convert("RGB"), np.float32) * (1 / 255)
    clear = np.clip(1 - cut.alpha * 1.5, 0.0, 1.0).astype(np.float32)
    room = weighted_blur(photo, clear * clear, max(cut.alpha.shape) / 30)
    return dataclasses.replace(cut, backdrop_photo=room)


def _face_area(face: Face, shape: tuple[int, ...]) -> FloatArray:
    """1 inside the face's mesh outline (a little inset), soft at its edge.

    The face is the person, whatever the segmenter says: where it left a
    cheek half transparent (a hat's shadow, glare, a turned head), the new
    backdrop would show through the skin.
    """
    height, width = shape[:2]
    hull = cv2.convexHull(np.round(face.landmarks[:, :2]).astype(np.int32))
    area = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(area, hull, (255,))
    inset = max(1, round(face_height(face) * 0.04))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inset + 1, 2 * inset + 1))
    inner = np.asarray(cv2.erode(area, kernel), np.float32) * (1 / 255)
    soft = cv2.GaussianBlur(inner, (0, 0), inset / 2)
    return np.asarray(soft, np.float32)


def _person_mask(selfie: PreparedSelfie, pixels: npt.NDArray[np.uint8]) -> FloatArray:
    """The selfie's person mask, sharpened around the head by a second look."""
    mask = selfie.person_mask
    height, width = mask.shape
    box = selfie.face.mesh_box
    cx, cy = box.center
    side = box.height * 3.2
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side * 0.45))
    right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side * 0.55))
    if right - left < 32 or bottom - top < 32:
        return mask
    detail = segment_person(np.ascontiguousarray(pixels[top:bottom, left:right]))
    return merge_detail(mask, detail, left, top)


def _face_luma(pixels: npt.NDArray[np.uint8], face: Face) -> float:
    """Median brightness of the face, sampled at its mesh points."""
    height, width = pixels.shape[:2]
    xs = np.clip(face.landmarks[:, 0].round().astype(int), 0, width - 1)
    ys = np.clip(face.landmarks[:, 1].round().astype(int), 0, height - 1)
    samples = pixels[ys, xs].astype(np.float32) * (1 / 255)
    return float(np.median(samples @ _LUMA))


@dataclass(frozen=True)
class Made:
    """One rendered headshot with what its self-check reads."""

    image: Image.Image
    framing: Framing
    # The person's coverage in the output, and the share of its edge that
    # no mix of person and backdrop explains (imaging.quality.halo).
    alpha: FloatArray
    halo: float
    photo_size: Size

    def problems(self) -> list[str]:
        found = []
        if reaches_outside(self.framing, self.alpha, self.photo_size):
            found.append("stretched")
        if self.halo > quality.HALO_LIMIT:
            found.append("halo")
        return found


def render(shared: _Prepared, look: StudioLook, variation: Variation, size: Size) -> Made:
    """One headshot for one variation."""
    subject = shared.subject
    face = subject.face
    framing = frame(subject, look.head_share * variation.tightness, size, variation.shift)
    width, height = size
    matrix = framing.matrix
    # Outside the photo everything is 0 (BORDER_CONSTANT): backdrop, never
    # a repeated edge of the photo.
    layers = _warp(shared.layers, matrix, size)
    colour = np.ascontiguousarray(layers[..., :3])
    alpha = np.ascontiguousarray(layers[..., 3])
    np.clip(alpha, 0.0, 1.0, out=alpha)
    if framing.scale > 1.15:
        # Scaling a small photo up softens it; a gentle unsharp mask at the
        # scale of the stretch gives back the crispness of the original.
        soft = cv2.GaussianBlur(colour, (0, 0), 0.5 * framing.scale)
        colour += 0.4 * (colour - soft)
        np.minimum(colour, _channels(alpha), out=colour)
        np.maximum(colour, 0.0, out=colour)
    # The halo is read on the cut-out's own edge, before the person fades
    # out where the photo ends (that fade is meant to mix them).
    matte_edge = alpha
    if framing.fades:
        # Where the photo ends inside the frame the person fades into the
        # backdrop; premultiplied colour fades with the coverage.
        fade = photo_fade(framing, shared.photo_size)
        matte_edge = np.where(fade > 0.999, alpha, 0.0).astype(np.float32)
        alpha = alpha * fade
        colour *= _channels(fade)

    eye = framing.to_output(*face.eye_center)
    face_px = face_height(face) * framing.scale
    backdrop = _backdrop(shared, framing, look, variation, alpha, eye, size)
    halo = _halo(shared, framing, colour, matte_edge, backdrop, alpha)
    person = _light_and_grade(colour, alpha, look, variation, eye, face_px, shared.face_luma)
    skin = [framing.to_output(*face.landmarks[i, :2]) for i in quality.SKIN_POINTS]
    _keep_skin_tone(colour, person, skin, face_px)
    backdrop *= _channels(_f32(1 - alpha))
    backdrop += person
    backdrop += _grain(height, width)
    # Scales, rounds and saturates at 255 in one pass; values are never
    # meaningfully below 0.
    out = np.asarray(cv2.convertScaleAbs(backdrop, alpha=255.0), np.uint8)
    assert out.shape == (height, width, 3)
    return Made(
        image=Image.fromarray(out, "RGB"),
        framing=framing,
        alpha=alpha,
        halo=halo,
        photo_size=shared.photo_size,
    )


def _halo(
    shared: _Prepared,
    framing: Framing,
    colour: FloatArray,
    matte_edge: FloatArray,
    backdrop: FloatArray,
    alpha: FloatArray,
) -> float:
    """The halo measure of this cut-out on its backdrop, read at half size.

    A halo wide enough to see is still two pixels wide at half size, and
    the measure costs a quarter.
    """
    height, width = alpha.shape
    half = (width // 2, height // 2)

    def small(image: FloatArray) -> FloatArray:
        return _f32(cv2.resize(image, half, interpolation=cv2.INTER_AREA))

    small_alpha = small(alpha)
    small_backdrop = small(backdrop)
    composite = small(colour) + small_backdrop * _channels(1 - small_alpha)
    matrix = framing.matrix * np.array([[0.5], [0.5]])
    old = _f32(
        cv2.warpAffine(
            shared.old_background,
            matrix,
            half,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    )
    return quality.halo(composite, small(matte_edge), small_backdrop, old)


def _warp(image: FloatArray, matrix: npt.NDArray[np.float64], size: Size) -> FloatArray:
    return _f32(
        cv2.warpAffine(image, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)
    )


def _light_direction(variation: Variation) -> tuple[float, float]:
    """Unit vector towards the key light, in output pixels (y down)."""
    angle = math.radians(variation.light_angle)
    return (variation.light_side * math.cos(angle), -math.sin(angle))


def _light_and_grade(
    colour: FloatArray,
    alpha: FloatArray,
    look: StudioLook,
    variation: Variation,
    eye: tuple[float, float],
    face_px: float,
    face_luma: float,
) -> FloatArray:
    """The person, premultiplied: key and fill, grade, rim light."""
    height, width = alpha.shape
    gain = _key_light(look, variation, eye, face_px, (width, height))
    # Warmth and saturation are linear in the colour, so with the per-pixel
    # light they make one colour matrix.
    person = _f32(cv2.transform(colour, _grade_matrix(look)))
    person *= _channels(gain)
    # Contrast moves brightness away from the face's own brightness, which
    # stays put, and fades out towards black, so dark suits keep their
    # folds instead of clipping.
    luma = _f32(cv2.transform(person, _LUMA[None, :]))
    spread = (look.contrast - 1) * (luma - face_luma * alpha) * (luma / (luma + 0.1))
    person += _channels(spread)
    if look.rim > 0:
        rim = _rim_light(alpha, variation, face_px) * look.rim
        tint = [float(c) / 255 for c in look.rim_colour]
        # Screen blend: brightens the edge without going past full white.
        person += (_channels(alpha) - person) * cv2.merge([rim * c for c in tint])
    np.minimum(person, _channels(alpha), out=person)
    np.maximum(person, 0.0, out=person)
    return np.asarray(person, np.float32)


def _keep_skin_tone(
    before: FloatArray, after: FloatArray, skin: list[tuple[float, float]], face_px: float
) -> None:
    """Pull the head back towards its own skin tone where the grade moved it too far.

    A look's warmth, saturation, contrast and light move the whole person;
    on clothes that is the look, on skin it makes someone else. The mean
    colour of the cheeks and forehead after the grade is compared with
    before (CIELAB); past SKIN_SHIFT the head is corrected, per channel, by
    just enough to come back to it, fading out over the neck so the
    clothes keep the look.
    """
    height, width = after.shape[:2]
    cx = sum(x for x, _ in skin) / len(skin)
    cy = sum(y for _, y in skin) / len(skin)
    # Everything below happens in the head's box: a fraction of the frame.
    reach_x, reach_y = 1.4 * face_px, 1.7 * face_px
    left, right = int(max(0, cx - reach_x)), int(min(width, cx + reach_x))
    top, bottom = int(max(0, cy - reach_y)), int(min(height, cy + reach_y))
    if right - left < 4 or bottom - top < 4:
        return
    radius = max(2, round(face_px * quality.SKIN_PATCH))
    patches = np.zeros((bottom - top, right - left), np.uint8)
    for x, y in skin:
        cv2.circle(patches, (round(x) - left, round(y) - top), radius, (1,), -1)
    if not patches.any():
        return
    was = np.array(cv2.mean(before[top:bottom, left:right], patches)[:3], np.float32)
    now = np.array(cv2.mean(after[top:bottom, left:right], patches)[:3], np.float32)
    shift = float(np.linalg.norm(quality.lab(now[None, None]) - quality.lab(was[None, None])))
    if shift <= SKIN_SHIFT:
        return
    share = 1 - SKIN_SHIFT / shift
    gain = (1 + share * (was / np.maximum(now, 1e-4) - 1)).astype(np.float32)
    # The head: an ellipse around the face, soft at its edge.
    xs = (np.arange(left, right, dtype=np.float32) - cx) / (0.9 * face_px)
    ys = (np.arange(top, bottom, dtype=np.float32) - cy) / (1.1 * face_px)
    head = np.clip(1.5 - np.sqrt(xs[None, :] ** 2 + ys[:, None] ** 2), 0.0, 1.0)
    after[top:bottom, left:right] *= cv2.merge([1 + head * (g - 1) for g in gain])


def _grade_matrix(look: StudioLook) -> FloatArray:
    warm = look.warmth
    # Warmth shifts red against blue; kept small so skin stays the person's own.
    warmth = np.diag([1 + 0.05 * warm, 1 + 0.01 * warm, 1 - 0.06 * warm])
    grey = np.outer(np.ones(3), _LUMA)
    saturation = look.saturation * np.eye(3) + (1 - look.saturation) * grey
    return _f32(saturation @ warmth)


def _key_light(
    look: StudioLook,
    variation: Variation,
    eye: tuple[float, float],
    face_px: float,
    size: Size,
) -> FloatArray:
    """Light gain over the frame: lit side up, shadow side down (less with more fill).

    A smooth field, computed on a coarse grid and scaled up.
    """
    width, height = size
    step = 8
    xs = (np.arange(0, width, step, dtype=np.float32) - eye[0]) / face_px
    ys = (np.arange(0, height, step, dtype=np.float32) - eye[1]) / face_px
    dx, dy = _light_direction(variation)
    towards = np.tanh(1.4 * (xs[None, :] * dx + ys[:, None] * dy))
    fill = min(1.0, look.fill * variation.fill)
    lift = 0.17 * look.key
    drop = 0.26 * look.key * (1 - fill)
    gain = 1 + lift * np.maximum(towards, 0) - drop * np.maximum(-towards, 0)
    # Light falls off down the body, which keeps the eye on the face.
    below = np.clip((ys[:, None] - 1.0) / 3.0, 0.0, 1.0)
    gain *= 1 - 0.12 * below
    # The light shapes the face but does not brighten or darken it as a
    # whole: its mean over the face stays 1, so the skin keeps its tone
    # (the grade's limit, imaging.quality.SKIN_DELTA_E_MEDIAN).
    on_face = (xs[None, :] ** 2 + (ys[:, None] - 0.35) ** 2) < 0.5**2
    if on_face.any():
        gain /= float(gain[on_face].mean())
    coarse = np.ascontiguousarray(gain, dtype=np.float32)
    return np.asarray(cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR), np.float32)


def _rim_light(alpha: FloatArray, variation: Variation, face_px: float) -> FloatArray:
    """Where a light behind the person, opposite the key, catches their edge."""
    height, width = alpha.shape
    half = cv2.resize(alpha, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    dx = _light_direction(variation)[0]
    # The rim light sits behind and above, on the side opposite the key.
    reach = max(1.5, face_px * 0.035 / 2)
    # Sample the mask a step towards the rim light: where that step leaves
    # the person, this pixel is on the lit edge.
    shift = np.array([[1, 0, dx * reach], [0, 1, 0.6 * reach]], np.float32)
    moved = cv2.warpAffine(
        half, shift, (half.shape[1], half.shape[0]), borderMode=cv2.BORDER_REPLICATE
    )
    edge = np.clip(half - moved, 0.0, 1.0) * half
    glow = cv2.GaussianBlur(edge, (0, 0), reach * 0.6)
    rim = cv2.resize(glow, (width, height), interpolation=cv2.INTER_LINEAR)
    return np.asarray(np.clip(rim * 1.6, 0.0, 1.0) * alpha, np.float32)


def _backdrop(
    shared: _Prepared,
    framing: Framing,
    look: StudioLook,
    variation: Variation,
    alpha: FloatArray,
    eye: tuple[float, float],
    size: Size,
) -> FloatArray:
    width, height = size
    base = _tone(look.background, look, variation)
    accent = _tone(look.background_accent, look, variation)
    painted = _painted(look, variation, base, accent, eye, (width, height))
    falloff = _falloff(look, variation, eye, size)
    if look.backdrop != "blur" or shared.backdrop_photo is None:
        painted *= _channels(1 - _cast_shadow(alpha, look, variation, height))
        if falloff is not None:
            painted *= falloff
        return painted
    photo = _f32(
        cv2.warpAffine(
            shared.backdrop_photo,
            framing.matrix,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
        )
    )
    # Pulled towards the preset's colour and half desaturated, so any room
    # reads as a soft, light space behind the person.
    grey = _channels(_f32(cv2.transform(photo, _LUMA[None, :])))
    # The variation's tone moves the whole room, not only its tint.
    tint = 0.6 * base + 0.4 * (base - np.array(look.background, np.float32) / 255)
    mixed = cv2.split(0.2 * grey + 0.2 * photo)
    own = _f32(cv2.merge([plane + float(c) for plane, c in zip(mixed, tint, strict=True)]))
    # Where the frame reaches past the photo the room gives way, gently,
    # to the painted backdrop: nothing of the photo is repeated there.
    inside = _channels(photo_fade(framing, shared.photo_size, extra=3.0))
    field = inside * own + (1 - inside) * painted
    if falloff is not None:
        field *= falloff
    return np.asarray(field, np.float32)


def _falloff(
    look: StudioLook, variation: Variation, eye: tuple[float, float], size: Size
) -> FloatArray | None:
    """On a pale backdrop, light falling off towards the corners, by the variation's tone.

    A pale backdrop cannot go much lighter or darker and stay itself; how
    much the light falls off around the person is what makes its four
    variations differ (a studio's light on a white seamless does the same).
    Solid backdrops paint their own falloff (_painted).
    """
    rgb = np.array(look.background, np.float32)[None, None] / 255
    if look.backdrop == "solid" or quality.lab(rgb)[0, 0, 0] <= LIGHT_BACKDROP:
        return None
    width, height = size
    step = 8
    x = np.arange(0, width, step, dtype=np.float32)[None, :] / width
    y = np.arange(0, height, step, dtype=np.float32)[:, None] / height
    spread = ((x - eye[0] / width) / 0.6) ** 2 + ((y - eye[1] / height) / 0.8) ** 2
    amount = (0.1 + 0.45 * (1 - variation.tone)) * (1 - np.exp(-spread))
    gain = 1 - np.clip(amount, 0.0, 1.0) * (1 - SOLID_CORNER)
    coarse = np.ascontiguousarray(gain, dtype=np.float32)
    return _channels(_f32(cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR)))


def _tone(colour: RGB, look: StudioLook, variation: Variation) -> FloatArray:
    """The backdrop colour of this variation: the preset's, lighter or darker.

    The step is in CIELAB lightness, so a charcoal varies as visibly as a
    mid grey. A light backdrop only goes darker: a white seamless may
    become a light grey, never brighter than white.
    """
    rgb = np.array(colour, np.float32) / 255
    if look.exact_backdrop:
        # A colour the person chose is painted as asked, in every variation.
        return rgb
    lightness = quality.lab(rgb[None, None])[0, 0]
    if lightness[0] > LIGHT_BACKDROP:
        lightness[0] += TONE_STEP * (variation.tone - 1) / 2
    else:
        lightness[0] += TONE_STEP * variation.tone
    back = _f32(cv2.cvtColor(lightness[None, None].astype(np.float32), cv2.COLOR_LAB2RGB))
    return np.asarray(np.clip(back[0, 0], 0.0, 1.0), np.float32)


def _painted(
    look: StudioLook,
    variation: Variation,
    base: FloatArray,
    accent: FloatArray,
    eye: tuple[float, float],
    size: Size,
) -> FloatArray:
    """Solid, gradient or radial backdrop: smooth, so painted coarse and scaled up."""
    width, height = size
    step = 8
    x = np.arange(0, width, step, dtype=np.float32)[None, :] / width
    y = np.arange(0, height, step, dtype=np.float32)[:, None] / height
    side = variation.light_side
    if look.exact_backdrop:
        # Flat and exact: a brand colour is that colour edge to edge; the
        # variations differ by framing and light on the person.
        return np.broadcast_to(base, (height, width, 3)).astype(np.float32)
    if look.backdrop == "solid":
        # The key light sweeps across the seamless, falling off towards the
        # side away from it (more with a harder light), and light falls off
        # towards the corners, more on the variations of a darker tone: a
        # white seamless stays white behind the head and varies around it.
        # On a white seamless with almost no shadow on the face, the sweep
        # is what shows where the light comes from.
        far = np.clip(0.5 - side * (x - 0.5), 0.0, 1.0)
        across = (SWEEP + SWEEP_DARK * (1 - variation.tone) / 2) * far**1.5
        spread = ((x - eye[0] / width) / 0.6) ** 2 + ((y - eye[1] / height) / 0.8) ** 2
        falloff = (0.1 + 0.45 * (1 - variation.tone)) * (1 - np.exp(-spread))
        amount = np.clip(across + falloff, 0.0, 1.0)
        accent = base * SOLID_CORNER
    elif look.backdrop == "gradient":
        amount = np.clip(y * 0.95 + 0.2 * side * (0.5 - x) * y + 0.02, 0.0, 1.0)
        amount = amount * amount * (3 - 2 * amount)
    else:
        cx = eye[0] / width + 0.1 * side
        cy = eye[1] / height - 0.02
        distance = ((x - cx) / 0.55) ** 2 + ((y - cy) / 0.6) ** 2
        amount = 1 - np.exp(-distance)
    field = base + amount[..., None] * (accent - base)
    coarse = np.ascontiguousarray(field, dtype=np.float32)
    return np.asarray(cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR), np.float32)


def _cast_shadow(
    alpha: FloatArray, look: StudioLook, variation: Variation, height: int
) -> FloatArray:
    """A soft shadow of the person on the backdrop, away from the key light."""
    small_w, small_h = alpha.shape[1] // 8, alpha.shape[0] // 8
    small = cv2.resize(alpha, (small_w, small_h), interpolation=cv2.INTER_AREA)
    dx, dy = _light_direction(variation)
    offset = 0.035 * small_h
    shift = np.array([[1, 0, -dx * offset], [0, 1, -dy * offset * 0.5]], np.float32)
    moved = cv2.warpAffine(small, shift, (small_w, small_h), borderMode=cv2.BORDER_REPLICATE)
    soft = cv2.GaussianBlur(moved, (0, 0), 0.04 * small_h)
    shadow = cv2.resize(soft, (alpha.shape[1], alpha.shape[0]), interpolation=cv2.INTER_LINEAR)
    return np.asarray(shadow * (0.1 + 0.3 * look.key), np.float32)


def _steep(weight: FloatArray) -> FloatArray:
    """``weight`` to the 16th power: about 1 only where it is nearly 1."""
    for _ in range(4):
        weight = weight * weight
    return weight


def _channels(plane: FloatArray) -> FloatArray:
    """One (H, W) plane as three equal channels.

    Multiplying an (H, W, 3) image by ``plane[..., None]`` makes numpy
    broadcast over a last axis of 3, about ten times slower than with the
    plane laid out as three channels: this is most of a render's time.
    """
    return _f32(cv2.merge([plane, plane, plane]))


def _f32(array: object) -> FloatArray:
    """An OpenCV result as the float32 array it is."""
    return np.asarray(array, dtype=np.float32)


@lru_cache(maxsize=4)
def _grain(height: int, width: int) -> FloatArray:
    """Fine fixed noise on the backdrop: no banding in smooth gradients."""
    rng = np.random.default_rng(20240601)
    noise = _channels(rng.standard_normal((height, width), dtype=np.float32) * (1.2 / 255))
    noise.setflags(write=False)
    return noise
