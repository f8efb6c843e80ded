"""Is it a photo? Telling a painting, a drawing, a print or a screen from a camera photo.

No model can be downloaded here, so the test is a few image statistics,
each aimed at what one kind of non-photo lacks or adds, measured on the
face (or on the whole picture when no face is found) at a fixed scale so
that they do not depend on the photo's size:

- ``strokes``: the share of all edge energy held by the strongest 5% of
  edges. A painting or a cartoon is flat colour between brush strokes or
  outlines, so a few edges carry most of it; skin, hair and camera noise
  spread it out.
- ``flat``: the share of the face's smooth parts that is perfectly flat (no
  camera noise at all): poster colours, cel shading.
- ``ink``: for a picture without colour, the grain of pencil lines or
  printed dots against the paper, which a black-and-white photo does not
  have.

- ``periodic``: for a photo of a screen, the moire its pixel grid leaves:
  the share of the colour detail (past the coarsest shading) that sits in
  a few frequencies standing far above the usual level at their scale. A
  camera photo's colour detail falls off smoothly with frequency; a grid
  seen through a lens beats into regular bands of colour. (An earlier
  measure of colour fringes, fine colour detail against fine brightness
  detail, did not separate screens from blurred or downscaled photos.)

A watercolour (washes of colour between crisp edges) is not caught
reliably: the statistic of that, crisp edges without fine texture between
them, is just as high on a real photo smoothed by a phone's noise
reduction or beauty filter (decision 0008 has the figures). Such a photo
already comes near ``strokes`` and ``flat``: strong denoising can cross
them.

The limits were set on the selfie set (tests/selfie_set.py; figures in
decision 0008 and bench/README.md): every real photo, also degraded
(JPEG quality 30, downscaled, blurred, darkened, turned to grey), stays
below each of them with a margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

Pixels = npt.NDArray[np.uint8]

# The region is looked at this many pixels wide.
SCALE = 256
# Limits (photos' largest values on the selfie set in brackets).
STROKES_MAX = 0.33  # [0.28]; oil paintings 0.39-0.47, cartoons 0.27-0.40
FLAT_MAX = 0.5  # [0.44, a photo blurred by 2 px]; cartoons 0.58-0.99
INK_MAX = 4.5  # [2.6]; pencil sketches 7.1-10.4, halftone prints 15-29
# [0.024; 0.05 at JPEG quality 5]; screen photos 0.61-0.79 (0.49-0.94 with
# a coarser grid or a larger turn; one coarse-grid case 0); paintings 0.
PERIODIC_MAX = 0.2
# A colour frequency is a peak at this many times its ring's usual power;
# frequencies slower than PERIODIC_SLOWEST (cycles per pixel) are not looked at.
PERIODIC_PEAK = 100.0
PERIODIC_SLOWEST = 0.025
# A picture is "without colour" when its median saturation is below this.
GREY_SATURATION = 12


@dataclass(frozen=True)
class Medium:
    """The statistics of one picture, and which limit they cross, if any."""

    strokes: float
    flat: float
    ink: float
    periodic: float
    grey: bool

    @property
    def reason(self) -> str | None:
        """Which kind of non-photo this looks like, or None for a photo."""
        if self.grey and self.ink > INK_MAX:
            return "drawing"
        if self.strokes > STROKES_MAX or self.flat > FLAT_MAX:
            return "painting"
        if self.periodic > PERIODIC_MAX:
            return "screen"
        return None

    @property
    def score(self) -> float:
        """How far past its nearest limit the picture is (> 1: not a photo)."""
        ratios = [
            self.strokes / STROKES_MAX,
            self.flat / FLAT_MAX,
            self.periodic / PERIODIC_MAX,
        ]
        if self.grey:
            ratios.append(self.ink / INK_MAX)
        return max(ratios)


def measure(pixels: Pixels) -> Medium:
    """The statistics of an RGB region (a face's box, or a whole picture)."""
    height, width = pixels.shape[:2]
    size = (SCALE, max(16, round(height * SCALE / max(width, 1))))
    shrink = width > SCALE
    region = cv2.resize(
        np.ascontiguousarray(pixels),
        size,
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
    )
    luma = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = float(np.median(cv2.cvtColor(region, cv2.COLOR_RGB2HSV)[..., 1])) < GREY_SATURATION

    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1)
    magnitude = np.hypot(gx, gy).ravel()
    total = float(magnitude.sum())
    top = np.partition(magnitude, -max(1, magnitude.size // 20))[-max(1, magnitude.size // 20) :]
    strokes = float(top.sum()) / total if total > 0 else 1.0

    kernel = np.ones((3, 3), np.uint8)
    luma8 = np.asarray(luma, np.uint8)
    spread = cv2.dilate(luma8, kernel).astype(np.int16) - cv2.erode(luma8, kernel)
    smooth = magnitude.reshape(luma.shape) <= np.median(magnitude)
    flat = float(np.mean(spread[smooth] <= 1)) if smooth.any() else 1.0

    ink = 0.0
    if grey:
        big = cv2.resize(
            cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY),
            (2 * SCALE, max(16, round(height * 2 * SCALE / max(width, 1)))),
            interpolation=cv2.INTER_AREA if width > 2 * SCALE else cv2.INTER_CUBIC,
        )
        ink = float(np.abs(big.astype(np.float32) - cv2.medianBlur(big, 3)).mean())
    return Medium(
        strokes=round(strokes, 3),
        flat=round(flat, 3),
        ink=round(ink, 2),
        periodic=round(_periodic(region), 3),
        grey=grey,
    )


def _periodic(region: npt.NDArray[Any]) -> float:
    """The share of the colour detail held by peaks far above their frequency's usual power."""
    height, width = region.shape[:2]
    lab = cv2.cvtColor(region.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    window = cv2.createHanningWindow((width, height), cv2.CV_32F)
    # Each frequency's distance from zero, in cycles per pixel, binned into
    # rings of 1/200: a ring's usual power is the geometric mean over it, so
    # a few peaks barely move it.
    radius = np.hypot(np.fft.rfftfreq(width)[None, :], np.fft.fftfreq(height)[:, None]).ravel()
    ring = np.minimum((radius * 200).astype(np.intp), 100)
    rings = np.maximum(np.bincount(ring, minlength=101), 1)
    # Slower than 1/40 cycle per pixel is the face's own shading and the glare.
    detail = radius > PERIODIC_SLOWEST
    share = 0.0
    for channel in (1, 2):  # green-red and blue-yellow
        colour = lab[..., channel]
        if colour.std() < 0.5:  # no colour to speak of (a grey picture)
            continue
        power = np.abs(np.fft.rfft2((colour - colour.mean()) * window)).ravel() ** 2 + 1e-12
        usual = np.exp(np.bincount(ring, np.log(power), minlength=101) / rings)
        peaks = detail & (power > PERIODIC_PEAK * usual[ring])
        share = max(share, float(power[peaks].sum() / power[detail].sum()))
    return share
