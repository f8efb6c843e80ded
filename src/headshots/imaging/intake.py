"""Intake: the one door every photo comes through.

:func:`read_photo` turns untrusted bytes into a clean RGB image: format told
by content, size and pixel limits enforced before decoding, orientation
applied, colour converted to sRGB, alpha flattened onto white, every piece of
metadata dropped, and the result scaled to the working size. Nothing else in
the project decodes a person's upload.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from headshots.errors import HeadshotsError

pillow_heif.register_heif_opener()

# Pillow's own bomb guard is global state; we check dimensions ourselves
# against the configured limit before any pixel is decoded, and keep
# Pillow's guard as a second line at a generous ceiling.
Image.MAX_IMAGE_PIXELS = 200_000_000

_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_SRGB = ImageCms.createProfile("sRGB")


class IntakeError(HeadshotsError):
    status_code = 422
    code = "unreadable"
    message = "This file is not a photo we can read (HEIC, JPEG, PNG or WebP)."


class EmptyFileError(IntakeError):
    code = "empty"
    message = "The file is empty. Choose a photo and try again."


class FileTooLargeError(IntakeError):
    status_code = 413
    code = "too_large"
    message = "The file is too large."


class TooManyPixelsError(IntakeError):
    status_code = 413
    code = "too_many_pixels"
    message = "The photo has too many pixels."


@dataclass(frozen=True)
class Photo:
    """A decoded upload: sRGB pixels at working size and nothing else."""

    image: Image.Image
    source_format: str
    source_size: tuple[int, int]


def sniff_format(head: bytes) -> str | None:
    """The container format told by its first bytes, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def read_photo(data: bytes, *, max_bytes: int, max_pixels: int, working_size: int) -> Photo:
    if not data:
        raise EmptyFileError()
    if len(data) > max_bytes:
        raise file_too_large(max_bytes)
    kind = sniff_format(data[:32])
    if kind is None:
        raise IntakeError()

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, kind, max_pixels, working_size)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_many_pixels(max_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as error:
        # Truncated or corrupt files land here. The decoder's own text can
        # quote file contents, so it is not passed on.
        raise IntakeError(
            "This photo could not be read: the file looks damaged or incomplete. "
            "Try exporting it again (HEIC, JPEG, PNG or WebP)."
        ) from error


def file_too_large(max_bytes: int) -> FileTooLargeError:
    return FileTooLargeError(
        f"The file is larger than {max_bytes / (1024 * 1024):.0f} MB. "
        "Send a smaller photo (a phone photo is usually 2-5 MB)."
    )


def _too_many_pixels(max_pixels: int) -> TooManyPixelsError:
    return TooManyPixelsError(
        f"The photo has more than {max_pixels / 1e6:.0f} megapixels. "
        "Send a smaller photo; 12 megapixels is plenty."
    )


def _decode(data: bytes, kind: str, max_pixels: int, working_size: int) -> Photo:
    formats = ["HEIF"] if kind == "HEIF" else [kind]
    with Image.open(io.BytesIO(data), formats=formats) as image:
        width, height = image.size
        if width * height > max_pixels:
            raise _too_many_pixels(max_pixels)
        if image.format == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the result is
            # still at least the working size: most of intake's time is here.
            scale = working_size / max(width, height)
            if scale < 1:
                image.draft("RGB", (round(width * scale), round(height * scale)))
        image.load()
        upright = ImageOps.exif_transpose(image) or image
        rgb = _to_srgb(upright)
        clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())

    if max(clean.size) > working_size:
        ratio = working_size / max(clean.size)
        size = (max(1, round(clean.width * ratio)), max(1, round(clean.height * ratio)))
        clean = clean.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return Photo(image=clean, source_format=kind, source_size=(width, height))


def _to_srgb(image: Image.Image) -> Image.Image:
    """RGB pixels in sRGB, with any transparency flattened onto white."""
    icc = image.info.get("icc_profile")
    if image.mode in ("P", "PA") or (image.mode in ("L", "RGB") and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode.startswith("I"):
        # 16-bit greyscale PNG: keep the full range when going to 8 bits.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        background.alpha_composite(rgba)
        image = background.convert("RGB")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            mode = "RGB" if image.mode not in ("CMYK", "L") else image.mode
            converted = ImageCms.profileToProfile(
                image if image.mode == mode else image.convert(mode),
                source,
                _SRGB,
                outputMode="RGB",
            )
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile is ignored; the pixels are still usable
    return image.convert("RGB")
