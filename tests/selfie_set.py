"""The selfies people actually upload, made from the face fixtures (decision 0008).

Every case is built on the fly from a photo in ``tests/fixtures`` (see
PROVENANCE.md there), so the set adds no bytes to the repository and each
case's geometry is tied to the face it was cut from: close-ups that fill the
frame, tight crops through the forehead, crops that lose the chin or an eye,
faces cut out of the group photo (alone, and with a neighbour half in the
frame), small chat-sized photos, photos turned on their side, and
non-photos made from the same faces (painting, watercolour, pencil sketch,
cartoon, a phone photo of a screen, a printed halftone).

``expected`` says what the person should be told, per engine capability:
``found`` (a face is found), and the refusal code or ``None`` (accepted) for
engines that can and cannot extend a cropped head.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from headshots.imaging.faces import CHIN, FOREHEAD, LEFT_IRIS, find_one_face, segment_person

FIXTURES = Path(__file__).parent / "fixtures"
SINGLES = (
    "obama.jpg",
    "obama2.jpg",
    "obama3.jpg",
    "biden.jpg",
    "grace_hopper.jpg",
    "astronaut.png",
)
# The group photo's faces, left to right: (left, top, width, height) at 1536 px wide.
GROUP_FACES = (
    (149, 211, 138, 138),
    (398, 126, 124, 124),
    (624, 178, 138, 137),
    (929, 91, 131, 131),
    (1269, 107, 125, 125),
)
GROUP_WIDTH = 1536

Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    # How it was made from which fixture (kept with the results).
    provenance: str
    build: Callable[[], Image.Image]
    # A face is in the photo (paintings included: they show one).
    has_face: bool = True
    # The refusal code for a generative engine and for the studio engine;
    # None means accepted.
    refusal_generative: str | None = None
    refusal_studio: str | None = None
    # A non-photo that should be flagged as one.
    non_photo: bool = False


@functools.cache
def source(name: str, size: int = 1024) -> Image.Image:
    image = Image.open(FIXTURES / name).convert("RGB")
    ratio = size / max(image.size)
    if ratio < 1:
        image = image.resize(
            (round(image.width * ratio), round(image.height * ratio)), Image.Resampling.LANCZOS
        )
    return image


@functools.cache
def _geometry(name: str) -> dict[str, float]:
    """Where the face lies in the 1024 px source: mesh box, forehead, chin, eye."""
    face = find_one_face(source(name))
    box = face.mesh_box
    return {
        "left": box.left,
        "right": box.right,
        "top": float(face.landmarks[FOREHEAD, 1]),
        "chin": float(face.landmarks[CHIN, 1]),
        "eye_x": float(face.landmarks[LEFT_IRIS, 0]),
        "height": box.height,
        "width": box.width,
    }


def _crop(
    name: str, left: float, top: float, right: float, bottom: float, out: int, size: int = 1024
) -> Image.Image:
    image = source(name, size)
    box = (
        max(0, round(left)),
        max(0, round(top)),
        min(image.width, round(right)),
        min(image.height, round(bottom)),
    )
    crop = image.crop(box)
    ratio = out / max(crop.size)
    return crop.resize(
        (max(1, round(crop.width * ratio)), max(1, round(crop.height * ratio))),
        Image.Resampling.LANCZOS,
    )


def closeup(name: str, out: int = 256) -> Image.Image:
    """The face fills the frame; the hair is cut at the top, the neck at the bottom."""
    g = _geometry(name)
    h, w = g["height"], g["width"]
    return _crop(
        name,
        g["left"] - 0.1 * w,
        g["top"] - 0.04 * h,
        g["right"] + 0.1 * w,
        g["chin"] + 0.1 * h,
        out,
    )


def forehead_cut(name: str, out: int = 280) -> Image.Image:
    """The frame's top edge runs through the forehead; eyes, mouth and chin are in."""
    g = _geometry(name)
    h, w = g["height"], g["width"]
    return _crop(
        name,
        g["left"] - 0.15 * w,
        g["top"] + 0.12 * h,
        g["right"] + 0.15 * w,
        g["chin"] + 0.25 * h,
        out,
    )


def chin_cut(name: str, out: int = 300) -> Image.Image:
    """The bottom edge runs between the mouth and the chin: part of the face is missing."""
    g = _geometry(name)
    h, w = g["height"], g["width"]
    return _crop(
        name,
        g["left"] - 0.3 * w,
        g["top"] - 0.4 * h,
        g["right"] + 0.3 * w,
        g["chin"] - 0.14 * h,
        out,
    )


