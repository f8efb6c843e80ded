"""Headshot framing inside the photo: where the frame lies, never past what the photo holds.

The rules are a portrait photographer's (docs/decisions/0013 gives them with
their sources): the head, from the top of the hair to the chin, fills a
fixed share of a 4:5 frame (less for head-and-shoulders, more for a close
portrait); a small, steady space lies above the hair; the eyes fall near
the upper third; the face sits near the vertical centre line.

The frame is fitted to what the photo holds. It may reach past the photo
only where the person is not: beside or above them, where the backdrop
belongs anyway, and a little below the photo's bottom edge, where the body
then fades into the backdrop as in a studio vignette. No pixel outside the
photo is ever taken from it: :func:`photo_fade` tells the engine where the
person's own pixels must give way to the backdrop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from headshots.imaging.faces import CHIN, FOREHEAD, Face

FloatArray = npt.NDArray[np.float32]
Size = tuple[int, int]

# Space above the hair, as a share of the frame height.
HEADROOM = 0.07
# The loosest a frame may go: a looser one is a half-length portrait, not a
# headshot.
HEAD_MIN = 0.34
# The closest a frame may go: the head (hair to chin) as a share of the
# frame height. Tighter than this reads as a passport photo.
HEAD_MAX = 0.6
# A photo that reaches this many face heights below the chin shows the
# shoulders: it gets head-and-shoulders framing. One that stops short gets
# a close portrait, the head at least CLOSE_HEAD of the frame.
SHOULDERS_BELOW = 1.0
CLOSE_HEAD = 0.5
# How far the frame may reach below the photo, and beside it where the
# person touches the photo's side, as a share of the frame; past that a
# tighter frame is chosen.
BELOW_PHOTO_MAX = 0.08
BESIDE_PHOTO_MAX = 0.03
# Over how much of the frame the body fades out before a photo edge that
# lies inside it; the fade never starts above this many face heights below
# the chin.
BOTTOM_FADE = 0.16
SIDE_FADE = 0.05
FADE_BELOW_CHIN = 0.25
# How far the face may move off the vertical centre line, as a share of the
# frame width, to keep the frame inside the photo.
OFF_CENTRE = 0.1
# The hair's top is read from the person mask; where the mask is unsure the
# top is kept between these many face heights above the forehead.
HAIR_MIN, HAIR_MAX = 0.1, 1.6
# A camera held slightly crooked is levelled fully; a stronger tilt is a
# pose, and levelling it would tilt the shoulders, so it fades out.
LEVEL_FULL, LEVEL_NONE = 5.0, 10.0
# Step by which the head share grows while looking for a frame that fits.
_STEP = 0.01


@dataclass(frozen=True)
class Subject:
    """What framing needs to know of the person, measured once per selfie."""

    face: Face
    photo_size: Size
    # The top of the hair (photo y), and whether the photo's top edge cuts it.
    hair_top: float
    hair_cut: bool
    # Whether the person reaches the photo's left and right edges.
    touches_left: bool
    touches_right: bool


def subject_of(face: Face, alpha: FloatArray) -> Subject:
    """The person's extent in the photo, from their mask."""
    height, width = alpha.shape
    box = face.mesh_box
    forehead = float(face.landmarks[FOREHEAD, 1])
    tall = face_height(face)
    left = int(np.clip(box.left + 0.2 * box.width, 0, width - 1))
    right = int(np.clip(box.right - 0.2 * box.width, left + 1, width))
    above = alpha[: max(1, int(forehead)), left:right].max(axis=1) > 0.5
    # Walk up from the forehead while the rows are the person's.
    clear = np.nonzero(~above)[0]
    top = float(clear.max() + 1) if clear.size else 0.0
    hair_cut = top <= 1.0
    top = float(np.clip(top, forehead - HAIR_MAX * tall, forehead - HAIR_MIN * tall))
    chin = int(np.clip(face.landmarks[CHIN, 1], 0, height - 1))
    body = alpha[chin:]
    return Subject(
        face=face,
        photo_size=(width, height),
        hair_top=top,
        hair_cut=hair_cut,
        touches_left=bool(body.size and body[:, :2].max() > 0.5),
        touches_right=bool(body.size and body[:, -2:].max() > 0.5),
    )


