"""Intake: every photo a person can send, and every way a file can be wrong."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageCms

from headshots.imaging.intake import (
    EmptyFileError,
    FileTooLargeError,
    IntakeError,
    TooManyPixelsError,
    read_photo,
    sniff_format,
)

LIMITS = {"max_bytes": 15 * 1024 * 1024, "max_pixels": 40_000_000, "working_size": 1536}


def read(data: bytes, **overrides: int):  # type: ignore[no-untyped-def]
    return read_photo(data, **{**LIMITS, **overrides})


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x9286] = "secret comment"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    return exif


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    return Image.open(Path(__file__).parents[1] / "fixtures" / "obama.jpg").convert("RGB")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_every_accepted_format_reads_to_clean_rgb(portrait: Image.Image, fmt: str) -> None:
    data = encode(portrait, fmt, exif=exif_with_gps().tobytes(), quality=90)
    photo = read(data)
    assert photo.source_format == fmt
    assert photo.image.mode == "RGB"
    assert photo.image.size == portrait.size
    assert not photo.image.info
    assert len(photo.image.getexif()) == 0
    # The pixels are the photo's own (lossy formats differ a little).
    difference = np.abs(np.asarray(photo.image, dtype=int) - np.asarray(portrait, dtype=int))
    assert difference.mean() < 4


def test_heic_orientation_is_applied() -> None:
    # A landscape-stored frame tagged "rotate 90° clockwise to view" must come
    # out portrait, the way the phone showed it.
    wide = Image.new("RGB", (400, 200), (255, 255, 255))
    wide.paste((255, 0, 0), (0, 0, 40, 200))  # red band on the stored left edge
    data = encode(wide, "HEIF", exif=exif_with_gps(orientation=6).tobytes(), quality=95)
    photo = read(data)
    assert photo.image.size == (200, 400)
    top = np.asarray(photo.image)[:30].reshape(-1, 3).mean(axis=0)
    assert top[0] > 200 and top[1] < 80  # the band is now on top


def test_jpeg_orientation_is_applied_and_exif_dropped() -> None:
    wide = Image.new("RGB", (400, 200), (255, 255, 255))
    wide.paste((255, 0, 0), (0, 0, 40, 200))
    data = encode(wide, "JPEG", exif=exif_with_gps(orientation=6).tobytes(), quality=95)
    photo = read(data)
    assert photo.image.size == (200, 400)
    assert np.asarray(photo.image)[:30].reshape(-1, 3).mean(axis=0)[0] > 200
    assert len(photo.image.getexif()) == 0


def test_no_metadata_survives_in_what_we_would_write(portrait: Image.Image) -> None:
    comment = b"PERSONAL-COMMENT-MARKER"
    data = encode(
        portrait,
        "JPEG",
        exif=exif_with_gps().tobytes(),
        comment=comment,
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
    )
    clean = read(data).image
    for fmt in ("PNG", "JPEG"):
        written = encode(clean, fmt)
        assert comment not in written
        assert b"PhoneMaker" not in written
        assert b"Exif" not in written
        assert b"ICC_PROFILE" not in written and b"iCCP" not in written


def test_transparency_is_flattened_onto_white() -> None:
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rgba.paste((200, 10, 10, 255), (0, 0, 32, 64))
    photo = read(encode(rgba, "PNG"))
    pixels = np.asarray(photo.image)
    assert tuple(pixels[10, 50]) == (255, 255, 255)
    assert tuple(pixels[10, 10]) == (200, 10, 10)


def test_colour_profiles_are_applied_then_dropped() -> None:
    green = Image.new("RGB", (32, 32), (0, 255, 0))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    same = read(encode(green, "PNG", icc_profile=srgb)).image
    assert tuple(np.asarray(same)[0, 0]) == (0, 255, 0)
    assert "icc_profile" not in same.info
    # A broken profile is ignored rather than refusing a usable photo.
    broken = read(encode(green, "JPEG", icc_profile=b"not a profile" * 10)).image
    assert abs(int(np.asarray(broken)[0, 0, 1]) - 255) < 4


def test_large_photos_are_scaled_to_the_working_size(portrait: Image.Image) -> None:
    big = portrait.resize((portrait.width * 3, portrait.height * 3))
    photo = read(encode(big, "JPEG", quality=90))
    assert max(photo.image.size) == 1536
    assert photo.source_size == big.size
    small = read(encode(portrait, "JPEG"), working_size=512).image
    assert max(small.size) == 512


def test_empty_file_is_refused() -> None:
    with pytest.raises(EmptyFileError, match="empty"):
        read(b"")


def test_text_named_like_a_photo_is_refused_by_content(tmp_path: Path) -> None:
    fake = tmp_path / "holiday.jpg"
    fake.write_text("this is not a photo\n" * 20)
    with pytest.raises(IntakeError, match=r"not a photo we can read \(HEIC, JPEG, PNG or WebP\)"):
        read(fake.read_bytes())


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_refused(fmt: str) -> None:
    with pytest.raises(IntakeError, match="HEIC, JPEG, PNG or WebP"):
        read(encode(Image.new("RGB", (64, 64)), fmt))


def test_truncated_jpeg_is_refused(portrait: Image.Image) -> None:
    data = encode(portrait, "JPEG")
    with pytest.raises(IntakeError, match="damaged or incomplete"):
        read(data[: len(data) // 2])


def test_file_over_the_byte_limit_is_refused(portrait: Image.Image) -> None:
    data = encode(portrait, "PNG")
    with pytest.raises(FileTooLargeError, match="larger than"):
        read(data, max_bytes=len(data) - 1)


def test_photo_over_the_pixel_limit_is_refused() -> None:
    data = encode(Image.new("RGB", (3000, 2000)), "JPEG")
    with pytest.raises(TooManyPixelsError, match="more than 5 megapixels"):
        read(data, max_pixels=5_000_000)


def png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG that claims a huge greyscale image of zeros."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def test_png_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = png_bomb(100_000, 100_000)  # 10 gigapixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(TooManyPixelsError, match="megapixels"):
        read(bomb)


def test_sniffing_tells_formats_by_their_first_bytes(portrait: Image.Image) -> None:
    assert sniff_format(encode(portrait, "JPEG")[:32]) == "JPEG"
    assert sniff_format(encode(portrait, "HEIF")[:32]) == "HEIF"
    assert sniff_format(b"GIF89a" + b"\x00" * 26) is None
    assert pillow_heif.is_supported(encode(portrait, "HEIF"))
