"""Watermarked previews: what a person sees before paying.

The mark is tiled across the whole picture on a diagonal, in staggered rows,
so no crop of a quarter of the image (or less) comes out clean. Each stamp is
light text with a dark outline at partial opacity: it stays legible on a
white backdrop and on a black suit.

Over the face the marks are faint. A person pays for a face they must judge
(the eyes, the skin, the smile), and a dense mark there hides exactly that;
the faint marks still run through it, so a crop of the face alone is not a
clean picture, and everything around it (hair, clothes, backdrop: the rest
of the headshot) carries the full mark. ``face_coverage`` measures how much
of the face the mark still changes (bench/README.md has the figures).
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

from headshots.imaging.faces import Box

SERVICE_NAME = "headshots"
ANGLE_DEGREES = 30
JPEG_QUALITY = 85
_FILL = (255, 255, 255, 100)
_OUTLINE = (0, 0, 0, 72)
# How strong the mark stays over the face, as a share of its strength
# elsewhere: visible there, thin enough to judge the face through.
FACE_MARK_STRENGTH = 0.15
# Where a headshot's face is when nobody says: the framing rules of decision
# 0013 put the head in the upper middle of a 4:5 portrait. As shares of the
# width and height: centre x, centre y, half width, half height.
_USUAL_FACE = (0.5, 0.36, 0.2, 0.19)
# The clear zone is the face's box widened a little (ears, hairline) and
# blends into the full mark over this share of the face's width.
_FACE_MARGIN = 0.12
_FACE_FADE = 0.25

FloatArray = npt.NDArray[np.float32]


def watermarked_preview(
    image: Image.Image, max_side: int = 768, text: str = "PREVIEW", face: Box | None = None
) -> bytes:
    """JPEG bytes, long side at most ``max_side``, with the tiled mark; no metadata.

    ``face`` is the face's box in ``image`` when it is known; without it the
    mark is thin where a headshot's face usually is.
    """
    pixels, scale = _preview_pixels(image, max_side)
    if face is not None:
        face = Box(face.left * scale, face.top * scale, face.width * scale, face.height * scale)
    return _jpeg(_blended(pixels, text, face, FACE_MARK_STRENGTH))


def preview_jpeg(image: Image.Image, max_side: int = 768) -> bytes:
    """The same preview without the mark: what a person sees once they have paid."""
    pixels, _ = _preview_pixels(image, max_side)
    return _jpeg(pixels)


def _preview_pixels(image: Image.Image, max_side: int) -> tuple[npt.NDArray[np.uint8], float]:
    """RGB pixels, long side at most ``max_side``, and the scale they were shrunk by."""
    if max_side < 16:
        raise ValueError("max_side must be at least 16 pixels")
    picture = _flatten(image)
    scale = min(1.0, max_side / max(picture.size))
    pixels = np.asarray(picture)
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        # OpenCV's area averaging: as sharp as Pillow's bicubic at preview
        # size, twice as fast, and outside the GIL (every output of an order
        # gets its preview at the same moment).
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)
    return np.ascontiguousarray(pixels), scale


def _jpeg(pixels: npt.NDArray[np.uint8]) -> bytes:
    # A fresh image carries no info dict, so no EXIF, ICC or comment is saved.
    clean = Image.fromarray(pixels, "RGB")
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def mark(
    pixels: npt.NDArray[np.uint8],
    text: str = "PREVIEW",
    face: Box | None = None,
    face_strength: float = FACE_MARK_STRENGTH,
) -> npt.NDArray[np.uint8]:
    """RGB pixels with the mark blended in: full strength, thinner over the face."""
    return _blended(np.ascontiguousarray(pixels), text, face, face_strength)


def _blended(
    pixels: npt.NDArray[np.uint8], text: str, face: Box | None, strength: float
) -> npt.NDArray[np.uint8]:
    """The mark over ``pixels``: each pixel weighed against the mark's colour by its alpha.

    One pass of OpenCV outside the GIL, with the weights of a size made once:
    every preview of an order has the same size and, but for a known face,
    the same thinned region. Rebuilding the thinned layer and letting Pillow
    composite RGBA copies cost about three times as much.
    """
    height, width = pixels.shape[:2]
    if face is None:
        colour, weight_photo, weight_mark = _usual_weights((width, height), text, strength)
    else:
        colour, weight_photo, weight_mark = _weights((width, height), text, face, strength)
    return np.asarray(cv2.blendLinear(pixels, colour, weight_photo, weight_mark), np.uint8)


Weights = tuple[npt.NDArray[np.uint8], FloatArray, FloatArray]


@lru_cache(maxsize=8)
def _usual_weights(size: tuple[int, int], text: str, strength: float) -> Weights:
    """The blend of a preview whose face nobody has found: where a headshot's face usually is."""
    weights = _weights(size, text, None, strength)
    for array in weights:
        array.flags.writeable = False  # shared by every preview of this size
    return weights


def _weights(size: tuple[int, int], text: str, face: Box | None, strength: float) -> Weights:
    """The mark's colour, and per pixel the weights of the photo and of the mark."""
    layer = np.asarray(_thinned(_overlay(size, text), face, strength))
    colour = np.ascontiguousarray(layer[..., :3])
    weight_mark = layer[..., 3].astype(np.float32) * np.float32(1 / 255)
    weight_photo = np.float32(1) - weight_mark
    return colour, weight_photo, weight_mark