def eye_cut(name: str, out: int = 300) -> Image.Image:
    """The left edge runs through the eye on the image's left."""
    g = _geometry(name)
    h, w = g["height"], g["width"]
    return _crop(
        name, g["eye_x"], g["top"] - 0.4 * h, g["right"] + 0.3 * w, g["chin"] + 0.4 * h, out
    )


def head_and_shoulders(name: str, out: int) -> Image.Image:
    """A portrait crop: the whole head with room around it, the face about 40% of the height."""
    g = _geometry(name)
    h = g["chin"] - g["top"]
    cx = (g["left"] + g["right"]) / 2
    return _crop(name, cx - 1.0 * h, g["top"] - 0.7 * h, cx + 1.0 * h, g["chin"] + 1.0 * h, out)


def rotated(name: str, quarter_turns: int) -> Image.Image:
    """A phone photo whose orientation tag was lost: the person lies on their side."""
    image = head_and_shoulders(name, 640)
    return image.rotate(90 * quarter_turns, expand=True)


def group_single(index: int, out: int = 300) -> Image.Image:
    """One face cut out of the group photo, the neighbours left outside."""
    left, top, width, height = GROUP_FACES[index]
    return _crop(
        "group_of_five.jpg",
        left - 0.3 * width,
        top - 0.5 * height,
        left + 1.3 * width,
        top + 1.6 * height,
        out,
        GROUP_WIDTH,
    )


def group_pair(index: int, out: int = 400) -> Image.Image:
    """A face cut out of the group photo with the next face half in the frame."""
    left, top, width, height = GROUP_FACES[index]
    n_left, _, n_width, _ = GROUP_FACES[index + 1]
    return _crop(
        "group_of_five.jpg",
        left - 0.3 * width,
        top - 0.6 * height,
        n_left + 0.55 * n_width,
        top + 1.6 * height,
        out,
        GROUP_WIDTH,
    )


# --- non-photos -----------------------------------------------------------------


def _pixels(image: Image.Image) -> Pixels:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))).copy()


def as_bgr(image: Image.Image) -> Pixels:
    return np.ascontiguousarray(_pixels(image)[..., ::-1])


def from_bgr(pixels: Pixels) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(pixels[..., ::-1]), "RGB")


def oil_painting(name: str) -> Image.Image:
    """Brush strokes of flat colour (OpenCV's oil-painting filter)."""
    return from_bgr(cv2.xphoto.oilPainting(as_bgr(source(name)), 7, 1))


def watercolour(name: str) -> Image.Image:
    """Edge-preserving washes of colour (OpenCV's stylization filter)."""
    return from_bgr(cv2.stylization(as_bgr(source(name)), sigma_s=60, sigma_r=0.45))


def pencil_sketch(name: str) -> Image.Image:
    """Grey pencil lines on white paper (OpenCV's pencil-sketch filter)."""
    grey, _ = cv2.pencilSketch(as_bgr(source(name)), sigma_s=60, sigma_r=0.07, shade_factor=0.05)
    return Image.fromarray(grey, "L").convert("RGB")


def cartoon(name: str) -> Image.Image:
    """Few flat colours inside dark outlines, as in a comic."""
    bgr = as_bgr(source(name))
    smooth = bgr
    for _ in range(4):
        smooth = cv2.bilateralFilter(smooth, 9, 40, 7)
    levels = (smooth // 48) * 48 + 24
    grey = cv2.medianBlur(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), 7)
    edges = cv2.adaptiveThreshold(grey, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 4)
    return from_bgr(np.where(edges[..., None] > 0, levels, 20).astype(np.uint8))


