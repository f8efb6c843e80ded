"""The backdrop a person may choose for their order, instead of each style's own.

Six named studio colours cover what headshot services offer (white, two
greys, charcoal, navy, cream), and a brand colour may be given as
``#RRGGBB``. A choice applies to every style of the order: the studio
engine paints it flat (``with_backdrop``), a generative engine is told it in
its prompt, and a model that only knows a few backdrop names gets the
nearest of them (``nearest_name``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from headshots.styles import RGB, Style

# The colours of paper and cloth backdrops a studio hangs, as sRGB.
NAMED: dict[str, RGB] = {
    "white": (244, 244, 242),
    "light-grey": (204, 206, 208),
    "mid-grey": (128, 131, 135),
    "charcoal": (54, 57, 61),
    "navy": (31, 42, 68),
    "cream": (238, 230, 212),
}

# How a name reads in a prompt and on the page.
_SAID: dict[str, str] = {
    "white": "white",
    "light-grey": "light grey",
    "mid-grey": "mid grey",
    "charcoal": "charcoal grey",
    "navy": "navy blue",
    "cream": "warm cream",
}

_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


@dataclass(frozen=True)
class Backdrop:
    """A chosen backdrop: one of NAMED, or a brand colour (``name`` is then its hex)."""

    name: str
    rgb: RGB

    @property
    def hex(self) -> str:
        return hex_of(self.rgb)

    @property
    def said(self) -> str:
        """The colour as a person (and a prompt) reads it."""
        return _SAID.get(self.name, f"the colour {self.hex}")


def hex_of(rgb: RGB) -> str:
    return "#{:02X}{:02X}{:02X}".format(*rgb)


def parse_backdrop(text: str | None) -> Backdrop | None:
    """The backdrop a form or request asked for; None means each style's own.

    Raises ValueError with a sentence for anything else.
    """
    value = (text or "").strip()
    if value.lower() in ("", "style", "default"):
        return None
    named = value.lower().replace(" ", "-").replace("gray", "grey")
    if named in NAMED:
        return Backdrop(named, NAMED[named])
    match = _HEX.match(value)
    if match:
        digits = match.group(1)
        rgb = (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
        return Backdrop(f"#{digits.upper()}", rgb)
    names = ", ".join(NAMED)
    raise ValueError(
        f"The backdrop {value[:40]!r} is not one we know: choose one of {names}, "
        "or give a colour as #RRGGBB (for example #1F2A44)."
    )


def with_backdrop(style: Style, backdrop: Backdrop | None) -> Style:
    """The style with the chosen backdrop in its look and its prompt.

    The studio engine paints a chosen colour flat and exact (``solid``,
    accent the same colour), since a person who picks a brand colour expects
    that colour; the four variations then differ by framing and light.
    """
    if backdrop is None:
        return style
    look = dataclasses.replace(
        style.look,
        backdrop="solid",
        background=backdrop.rgb,
        background_accent=backdrop.rgb,
        exact_backdrop=True,
    )
    instruction = (
        f"Use a plain seamless studio backdrop in {backdrop.said} ({backdrop.hex}), "
        "evenly lit, instead of any other background."
    )
    light = style.light[:1].upper() + style.light[1:]
    return dataclasses.replace(
        style,
        look=look,
        studio=f"A plain {backdrop.said} studio backdrop, {style.light}",
        scene=f"{light} A plain {backdrop.said} seamless studio backdrop.",
        prompt=f"{style.prompt} {instruction}",
    )


# The reference colours of the names a backdrop-name model takes
# (flux-kontext-apps/professional-headshot: white, black, neutral, gray,
# office). "office" is a room, never the nearest to a plain colour.
MODEL_BACKGROUNDS: dict[str, RGB] = {
    "white": (245, 245, 245),
    "black": (18, 18, 20),
    "gray": (170, 170, 170),
    "neutral": (190, 172, 150),
}


def nearest_name(backdrop: Backdrop, names: dict[str, RGB] = MODEL_BACKGROUNDS) -> str:
    """The name among ``names`` whose colour is nearest, in CIELAB, to the chosen one."""
    target = _lab(backdrop.rgb)
    return min(names, key=lambda name: _distance(_lab(names[name]), target))


def _distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return math.dist(a, b)


def _lab(rgb: RGB) -> tuple[float, float, float]:
    """sRGB (D65) to CIELAB, by the standard formulas."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in rgb)
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    fx, fy, fz = f(x), f(y), f(z)
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))