@dataclass(frozen=True)
class Framing:
    """Where the headshot lies in the photo: one affine map to the output."""

    # (2, 3) affine from photo pixels to output pixels.
    matrix: npt.NDArray[np.float64]
    size: Size
    # The head (hair to chin) as a share of the frame height.
    head_share: float
    levelled_degrees: float
    # "head_and_shoulders" or "close" (the photo shows no shoulders).
    kind: str
    # The photo edges that lie inside the frame (top, bottom, left, right),
    # where the person fades into the backdrop, and the fade lengths in
    # photo pixels.
    fades: dict[str, float]
    # Output pixels per photo pixel: above 1 the photo is enlarged.
    scale: float

    @property
    def past_edge(self) -> bool:
        return bool(self.fades)

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


def frame(subject: Subject, head_share: float, size: Size, shift: float = 0.0) -> Framing:
    """The headshot frame closest to ``head_share`` that the photo can fill.

    ``head_share`` is the head's wanted share of the frame height and
    ``shift`` moves the face off the centre line (a share of the frame
    width, positive to the right). When the photo cannot fill the frame
    (it ends too close below the chin, or the body touches its side), the
    frame closes in step by step up to :data:`HEAD_MAX`; the rest fades.
    """
    face = subject.face
    out_w, out_h = size
    aspect = out_w / out_h
    angle = level_angle(face.roll_degrees)
    ex, ey = face.eye_center
    rotate = cv2.getRotationMatrix2D((ex, ey), angle, 1.0)

    def levelled(x: float, y: float) -> tuple[float, float]:
        px, py = rotate @ np.array([x, y, 1.0])
        return float(px - ex), float(py - ey)

    width, height = subject.photo_size
    corners = np.array([[0, 0, 1], [width, 0, 1], [0, height, 1], [width, height, 1]], float)
    cx, cy = (corners @ rotate.T - (ex, ey)).T
    inside_left, inside_right = max(cx[0], cx[2]), min(cx[1], cx[3])
    inside_top, inside_bottom = max(cy[0], cy[1]), min(cy[2], cy[3])

    box = face.mesh_box
    centre_x, _ = levelled(box.center[0], box.center[1])
    _, hair = levelled(box.center[0], subject.hair_top)
    _, chin = levelled(*face.landmarks[CHIN, :2])
    tall = face_height(face)
    if subject.hair_cut:
        hair = inside_top
    head = chin - hair
    close = inside_bottom - chin < SHOULDERS_BELOW * tall
    wanted = max(head_share, CLOSE_HEAD if close else HEAD_MIN)
    # First the loosest frame from the wanted share that the photo fills
    # where the body is (below it, and beside it where the body touches
    # the photo's side); failing that, one that reaches a little past it,
    # the body fading out there.
    for below_max, beside_max in ((0.0, 0.0), (BELOW_PHOTO_MAX, BESIDE_PHOTO_MAX)):
        share = min(wanted, HEAD_MAX)
        while True:
            crop_h = head / share
            crop_w = crop_h * aspect
            top = inside_top if subject.hair_cut else hair - HEADROOM * crop_h
            left = _across(
                centre_x - (0.5 + shift) * crop_w, crop_w, subject, inside_left, inside_right
            )
            below = top + crop_h - inside_bottom
            beside = max(
                inside_left - left if subject.touches_left else 0.0,
                left + crop_w - inside_right if subject.touches_right else 0.0,
            )
            fits = below <= below_max * crop_h + 0.5 and beside <= beside_max * crop_w + 0.5
            if fits or share >= HEAD_MAX:
                break
            share = min(share + _STEP, HEAD_MAX)
        if fits:
            break

    scale = out_h / crop_h
    matrix = np.asarray(cv2.getRotationMatrix2D((ex, ey), angle, scale), np.float64)
    matrix[:, 2] += (-left * scale - ex, -top * scale - ey)
    # A photo edge more than one output pixel inside the frame is a place
    # where the photo ends: the person fades out before it.
    margin = 1 / scale
    fades: dict[str, float] = {}
    if top + crop_h > inside_bottom + margin:
        room = inside_bottom - chin - FADE_BELOW_CHIN * tall
        fades["bottom"] = float(max(2.0, min(BOTTOM_FADE * crop_h, room)))
    if left < inside_left - margin:
        fades["left"] = SIDE_FADE * crop_w
    if left + crop_w > inside_right + margin:
        fades["right"] = SIDE_FADE * crop_w
    if top < inside_top - margin:
        fades["top"] = 2.0
    return Framing(
        matrix=matrix,
        size=size,
        head_share=head / crop_h,
        levelled_degrees=angle,
        kind="close" if close else "head_and_shoulders",
        fades=fades,
        scale=scale,
    )