def _thinned(overlay: Image.Image, face: Box | None, strength: float) -> Image.Image:
    """The overlay with its alpha scaled down over the face (a copy; the cached one stays)."""
    face = face or usual_face(overlay.size)
    reach_x = face.width / 2 * (1 + _FACE_MARGIN) + face.width * _FACE_FADE
    reach_y = face.height / 2 * (1 + _FACE_MARGIN) + face.width * _FACE_FADE
    center_x, center_y = face.center
    left, top = max(0, int(center_x - reach_x)), max(0, int(center_y - reach_y))
    right = min(overlay.width, int(center_x + reach_x) + 1)
    bottom = min(overlay.height, int(center_y + reach_y) + 1)
    if right <= left or bottom <= top:
        return overlay
    # Only the face's neighbourhood changes: the weights are computed for
    # that rectangle alone.
    region = np.array(overlay.crop((left, top, right, bottom)))
    weight = _face_weight((left, top, right, bottom), face, strength)
    region[..., 3] = (region[..., 3] * weight + 0.5).astype(np.uint8)
    thinned = overlay.copy()
    thinned.paste(Image.fromarray(region, "RGBA"), (left, top))
    return thinned


def face_coverage(
    plain: npt.NDArray[np.uint8], marked: npt.NDArray[np.uint8], face: Box, visible: float = 8.0
) -> float:
    """The share of the face's box where the mark moves the grey level by more than ``visible``."""
    left, top = max(0, round(face.left)), max(0, round(face.top))
    right, bottom = round(face.right), round(face.bottom)
    before = _grey(plain[top:bottom, left:right])
    after = _grey(marked[top:bottom, left:right])
    return float((np.abs(after - before) > visible).mean())


def _grey(pixels: npt.NDArray[np.uint8]) -> FloatArray:
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    grey: FloatArray = pixels.astype(np.float32) @ weights
    return grey


def usual_face(size: tuple[int, int]) -> Box:
    """Where a headshot of this size has its face when nobody has looked."""
    width, height = size
    cx, cy, half_w, half_h = _USUAL_FACE
    return Box(
        (cx - half_w) * width, (cy - half_h) * height, 2 * half_w * width, 2 * half_h * height
    )


def _face_weight(region: tuple[int, int, int, int], face: Box, strength: float) -> FloatArray:
    """Per pixel of ``region``, how strong the mark is: ``strength`` in the face, 1 away."""
    left, top, right, bottom = region
    center_x, center_y = face.center
    radius_x = face.width / 2 * (1 + _FACE_MARGIN)
    radius_y = face.height / 2 * (1 + _FACE_MARGIN)
    fade = max(1.0, face.width * _FACE_FADE)
    xs = (np.arange(left, right, dtype=np.float32) - center_x) / radius_x
    ys = (np.arange(top, bottom, dtype=np.float32) - center_y) / radius_y
    # Distance outside the ellipse, in pixels along the face's half width.
    reach = (np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2) - 1.0) * radius_x
    ramp = np.clip(reach / fade, 0.0, 1.0)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no visible ring
    weight: FloatArray = strength + (1 - strength) * ramp
    return weight


def _flatten(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if "A" in image.getbands() or image.mode == "P":
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


@lru_cache(maxsize=8)
def _overlay(size: tuple[int, int], text: str) -> Image.Image:
    """The full-size transparent layer of marks; previews of an order share a size."""
    width, height = size
    label = _label(max(12, min(width, height) // 14), text)
    # Turning one small mark and stamping copies is ten times faster than
    # turning a whole page of text, at the same quality.
    stamp = label.rotate(ANGLE_DEGREES, resample=Image.Resampling.BICUBIC, expand=True)
    period = label.width + label.height
    line_gap = round(label.height * 1.6)
    angle = math.radians(ANGLE_DEGREES)
    along = (math.cos(angle), -math.sin(angle))  # the reading direction, y down
    across = (math.sin(angle), math.cos(angle))
    reach = math.hypot(width, height) / 2 + max(stamp.size)
    # A margin of one stamp on each side lets marks hang over the edges.
    margin_x, margin_y = stamp.width, stamp.height
    layer = Image.new("RGBA", (width + 2 * margin_x, height + 2 * margin_y))
    rows = math.ceil(reach / line_gap)
    columns = math.ceil(reach / period) + 1
    for row in range(-rows, rows + 1):
        # Alternate rows shift by half a period, so the gap between two marks
        # of one row sits above and below text of the neighbouring rows.
        shift = (row % 2) * period / 2
        for column in range(-columns, columns + 1):
            u, v = column * period + shift, row * line_gap
            x = width / 2 + u * along[0] + v * across[0] - stamp.width / 2 + margin_x
            y = height / 2 + u * along[1] + v * across[1] - stamp.height / 2 + margin_y
            if 0 <= x <= layer.width - stamp.width and 0 <= y <= layer.height - stamp.height:
                layer.alpha_composite(stamp, dest=(round(x), round(y)))
    return layer.crop((margin_x, margin_y, margin_x + width, margin_y + height))


@lru_cache(maxsize=8)
def _label(font_size: int, text: str) -> Image.Image:
    """One mark, level, on a transparent canvas just large enough for it."""
    font = ImageFont.load_default(size=font_size)
    outline = max(1, font_size // 14)
    label = f"{text} · {SERVICE_NAME}"
    left, top, right, bottom = font.getbbox(label, stroke_width=outline)
    canvas = Image.new("RGBA", (math.ceil(right - left), math.ceil(bottom - top)))
    ImageDraw.Draw(canvas).text(
        (-left, -top), label, font=font, fill=_FILL, stroke_width=outline, stroke_fill=_OUTLINE
    )
    return canvas