def screen_photo(name: str) -> Image.Image:
    """A photo of a portrait shown on a screen: the pixel grid, moire and glare."""
    image = source(name)
    rgb = _pixels(image).astype(np.float32)
    height, width = rgb.shape[:2]
    # Each screen pixel becomes 3 stripes (R, G, B) with a dark gap, seen at
    # 3x and slightly turned, then photographed back at the original size.
    big = cv2.resize(rgb, (width * 3, height * 3), interpolation=cv2.INTER_NEAREST)
    mask = np.zeros_like(big)
    for channel in range(3):
        mask[:, channel::3, channel] = 1.0
    mask[2::3, :, :] *= 0.6
    # The camera half resolves the grid: faint coloured stripes over the picture.
    big = big * (0.75 + 0.25 * mask * 2.6)
    turn = cv2.getRotationMatrix2D((width * 1.5, height * 1.5), 1.5, 1.0)
    big = cv2.warpAffine(big, turn, (width * 3, height * 3), borderMode=cv2.BORDER_REFLECT)
    back = cv2.resize(big, (width, height), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    glare = 60 * np.exp(-(((xs - 0.75 * width) ** 2 + (ys - 0.2 * height) ** 2) / (0.1 * width**2)))
    back = back + glare[..., None]
    noise = np.random.default_rng(3).normal(0, 2.0, back.shape).astype(np.float32)
    return Image.fromarray(np.clip(back + noise, 0, 255).astype(np.uint8), "RGB")


def halftone(name: str, cell: int = 5) -> Image.Image:
    """A portrait printed in a newspaper's dots, scanned back."""
    grey = np.asarray(source(name).convert("L"), np.float32) / 255
    height, width = grey.shape
    small = cv2.resize(grey, (width // cell, height // cell), interpolation=cv2.INTER_AREA)
    out = np.ones((small.shape[0] * cell, small.shape[1] * cell), np.float32)
    ys, xs = np.mgrid[0:cell, 0:cell].astype(np.float32) - (cell - 1) / 2
    distance = np.hypot(xs, ys) / (cell / 2)
    for row in range(small.shape[0]):
        for col in range(small.shape[1]):
            radius = np.sqrt(1 - small[row, col]) * 1.2
            out[row * cell : (row + 1) * cell, col * cell : (col + 1) * cell] = (
                distance > radius
            ).astype(np.float32)
    out = cv2.GaussianBlur(out, (0, 0), 0.6) * 235 + 15
    return Image.fromarray(out.astype(np.uint8), "L").convert("RGB")


NON_PHOTO_KINDS: dict[str, Callable[[str], Image.Image]] = {
    "oil_painting": oil_painting,
    "watercolour": watercolour,
    "pencil_sketch": pencil_sketch,
    "cartoon": cartoon,
    "screen_photo": screen_photo,
    "halftone": halftone,
}
NON_PHOTO_SOURCES = ("obama.jpg", "biden.jpg", "grace_hopper.jpg")


def cases() -> list[Case]:
    """The whole set, in a stable order."""
    found: list[Case] = []
    for name in SINGLES:
        stem = name.rsplit(".", 1)[0]
        found += [
            Case(
                f"{stem}-closeup",
                "closeup",
                f"{name}: face box + 10% at the sides, 4% of the face into the hair, to 256 px",
                functools.partial(closeup, name),
                refusal_studio="tight_crop",
            ),
            Case(
                f"{stem}-forehead-cut",
                "tight_crop",
                f"{name}: top edge 12% of the face below the hairline, to 280 px",
                functools.partial(forehead_cut, name),
                refusal_studio="tight_crop",
            ),
            Case(
                f"{stem}-chin-cut",
                "missing_chin",
                f"{name}: bottom edge 14% of the face above the chin, to 300 px",
                functools.partial(chin_cut, name),
                refusal_generative="face_cut_off",
                refusal_studio="face_cut_off",
            ),
            Case(
                f"{stem}-eye-cut",
                "missing_eye",
                f"{name}: left edge through the centre of the image-left eye, to 300 px",
                functools.partial(eye_cut, name),
                refusal_generative="face_cut_off",
                refusal_studio="face_cut_off",
            ),
            Case(
                f"{stem}-small",
                "small",
                f"{name}: head and shoulders, 220 px on the long side",
                functools.partial(head_and_shoulders, name, 220),
            ),
            Case(
                f"{stem}-sideways",
                "rotated",
                f"{name}: head and shoulders at 640 px, turned a quarter clockwise",
                functools.partial(rotated, name, 3),
            ),
            Case(
                f"{stem}-upside",
                "rotated",
                f"{name}: head and shoulders at 640 px, turned a quarter anticlockwise",
                functools.partial(rotated, name, 1),
            ),
        ]
    for index in range(len(GROUP_FACES)):
        found.append(
            Case(
                f"group-face{index + 1}",
                "group_single",
                f"group_of_five.jpg: face {index + 1} with 30% margins, neighbours outside, 300 px",
                functools.partial(group_single, index),
            )
        )
    for index in range(len(GROUP_FACES) - 1):
        found.append(
            Case(
                f"group-pair{index + 1}",
                "group_pair",
                f"group_of_five.jpg: face {index + 1} with face {index + 2} half in the frame",
                functools.partial(group_pair, index),
                refusal_generative="several_faces",
                refusal_studio="several_faces",
            )
        )
    found.append(
        Case(
            "street",
            "no_face",
            "no_face_street.jpg as it is",
            lambda: source("no_face_street.jpg"),
            has_face=False,
            refusal_generative="no_face",
            refusal_studio="no_face",
        )
    )
    for kind, make in NON_PHOTO_KINDS.items():
        for name in NON_PHOTO_SOURCES:
            stem = name.rsplit(".", 1)[0]
            found.append(
                Case(
                    f"{stem}-{kind}",
                    kind,
                    f"{name} at 1024 px through {make.__name__}()",
                    functools.partial(make, name),
                    non_photo=True,
                )
            )
    return found


# --- things in front of the face, another person at the edge (decision 0008) ---------


def _lower_face(face_image: Image.Image) -> tuple[float, float, float]:
    """The point between the lower lip and the chin, and the face's height."""
    face = find_one_face(face_image)
    points = face.landmarks
    height = float(np.hypot(*(points[CHIN, :2] - points[FOREHEAD, :2])))
    x, y = (points[14, :2] + points[CHIN, :2]) / 2
    return float(x), float(y), height


def with_microphone(name: str) -> Image.Image:
    return microphone_on(source(name))


def microphone_on(image: Image.Image) -> Image.Image:
    """A dark, rounded microphone with a grille held in front of the chin, its handle below."""
    x, y, height = _lower_face(image)
    out = _pixels(image)
    width = 0.8 * height
    handle = (round(x - 0.06 * width), round(y)), (round(x + 0.06 * width), round(y + height))
    cv2.rectangle(out, *handle, (25, 25, 28), -1)
    axes = (round(0.2 * width), round(0.24 * width))
    cv2.ellipse(out, (round(x), round(y)), axes, 0, 0, 360, (45, 45, 50), -1, cv2.LINE_AA)
    for step in range(-8, 9, 2):
        row = round(y + step * 0.025 * width)
        cv2.line(
            out, (round(x - 0.19 * width), row), (round(x + 0.19 * width), row), (70, 70, 75), 1
        )
    return Image.fromarray(out, "RGB")


def with_phone(name: str) -> Image.Image:
    """A phone's dark glass held at a slant over the mouth and chin."""
    image = source(name)
    x, y, height = _lower_face(image)
    out = _pixels(image)
    width = 0.8 * height
    corners = cv2.boxPoints(((x, y - 0.08 * height), (0.55 * width, 1.1 * width), 20.0))
    cv2.fillConvexPoly(out, corners.astype(np.int32), (20, 22, 30), cv2.LINE_AA)
    return Image.fromarray(out, "RGB")


def with_neighbour(name: str, neighbour: str, share: float = 0.4) -> Image.Image:
    return neighbour_on(head_and_shoulders(name, 640), neighbour, share)


def neighbour_on(image: Image.Image, neighbour: str, share: float = 0.4) -> Image.Image:
    """Part of another person (the side of their head and a shoulder) cut in at the left edge.

    The neighbour's head-and-shoulders photo, scaled to the same size, gives
    the outer ``share`` of its right side, cut out along its person mask.
    """
    other = head_and_shoulders(neighbour, 640).resize(image.size, Image.Resampling.LANCZOS)
    mask = (segment_person(other) * 255).astype(np.uint8)
    strip = round(share * image.width)
    part = other.crop((other.width - strip, 0, other.width, other.height))
    part_mask = Image.fromarray(mask[:, other.width - strip :], "L")
    out = image.copy()
    out.paste(part, (0, 0), part_mask)
    return out


def shoulder_cut(name: str, out: int = 640) -> Image.Image:
    """The whole head with room above it, the left edge close beside the face.

    The shoulder on that side runs into the edge: a frame the studio engine
    cannot widen without showing it cut off.
    """
    g = _geometry(name)
    h = g["chin"] - g["top"]
    return _crop(
        name,
        g["left"] - 0.1 * g["width"],
        g["top"] - 0.7 * h,
        g["right"] + 1.2 * h,
        g["chin"] + 1.0 * h,
        out,
    )
