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
from headshots.engines.base import EngineFailure, Outcome, Rendered, Shape, Size, check_seeds
from headshots.imaging.faces import CHIN, FOREHEAD, Face, segment_person
from headshots.imaging.matting import Cutout, cut_out, merge_detail, weighted_blur
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import RGB, StudioLook, Style

FloatArray = npt.NDArray[np.float32]

BACKDROPS = ("solid", "gradient", "radial", "blur")
# Output sizes the engine accepts, per side.
MIN_SIDE, MAX_SIDE = 256, 4096

# Framing. The eye line sits about a third from the top; when the photo is
# too small for that, it may move within this band before the crop leaves
# the photo.
EYE_LINE = 0.35
EYE_LINE_RANGE = (0.28, 0.44)
# How far the face may move off the vertical centre line, as a share of the
# frame width, to keep the crop inside the photo.
OFF_CENTRE = 0.1
# The tightest crop we accept to stay inside the photo, as the face's share
# of the frame height; tighter photos extend past their edge instead.
MAX_HEAD_SHARE = 0.5
# A camera held slightly crooked is levelled fully; a stronger tilt is a
# pose, and levelling it would tilt the shoulders, so it fades out.
LEVEL_FULL, LEVEL_NONE = 5.0, 10.0

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class Variation:
    """What one seed varies."""

    seed: int
    # Multiplies the preset's head share: above 1 is a tighter crop.
    tightness: float
    # -1: the key light comes from the left of the picture, 1: from the right.
    light_side: int
    # Degrees above the horizontal the key light comes from.
    light_angle: float
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
            "background_tone": round(self.tone, 3),
        }


def plan_variation(seed: int) -> Variation:
    """The variation a seed stands for; the same seed always gives the same one."""
    rng = random.Random(seed)
    # The two lowest bits choose the corner of a 2x2 grid (light side x crop)
    # so any four consecutive seeds cover all four; the rest is jitter.
    # The backdrop's tone goes darker or lighter by the same two bits, so
    # any two of the four differ in at least two of the three.
    tight = (seed >> 1) & 1
    side = seed & 1
    low, high = (1.04, 1.1) if tight else (0.9, 0.96)
    return Variation(
        seed=seed,
        tightness=rng.uniform(low, high),
        light_side=1 if side else -1,
        light_angle=rng.uniform(15.0, 55.0),
        tone=rng.uniform(0.4, 1.0) * (1 if side ^ tight else -1),
        # The face moves a little away from the key light, as a photographer
        # leaves room on the lit side: two variations that share a crop still
        # differ in composition, not only in light.
        shift=rng.uniform(0.035, 0.06) * (-1 if side else 1),
    )


@dataclass(frozen=True)
class Framing:
    """Where the headshot lies in the photo: one affine map to the output."""

    # (2, 3) affine from photo pixels to output pixels.
    matrix: npt.NDArray[np.float64]
    size: Size
    head_share: float
    levelled_degrees: float
    # Whether the crop reaches past the photo (filled with backdrop).
    past_edge: bool

    @property
    def scale(self) -> float:
        return float(math.hypot(self.matrix[0, 0], self.matrix[0, 1]))

    def to_output(self, x: float, y: float) -> tuple[float, float]:
        m = self.matrix
        return (
            float(m[0, 0] * x + m[0, 1] * y + m[0, 2]),
            float(m[1, 0] * x + m[1, 1] * y + m[1, 2]),
        )


def face_height(face: Face) -> float:
    """Forehead to chin in pixels, independent of the head's tilt."""
    top, chin = face.landmarks[FOREHEAD, :2], face.landmarks[CHIN, :2]
    return float(np.hypot(*(chin - top)))


def level_angle(roll: float) -> float:
    """How many degrees to rotate the photo to level the eyes."""
    size = abs(roll)
    if size <= LEVEL_FULL:
        return roll
    if size >= LEVEL_NONE:
        return 0.0
    return roll * (LEVEL_NONE - size) / (LEVEL_NONE - LEVEL_FULL) * LEVEL_FULL / size


