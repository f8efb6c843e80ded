"""Stored clean images: raw pixels or PNG, read back the same."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from headshots.imaging import codecs


def colour_noise(mode: str = "RGB") -> Image.Image:
    # Each channel its own: a red and blue swapped on the way would show.
    pixels = np.random.default_rng(7).integers(0, 256, (80, 64, len(mode)), dtype=np.uint8)
    return Image.fromarray(pixels, mode)


def test_stored_pixels_and_pngs_read_back_as_the_same_image() -> None:
    image = colour_noise()
    raw = codecs.encode_pixels(image)
    png = codecs.encode_png(image)
    assert not raw.startswith(codecs.PNG_SIGNATURE)
    assert codecs.decode_image(raw).tobytes() == image.tobytes()
    assert codecs.decode_image(png).tobytes() == image.tobytes()
    assert codecs.clean_png(png) is png
    with Image.open(io.BytesIO(codecs.clean_png(raw))) as reopened:
        assert reopened.format == "PNG"
        assert reopened.convert("RGB").tobytes() == image.tobytes()


def test_a_png_with_transparency_keeps_it() -> None:
    image = colour_noise("RGBA")
    with Image.open(io.BytesIO(codecs.encode_png(image))) as reopened:
        assert reopened.mode == "RGBA"
        assert reopened.tobytes() == image.tobytes()
