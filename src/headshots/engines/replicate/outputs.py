"""A prediction's output: fetched at once, checked, decoded and fitted to the order's size.

The provider deletes outputs after about an hour, and an output link is a
bearer link to a person's image: it is fetched straight away, never logged,
and what comes back is accepted only if it is an image of sane size.
"""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import cv2
import httpx
import numpy as np
from PIL import Image

from headshots.engines.base import Size

# Where outputs are decoded and fitted: one thread per core (see the engine).
FINISHING = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="output")

# Kontext answers about one megapixel; anything outside these bounds is not
# an image we asked for.
OUTPUT_MAX_BYTES = 40 * 1024 * 1024
OUTPUT_MIN_SIDE = 256
OUTPUT_MAX_SIDE = 4096


async def download(files: httpx.AsyncClient, output: Any) -> bytes:
    if isinstance(output, list):
        output = output[0] if output else None
    if not isinstance(output, str):
        raise ValueError("no output")
    if output.startswith("data:"):
        _, _, encoded = output.partition(",")
        if len(encoded) > OUTPUT_MAX_BYTES * 4 // 3 + 4:
            raise ValueError("output too large")
        return base64.b64decode(encoded, validate=True)
    if output.startswith(("https://", "http://")):
        return await _fetch(files, output)
    raise ValueError("output is not a link")


async def _fetch(files: httpx.AsyncClient, url: str) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async with files.stream("GET", url) as response:
        response.raise_for_status()
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > OUTPUT_MAX_BYTES:
                raise ValueError("output too large")
            chunks.append(chunk)
    return b"".join(chunks)


def finished_image(data: bytes, size: Size) -> tuple[Image.Image, Size]:
    """A real image of sane size, fitted to the order's size around the head, and its own size.

    Any output shape the provider answers (one link, a list, a data URI)
    arrives here as bytes; PNG, JPEG and WebP are accepted. The size as
    made is returned too: a price per megapixel is paid on it.

    The header is read first (Pillow, no pixels decoded) so a decompression
    bomb is refused before any memory is spent. OpenCV then decodes and
    scales: about twice as fast as Pillow here, and it releases the GIL, so
    the 24 outputs of an order that land together are finished on every core.
    """
    with Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP"]) as header:
        width, height = header.size
    if not (
        OUTPUT_MIN_SIDE <= width <= OUTPUT_MAX_SIDE and OUTPUT_MIN_SIDE <= height <= OUTPUT_MAX_SIDE
    ):
        raise ValueError("output of an unexpected size")
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if pixels is None or pixels.shape[:2] != (height, width):
        raise ValueError("output does not decode")
    target_w, target_h = size
    scale = max(target_w / width, target_h / height)
    scaled_w = max(target_w, round(width * scale))
    scaled_h = max(target_h, round(height * scale))
    if (scaled_w, scaled_h) != (width, height):
        pixels = cv2.resize(pixels, (scaled_w, scaled_h), interpolation=cv2.INTER_CUBIC)
    # Crop the overflow evenly left and right, and a little more from the
    # bottom than the top: the head sits in the upper part of a headshot.
    left = (scaled_w - target_w) // 2
    top = int((scaled_h - target_h) * 0.4)
    pixels = pixels[top : top + target_h, left : left + target_w]
    return Image.fromarray(cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)), (width, height)
