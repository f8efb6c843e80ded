"""Stored clean images: raw pixels or PNG, read back the same."""

from __future__ import annotations

import io

from PIL import Image

from headshots.imaging import codecs


def test_stored_pixels_and_pngs_read_back_as_the_same_image() -> None:
    image = Image.effect_noise((64, 80), 60).convert("RGB")
    raw = codecs.encode_pixels(image)
    png = codecs.encode_png(image)
    assert not raw.startswith(codecs.PNG_SIGNATURE)
    assert codecs.decode_image(raw).tobytes() == image.tobytes()
    assert codecs.decode_image(png).tobytes() == image.tobytes()
    assert codecs.clean_png(png) is png
    with Image.open(io.BytesIO(codecs.clean_png(raw))) as reopened:
        assert reopened.format == "PNG"
        assert reopened.convert("RGB").tobytes() == image.tobytes()