def _across(
    wanted: float, crop_w: float, subject: Subject, inside_left: float, inside_right: float
) -> float:
    """The frame's left edge: ``wanted``, moved (within OFF_CENTRE) to keep a cut body inside."""
    low, high = wanted - OFF_CENTRE * crop_w, wanted + OFF_CENTRE * crop_w
    left = wanted
    if subject.touches_left:
        left = max(left, min(inside_left, high))
    if subject.touches_right:
        left = min(left, max(inside_right - crop_w, low))
    return left


def photo_fade(framing: Framing, photo_size: Size, extra: float = 1.0) -> FloatArray:
    """Over the output, 1 where the person's own pixels show, fading to 0 at the photo's ends.

    Only the photo edges inside the frame fade; outside the photo it is 0,
    so nothing there can come from the photo. ``extra`` lengthens the fades
    (the defocused own background fades out more gently than the person).
    Computed on a coarse grid: it is smooth.
    """
    out_w, out_h = framing.size
    step = 4
    inverse = cv2.invertAffineTransform(framing.matrix)
    xs = np.arange(0, out_w + step, step, dtype=np.float32)
    ys = np.arange(0, out_h + step, step, dtype=np.float32)
    src_x = inverse[0, 0] * xs[None, :] + (inverse[0, 1] * ys + inverse[0, 2])[:, None]
    src_y = inverse[1, 0] * xs[None, :] + (inverse[1, 1] * ys + inverse[1, 2])[:, None]
    width, height = photo_size
    distance = {
        "top": src_y,
        "bottom": height - 1 - src_y,
        "left": src_x,
        "right": width - 1 - src_x,
    }
    weight = np.ones_like(src_x)
    for edge, reach in distance.items():
        length = framing.fades.get(edge)
        if length is None:
            weight *= reach >= 0
            continue
        t = np.clip(reach / (length * extra), 0.0, 1.0)
        weight *= t * t * (3 - 2 * t)
    coarse = np.ascontiguousarray(weight, dtype=np.float32)
    full = cv2.resize(coarse, (xs.size * step, ys.size * step), interpolation=cv2.INTER_LINEAR)[
        :out_h, :out_w
    ]
    # The coarse grid blurs the photo's edge over a few pixels; the exact
    # edge comes from mapping the photo's own area.
    inside = cv2.warpAffine(
        np.ones((height, width), np.uint8),
        framing.matrix,
        framing.size,
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
    )
    return np.asarray(full * inside, np.float32)


def reaches_outside(framing: Framing, alpha: FloatArray, photo_size: Size) -> bool:
    """Whether any visible person pixel of the output maps outside the photo: a stretch.

    The photo's area is convex, so along a row of the output the pixels
    that map inside it form one run: a row's visible pixels all lie inside
    when its first and last one do. Checking those two per row answers
    the same as mapping every pixel, at a fraction of the cost.
    """
    visible = alpha > 0.02
    rows = np.flatnonzero(visible.any(axis=1))
    if rows.size == 0:
        return False
    seen = visible[rows]
    first = seen.argmax(axis=1)
    last = seen.shape[1] - 1 - seen[:, ::-1].argmax(axis=1)
    xs = np.concatenate([first, last]).astype(np.float64)
    ys = np.concatenate([rows, rows]).astype(np.float64)
    inverse = cv2.invertAffineTransform(framing.matrix)
    src_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    src_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    width, height = photo_size
    slack = 1.0 + math.ceil(1 / framing.scale)
    outside = (src_x < -slack) | (src_y < -slack)
    outside |= (src_x > width - 1 + slack) | (src_y > height - 1 + slack)
    return bool(outside.any())