def frame_face(
    face: Face,
    photo_size: Size,
    head_share: float,
    size: Size,
    tightness: float = 1.0,
    shift: float = 0.0,
) -> Framing:
    """The headshot crop: eyes level, eye line near a third, face at ``head_share``.

    ``tightness`` applies after the crop is fitted into the photo, so a
    variation is tighter or looser than its neighbours even when the photo
    itself limits the crop (a loose variation then stays at the photo's
    edge rather than going past it).
    """
    out_w, out_h = size
    aspect = out_w / out_h
    angle = level_angle(face.roll_degrees)
    ex, ey = face.eye_center
    # The photo's corners around the eyes, in the levelled frame, and the
    # box that is inside the photo for certain.
    rotate = cv2.getRotationMatrix2D((ex, ey), angle, 1.0)
    width, height = photo_size
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    cx, cy = (corners @ rotate.T - (ex, ey)).T
    inside_left, inside_right = max(cx[0], cx[2]), min(cx[1], cx[3])
    inside_top, inside_bottom = max(cy[0], cy[1]), min(cy[2], cy[3])

    crop_h = face_height(face) / head_share
    largest = min(inside_bottom - inside_top, (inside_right - inside_left) / aspect)
    crop_h = max(min(crop_h, largest), face_height(face) / MAX_HEAD_SHARE)
    # A looser variation may grow only while it still fits in the photo.
    crop_h = min(crop_h / tightness, max(crop_h, largest))
    crop_w = crop_h * aspect

    top = _place(
        -EYE_LINE * crop_h,
        (-EYE_LINE_RANGE[1] * crop_h, -EYE_LINE_RANGE[0] * crop_h),
        (inside_top, inside_bottom - crop_h),
        prefer_low=True,
    )
    left = _place(
        -(0.5 + shift) * crop_w,
        (-(0.5 + OFF_CENTRE) * crop_w, -(0.5 - OFF_CENTRE) * crop_w),
        (inside_left, inside_right - crop_w),
        prefer_low=False,
    )
    past_edge = bool(
        top < inside_top - 0.5
        or top + crop_h > inside_bottom + 0.5
        or left < inside_left - 0.5
        or left + crop_w > inside_right + 0.5
    )
    scale = out_h / crop_h
    matrix = np.asarray(cv2.getRotationMatrix2D((ex, ey), angle, scale), np.float64)
    matrix[:, 2] += (-left * scale - ex, -top * scale - ey)
    return Framing(
        matrix=matrix,
        size=size,
        head_share=face_height(face) / crop_h,
        levelled_degrees=angle,
        past_edge=past_edge,
    )


def _place(
    wanted: float, allowed: tuple[float, float], photo: tuple[float, float], prefer_low: bool
) -> float:
    """A crop edge: ``wanted`` if the photo allows, else as close as the band lets.

    ``allowed`` is the band the composition tolerates, ``photo`` the band
    that keeps the crop inside the photo. When they do not meet, the crop
    leaves the photo on one side; ``prefer_low`` leaves it at the top
    (above the head, where backdrop belongs) rather than the bottom.
    """
    low = max(allowed[0], photo[0])
    high = min(allowed[1], photo[1])
    if low <= high:
        return min(max(wanted, low), high)
    if photo[1] < allowed[0]:  # the photo ends too early (bottom or right)
        return allowed[0]
    if photo[0] > allowed[1]:  # the photo starts too late (top or left)
        return allowed[1]
    # The photo is smaller than the crop on both sides: centre what is there.
    middle = (photo[0] + photo[1]) / 2
    chosen = allowed[0] if prefer_low else middle
    return min(max(chosen, allowed[0]), allowed[1])


@dataclass(frozen=True)
class _Prepared:
    """Work shared by every seed of one generate() call."""

    premultiplied: FloatArray
    alpha: FloatArray
    backdrop_photo: FloatArray | None
    face_luma: float
    photo_size: Size


