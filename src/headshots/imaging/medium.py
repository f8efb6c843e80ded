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
- ``ink``: for a picture in one colour (grey, or toned like an old book's
  sepia plate), the grain of pencil lines, engraved hatching or printed
  dots against the paper, which a black-and-white photo does not have.
- ``skin``: on a face, the colour of its middle (median Lab hue and
  chroma). Photographed skin of every tone lies in a narrow band of hue
  (orange-red to orange); an old master's face under yellowed varnish, a
  woodblock print's pale yellow face or a gold mask lie past its yellow
  end, and a white, black or silver mask in a colour photo has almost no
  colour at all. Fitted on real artworks and masks (decision 0008).

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
below each of them with a margin. The real artworks (decision 0008) refitted ``ink`` and added
``skin`` on the fitting half of real artworks and simulated masks
(tests/artworks.py), reported on the other half.

A strong colour cast can carry a real face past the yellow end of
``skin``: a blue channel cut by 30% (uncorrected tungsten light) does on
several fixtures; a warm grade (red +8%, blue -15%) does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

Pixels = npt.NDArray[np.uint8]

# The region is looked at this many pixels wide.
SCALE = 256
# Limits (photos' largest values on the selfie set in brackets).
STROKES_MAX = 0.33  # [0.28]; oil paintings 0.39-0.47, cartoons 0.27-0.40
FLAT_MAX = 0.5  # [0.44, a photo blurred by 2 px]; cartoons 0.58-0.99
# [1.7; 4.0 after a strong unsharp mask]; pencil sketches 7.1-10.4, halftone
# prints 15-29, engraved book plates 3.1-3.3.
INK_MAX = 2.8
# [0.024; 0.05 at JPEG quality 5]; screen photos 0.61-0.79 (0.49-0.94 with
# a coarser grid or a larger turn; one coarse-grid case 0); paintings 0.
PERIODIC_MAX = 0.2
# A colour frequency is a peak at this many times its ring's usual power;
# frequencies slower than PERIODIC_SLOWEST (cycles per pixel) are not looked at.
PERIODIC_PEAK = 100.0
PERIODIC_SLOWEST = 0.025
# A picture is in one colour (grey or toned) when its colour varies less than
# this (Lab a/b standard deviation): toned prints 0-2.2, sepia photos 1.2,
# colour photos 3.4 and more.
ONE_COLOUR_SPREAD = 2.5
# The middle of a face: a half of its box each way, around its centre.
SKIN_MIDDLE = 0.5
# Photographed skin: Lab hue 21-65 degrees on the fixtures' faces (colour
# photos and their degraded copies), chroma 8.8-64; a warm grade takes a
# few to 66.5 (chroma 38) and a pale, graded face to 70.8 at chroma 27.8.
# The fitted paintings' faces 70-79 at chroma 29-45, gold masks 85 at
# chroma 53-56; white masks chroma 5.5.
SKIN_HUE_MAX = 68.0
# Past SKIN_HUE_MAX only counts with this much colour: a pale face's hue
# swings with a slight cast (one fitted painting, 29.1, is given up for it).
SKIN_HUE_CHROMA = 30.0
SKIN_CHROMA_MIN = 7.0


@dataclass(frozen=True)
class Medium:
    """The statistics of one picture, and which limit they cross, if any."""

    strokes: float
    flat: float
    ink: float
    periodic: float
    grey: bool  # in one colour: grey or toned
    # The middle of the face's hue (degrees) and chroma; None without a face
    # or colour.
    skin_hue: float | None = None
    skin_chroma: float | None = None

    @property
    def reason(self) -> str | None:
        """Which kind of non-photo this looks like, or None for a photo."""
        if self.grey and self.ink > INK_MAX:
            return "drawing"
        if self.strokes > STROKES_MAX or self.flat > FLAT_MAX:
            return "painting"
        if self.periodic > PERIODIC_MAX:
            return "screen"
        if self._skin_ratio() > 1:
            return "painted or masked face"
        return None

    @property
    def score(self) -> float:
        """How far past its nearest limit the picture is (> 1: not a photo)."""
        ratios = [
            self.strokes / STROKES_MAX,
            self.flat / FLAT_MAX,
            self.periodic / PERIODIC_MAX,
            self._skin_ratio(),
        ]
        if self.grey:
            ratios.append(self.ink / INK_MAX)
        return max(ratios)

    def _skin_ratio(self) -> float:
        if self.skin_hue is None or self.skin_chroma is None:
            return 0.0
        # Too yellow needs both: a pale face's hue swings with a slight cast.
        yellow = min(self.skin_hue / SKIN_HUE_MAX, self.skin_chroma / SKIN_HUE_CHROMA)
        colourless = SKIN_CHROMA_MIN / max(self.skin_chroma, 0.1)
        return max(yellow, colourless)


def measure(pixels: Pixels, *, face: bool = False) -> Medium:
    """The statistics of an RGB region: a face's box (``face``), or a whole picture."""
    height, width = pixels.shape[:2]
    size = (SCALE, max(16, round(height * SCALE / max(width, 1))))
    shrink = width > SCALE
    region = cv2.resize(
        np.ascontiguousarray(pixels),
        size,
        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
    )
    luma = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lab = np.asarray(cv2.cvtColor(region.astype(np.float32) / 255, cv2.COLOR_RGB2Lab), np.float32)
    grey = float(np.hypot(lab[..., 1].std(), lab[..., 2].std())) < ONE_COLOUR_SPREAD

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
    skin_hue = skin_chroma = None
    if face and not grey:
        skin_hue, skin_chroma = _skin(lab)
    return Medium(
        strokes=round(strokes, 3),
        flat=round(flat, 3),
        ink=round(ink, 2),
        periodic=round(_periodic(lab), 3),
        grey=grey,
        skin_hue=skin_hue,
        skin_chroma=skin_chroma,
    )


def _skin(lab: npt.NDArray[np.float32]) -> tuple[float, float]:
    """The median hue (degrees) and chroma of the middle of a face's box."""
    height, width = lab.shape[:2]
    dy, dx = round(height * SKIN_MIDDLE / 2), round(width * SKIN_MIDDLE / 2)
    middle = lab[height // 2 - dy : height // 2 + dy, width // 2 - dx : width // 2 + dx]
    a, b = middle[..., 1].ravel(), middle[..., 2].ravel()
    hue = float(np.degrees(np.arctan2(np.median(b), np.median(a))))
    return round(hue, 1), round(float(np.median(np.hypot(a, b))), 1)


def _periodic(lab: npt.NDArray[np.float32]) -> float:
    """The share of the colour detail held by peaks far above their frequency's usual power."""
    height, width = lab.shape[:2]
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
