"""Watermarked previews: what a person sees before paying.

The mark is tiled across the whole picture on a diagonal, in staggered rows,
so no crop of a quarter of the image (or less) comes out clean. Each stamp is
light text with a dark outline at partial opacity: it stays legible on a
white backdrop and on a black suit while the face underneath remains easy to
judge.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

SERVICE_NAME = "headshots"
ANGLE_DEGREES = 30
JPEG_QUALITY = 85
_FILL = (255, 255, 255, 100)
_OUTLINE = (0, 0, 0, 72)


def watermarked_preview(image: Image.Image, max_side: int = 768, text: str = "PREVIEW") -> bytes:
    """JPEG bytes, long side at most ``max_side``, with the tiled mark; no metadata."""
    if max_side < 16:
        raise ValueError("max_side must be at least 16 pixels")
    picture = _flatten(image)
    scale = min(1.0, max_side / max(picture.size))
    if scale < 1.0:
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        # OpenCV's area averaging: as sharp as Pillow's bicubic at preview
        # size, twice as fast, and outside the GIL (every output of an order
        # gets its preview at the same moment).
        shrunk = cv2.resize(np.asarray(picture), size, interpolation=cv2.INTER_AREA)
        picture = Image.fromarray(shrunk)
    marked = Image.alpha_composite(picture.convert("RGBA"), _overlay(picture.size, text))
    # A fresh image carries no info dict, so no EXIF, ICC or comment is saved.
    clean = Image.new("RGB", marked.size)
    clean.paste(marked.convert("RGB"))
    out = io.BytesIO()
    clean.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


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