class StudioEngine:
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
        # The cut-out depends only on whether the backdrop is the photo's own
        # (blurred): every seed, and most styles, share one.
        shared = selfie.shared(
            ("studio", style.look.backdrop == "blur"), lambda: _prepare(selfie, style.look)
        )
        shared_seconds = (time.perf_counter() - started) / len(seeds)
        outcomes: list[Outcome] = []
        for seed in seeds:
            began = time.perf_counter()
            variation = plan_variation(seed)
            image, framing = render(shared, selfie.face, style.look, variation, size)
            details: dict[str, Any] = {
                "generative": False,
                "backdrop": style.look.backdrop,
                **variation.as_details(),
                "head_share": round(framing.head_share, 3),
                "levelled_degrees": round(framing.levelled_degrees, 2),
                "extends_past_photo": framing.past_edge,
            }
            seconds = time.perf_counter() - began + shared_seconds
            outcomes.append(Rendered(seed=seed, image=image, seconds=seconds, details=details))
        return outcomes


def _check_size(size: Size) -> None:
    if len(size) != 2 or not all(MIN_SIDE <= side <= MAX_SIDE for side in size):
        raise EngineFailure(
            f"The output size must be between {MIN_SIDE} and {MAX_SIDE} pixels on each side."
        )


def _prepare(selfie: PreparedSelfie, look: StudioLook) -> _Prepared:
    pixels = np.ascontiguousarray(np.asarray(selfie.image.convert("RGB")))
    mask = _person_mask(selfie, pixels)
    cutout: Cutout = cut_out(pixels, mask)
    alpha = cutout.alpha
    premultiplied = cutout.foreground * alpha[..., None]
    backdrop_photo = None
    if look.backdrop == "blur":
        photo = pixels.astype(np.float32) * (1 / 255)
        # The person's own area is filled from the background around them
        # before defocusing, so the blur does not smear them into it.
        clear = np.clip(1 - alpha * 1.5, 0.0, 1.0).astype(np.float32)
        backdrop_photo = weighted_blur(photo, clear * clear, max(alpha.shape) / 30)
    return _Prepared(
        premultiplied=premultiplied,
        alpha=alpha,
        backdrop_photo=backdrop_photo,
        face_luma=_face_luma(pixels, selfie.face),
        photo_size=(pixels.shape[1], pixels.shape[0]),
    )


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


def render(
    shared: _Prepared, face: Face, look: StudioLook, variation: Variation, size: Size
) -> tuple[Image.Image, Framing]:
    """One headshot for one variation."""
    framing = frame_face(
        face, shared.photo_size, look.head_share, size, variation.tightness, variation.shift
    )
    width, height = size
    matrix = framing.matrix
    alpha = _f32(
        cv2.warpAffine(
            shared.alpha, matrix, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
        )
    )
    np.clip(alpha, 0.0, 1.0, out=alpha)
    if framing.past_edge:
        alpha *= _inside_photo(matrix, shared.photo_size, size)
    colour = _f32(
        cv2.warpAffine(
            shared.premultiplied,
            matrix,
            size,
            flags=cv2.INTER_CUBIC,
            borderMode=cv2.BORDER_REPLICATE,
        )
    )
    if framing.scale > 1.15:
        # Scaling a small photo up softens it; a gentle unsharp mask at the
        # scale of the stretch gives back the crispness of the original.
        soft = cv2.GaussianBlur(colour, (0, 0), 0.5 * framing.scale)
        colour += 0.4 * (colour - soft)
    np.minimum(colour, alpha[..., None], out=colour)
    np.maximum(colour, 0.0, out=colour)

    eye = framing.to_output(*face.eye_center)
    face_px = face_height(face) * framing.scale
    person = _light_and_grade(colour, alpha, look, variation, eye, face_px, shared.face_luma)
    backdrop = _backdrop(shared, framing, look, variation, alpha, eye, size)
    backdrop *= (1 - alpha)[..., None]
    backdrop += person
    # Scales, rounds and saturates at 255 in one pass; values are never
    # meaningfully below 0.
    out = np.asarray(cv2.convertScaleAbs(backdrop, alpha=255.0), np.uint8)
    assert out.shape == (height, width, 3)
    return Image.fromarray(out, "RGB"), framing


def _inside_photo(matrix: npt.NDArray[np.float64], photo_size: Size, size: Size) -> FloatArray:
    """1 where an output pixel comes from the photo or from below it, else 0.

    Below the photo the person's body is continued (the crop of a tight
    selfie ends at the chest, as any headshot does); beside and above it is
    backdrop.
    """
    inverse = cv2.invertAffineTransform(matrix)
    xs = np.arange(size[0], dtype=np.float32)
    ys = np.arange(size[1], dtype=np.float32)
    src_x = inverse[0, 0] * xs[None, :] + (inverse[0, 1] * ys + inverse[0, 2])[:, None]
    src_y = inverse[1, 0] * xs[None, :] + (inverse[1, 1] * ys + inverse[1, 2])[:, None]
    width = photo_size[0]
    inside_x = np.clip(np.minimum(src_x, width - 1 - src_x) + 1, 0.0, 1.0)
    inside_y = np.clip(src_y + 1, 0.0, 1.0)
    return _f32(inside_x * inside_y)


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
    person *= gain[..., None]
    # Contrast moves brightness away from the face's own brightness, which
    # stays put, and fades out towards black, so dark suits keep their
    # folds instead of clipping.
    luma = _f32(cv2.transform(person, _LUMA[None, :]))
    spread = (look.contrast - 1) * (luma - face_luma * alpha) * (luma / (luma + 0.1))
    person += spread[..., None]
    if look.rim > 0:
        rim = _rim_light(alpha, variation, face_px) * look.rim
        tint = np.array(look.rim_colour, np.float32) / 255
        # Screen blend: brightens the edge without going past full white.
        person += (alpha[..., None] - person) * rim[..., None] * tint
    np.minimum(person, alpha[..., None], out=person)
    np.maximum(person, 0.0, out=person)
    return np.asarray(person, np.float32)


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
    lift = 0.17 * look.key
    drop = 0.26 * look.key * (1 - look.fill)
    gain = 1 + lift * np.maximum(towards, 0) - drop * np.maximum(-towards, 0)
    # Light falls off down the body, which keeps the eye on the face.
    below = np.clip((ys[:, None] - 1.0) / 3.0, 0.0, 1.0)
    gain *= 1 - 0.12 * below
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
    if look.backdrop == "blur" and shared.backdrop_photo is not None:
        photo = cv2.warpAffine(
            shared.backdrop_photo,
            framing.matrix,
            size,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )
        # Pulled towards the preset's colour and half desaturated, so any
        # room reads as a soft, light space behind the person.
        grey = (photo @ _LUMA)[..., None]
        field = 0.2 * grey + 0.2 * photo + 0.6 * base
    else:
        field = _painted(look, variation, base, accent, eye, (width, height))
        field *= (1 - _cast_shadow(alpha, look, variation, height))[..., None]
    noise = _grain(height, width)
    return np.asarray(field + noise[..., None], np.float32)


def _tone(colour: RGB, look: StudioLook, variation: Variation) -> FloatArray:
    rgb = np.array(colour, np.float32) / 255
    # Light backdrops vary less: a white seamless should stay white.
    amount = 0.1 * (1 - 0.6 * float(rgb @ _LUMA)) * variation.tone
    return np.clip(rgb * (1 + amount), 0.0, 1.0).astype(np.float32)


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
    if look.backdrop == "solid":
        # A hint of the key light across the seamless.
        amount = np.broadcast_to(
            0.08 * np.clip(0.5 - 0.25 * side * (x - 0.5), 0, 1), (y.size, x.size)
        )
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


def _f32(array: object) -> FloatArray:
    """An OpenCV result as the float32 array it is."""
    return np.asarray(array, dtype=np.float32)


@lru_cache(maxsize=4)
def _grain(height: int, width: int) -> FloatArray:
    """Fine fixed noise on the backdrop: no banding in smooth gradients."""
    rng = np.random.default_rng(20240601)
    noise = rng.standard_normal((height, width), dtype=np.float32) * (1.2 / 255)
    noise.setflags(write=False)
    return noise
