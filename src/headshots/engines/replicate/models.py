"""The Replicate models the hosted engine can drive, and the input each takes.

Each :class:`ModelSpec` says, from the model's published input schema, where
the selfie goes (``input_image`` as a string, or a list under ``input_images``,
``images``, ``image`` or ``image_input``), whether there is a prompt and a
seed, how size is asked (aspect ratio, megapixels, 1K/2K/4K), which output
formats it offers and what an image costs. Where each fact came from, and
which could not be confirmed, is in docs/decisions/0014-hosted-models.md;
tests/fixtures/replicate_schemas/ keeps a snapshot of every schema's input
properties, and the fake provider refuses what the snapshot refuses.

Inputs are built and checked here, before a prediction is paid for: a value
the model would refuse with a 422 is a configuration error we can name at once.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from headshots.backdrops import Backdrop, hex_of, nearest_name
from headshots.errors import ConfigurationError
from headshots.styles import Style, prompt_for

# professional-headshot takes a backdrop name instead of a prompt: the
# closest of its five to each preset's backdrop.
HEADSHOT_BACKGROUNDS: dict[str, str] = {
    "corporate": "gray",
    "creative": "neutral",
    "startup": "office",
    "executive": "black",
    "friendly": "neutral",
    "minimal": "white",
}

_VERSION = re.compile(r"^[0-9a-f]{64}$")
MAX_PROMPT_CHARS = 2000
MEGAPIXEL = 1_000_000

# Which output format to ask for, best first (bench/README.md, "Output
# formats"): a JPEG at quality 95 decodes several times faster here than a
# PNG and keeps 42.8 dB of the lossless pixels, so it is asked for where the
# model lets us set that quality. Where it does not (its JPEG quality is
# the provider's secret), PNG keeps the final image's quality.
JPEG_QUALITY = 95

SizeBy = Literal["aspect_ratio", "megapixels", "resolution", "k"]

_KONTEXT_RATIOS = (
    "match_input_image",
    "1:1",
    "16:9",
    "9:16",
    "4:3",
    "3:4",
    "3:2",
    "2:3",
    "4:5",
    "5:4",
    "21:9",
    "9:21",
    "2:1",
    "1:2",
)
_FLUX2_RATIOS = (
    "match_input_image",
    "custom",
    "1:1",
    "16:9",
    "9:16",
    "3:2",
    "2:3",
    "4:3",
    "3:4",
    "4:5",
    "5:4",
    "21:9",
)
_GEMINI_RATIOS = (
    "match_input_image",
    "1:1",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
    "9:16",
    "16:9",
    "21:9",
)
_QWEN_RATIOS = ("match_input_image", "1:1", "16:9", "9:16", "4:3", "3:4")
_SEEDREAM_RATIOS = ("match_input_image", "1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3", "21:9")


@dataclass(frozen=True)
class Price:
    """What one prediction costs, in US dollars, and where that figure came from."""

    per_image: float = 0.0
    per_output_megapixel: float = 0.0
    # Billed per started megapixel of every input image (observed for FLUX.2).
    per_input_megapixel: float = 0.0
    source: str = ""
    # False when the figure is not from the provider's own page.
    confirmed: bool = False

    def of(self, output_pixels: int, input_pixels: int) -> float:
        cost = self.per_image + self.per_output_megapixel * output_pixels / MEGAPIXEL
        if self.per_input_megapixel and input_pixels:
            cost += self.per_input_megapixel * math.ceil(input_pixels / MEGAPIXEL)
        return round(cost, 6)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    # The field that takes the selfie, and whether it takes a list of images.
    image_field: str
    image_list: bool
    # False for professional-headshot, which has no prompt field.
    prompted: bool
    # False for models without a seed field: each call is a new draw that
    # cannot be reproduced.
    seeded: bool
    size_by: SizeBy
    aspect_ratios: tuple[str, ...]
    # Empty when the model has no output_format field (it answers what it answers).
    output_formats: tuple[str, ...]
    # Whether the model has an output_quality field (0..100).
    output_quality: bool
    price: Price
    # Fixed fields every prediction of this model carries.
    fixed: dict[str, Any] = field(default_factory=dict)
    # The size asked for, in the model's own terms, for a headshot of about
    # one megapixel (megapixels, resolution or size field).
    size_value: str | None = None

    @property
    def output_format(self) -> str | None:
        """The format asked for (see JPEG_QUALITY), None when the model has no choice."""
        if not self.output_formats:
            return None
        if self.output_quality and "jpg" in self.output_formats:
            return "jpg"
        return "png" if "png" in self.output_formats else self.output_formats[0]


_REPLICATE_2025 = "replicate.com pricing as read for decision 0004 (2025)"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "black-forest-labs/flux-kontext-pro",
            "FLUX.1 Kontext [pro]",
            "input_image",
            image_list=False,
            prompted=True,
            seeded=True,
            size_by="aspect_ratio",
            aspect_ratios=_KONTEXT_RATIOS,
            output_formats=("jpg", "png"),
            output_quality=False,
            price=Price(per_image=0.04, source=_REPLICATE_2025, confirmed=True),
            fixed={"safety_tolerance": 2},
        ),
        ModelSpec(
            "black-forest-labs/flux-kontext-max",
            "FLUX.1 Kontext [max]",
            "input_image",
            image_list=False,
            prompted=True,
            seeded=True,
            size_by="aspect_ratio",
            aspect_ratios=_KONTEXT_RATIOS,
            output_formats=("jpg", "png"),
            output_quality=False,
            price=Price(per_image=0.08, source=_REPLICATE_2025, confirmed=True),
            fixed={"safety_tolerance": 2},
        ),
        ModelSpec(
            "black-forest-labs/flux-kontext-dev",
            "FLUX.1 Kontext [dev]",
            "input_image",
            image_list=False,
            prompted=True,
            seeded=True,
            size_by="aspect_ratio",
            aspect_ratios=_KONTEXT_RATIOS,
            output_formats=("webp", "jpg", "png"),
            output_quality=True,
            price=Price(per_image=0.025, source=_REPLICATE_2025, confirmed=True),
        ),
        ModelSpec(
            "flux-kontext-apps/professional-headshot",
            "professional-headshot (FLUX.1 Kontext app)",
            "input_image",
            image_list=False,
            prompted=False,
            seeded=True,
            size_by="aspect_ratio",
            aspect_ratios=_KONTEXT_RATIOS,
            output_formats=("jpg", "png"),
            output_quality=False,
            price=Price(per_image=0.04, source=_REPLICATE_2025, confirmed=True),
            # Gender is never guessed from a face: "none" lets the model decide.
            fixed={"safety_tolerance": 2, "gender": "none"},
        ),
        ModelSpec(
            "black-forest-labs/flux-2-pro",
            "FLUX.2 [pro]",
            "input_images",
            image_list=True,
            prompted=True,
            seeded=True,
            size_by="resolution",
            aspect_ratios=_FLUX2_RATIOS,
            output_formats=("webp", "jpg", "png"),
            output_quality=True,
            price=Price(
                per_image=0.015,
                per_output_megapixel=0.015,
                per_input_megapixel=0.015,
                source="HeyPuter/puter pull request 2806 (Apr 2026), billed with a real key",
            ),
            fixed={"safety_tolerance": 2},
            size_value="1 MP",
        ),
        ModelSpec(
            "black-forest-labs/flux-2-klein-4b",
            "FLUX.2 [klein] 4B",
            "images",
            image_list=True,
            prompted=True,
            seeded=True,
            size_by="megapixels",
            aspect_ratios=_FLUX2_RATIOS[:1] + _FLUX2_RATIOS[2:],
            output_formats=("webp", "jpg", "png"),
            output_quality=True,
            price=Price(
                per_input_megapixel=0.001,
                source="lumenfall.ai provider table for Replicate (2026)",
            ),
            size_value="1",
        ),
        ModelSpec(
            "qwen/qwen-image-edit-plus",
            "Qwen-Image-Edit-Plus",
            "image",
            image_list=True,
            prompted=True,
            seeded=True,
            size_by="aspect_ratio",
            aspect_ratios=_QWEN_RATIOS,
            output_formats=("webp", "jpg", "png"),
            output_quality=True,
            price=Price(per_image=0.03, source="not found; an estimate to override"),
            fixed={"go_fast": True},
        ),
        ModelSpec(
            "google/nano-banana",
            "Nano Banana (Gemini 2.5 Flash Image)",
            "image_input",
            image_list=True,
            prompted=True,
            seeded=False,
            size_by="aspect_ratio",
            aspect_ratios=_GEMINI_RATIOS,
            output_formats=("jpg", "png"),
            output_quality=False,
            price=Price(per_image=0.039, source="Google's Gemini API price (2025)"),
        ),
        ModelSpec(
            "google/nano-banana-pro",
            "Nano Banana Pro (Gemini 3 Pro Image)",
            "image_input",
            image_list=True,
            prompted=True,
            seeded=False,
            size_by="resolution",
            aspect_ratios=_GEMINI_RATIOS,
            output_formats=("jpg", "png"),
            output_quality=False,
            price=Price(per_image=0.134, source="Google's Gemini API price for 1K/2K (2025)"),
            fixed={"safety_filter_level": "block_only_high"},
            size_value="1K",
        ),
        ModelSpec(
            "bytedance/seedream-4",
            "Seedream 4.0",
            "image_input",
            image_list=True,
            prompted=True,
            seeded=False,
            size_by="k",
            aspect_ratios=_SEEDREAM_RATIOS,
            output_formats=(),
            output_quality=False,
            price=Price(per_image=0.03, source="not found; an estimate to override"),
            fixed={"sequential_image_generation": "disabled", "max_images": 1},
            size_value="1K",
        ),
        ModelSpec(
            "bytedance/seedream-4.5",
            "Seedream 4.5",
            "image_input",
            image_list=True,
            prompted=True,
            seeded=False,
            size_by="k",
            aspect_ratios=_SEEDREAM_RATIOS,
            output_formats=(),
            output_quality=False,
            price=Price(per_image=0.04, source="not found; an estimate to override"),
            fixed={"sequential_image_generation": "disabled", "max_images": 1},
            # 1K is not offered by 4.5.
            size_value="2K",
        ),
    )
}

# The field each way of asking for size uses.
_SIZE_FIELDS: dict[SizeBy, str] = {
    "megapixels": "output_megapixels",
    "resolution": "resolution",
    "k": "size",
}


def model_spec(name: str, version: str | None = None) -> ModelSpec:
    spec = MODELS.get(name)
    if spec is None:
        raise ConfigurationError(
            f"HEADSHOTS_REPLICATE_MODEL names a model this service cannot drive "
            f"({name[:80]!r}). Choose one of: {', '.join(MODELS)}."
        )
    if version is not None and not _VERSION.match(version):
        raise ConfigurationError(
            "HEADSHOTS_REPLICATE_MODEL_VERSION must be a 64-character version id "
            "from the model's versions page, or empty for the latest version."
        )
    return spec


def aspect_ratio_for(size: tuple[int, int], ratios: tuple[str, ...]) -> str:
    """The ratio of ``ratios`` closest to ``size``; a 1024x1280 order gets 4:5 where offered."""
    want = size[0] / size[1]
    fixed = [r for r in ratios if ":" in r]

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(int(w) / int(h) - want)

    return min(fixed, key=distance)


def build_input(
    spec: ModelSpec,
    style: Style,
    image_uri: str,
    seed: int | None,
    size: tuple[int, int],
    *,
    extend_crop: bool = False,
) -> dict[str, Any]:
    """The ``input`` object of one prediction, checked against the model's schema."""
    if not image_uri.startswith(("data:image/jpeg;base64,", "data:image/png;base64,")):
        # The selfie goes inline, never as a link someone else could open.
        raise ValueError("the selfie must be sent as a data URI")
    fields: dict[str, Any] = {
        spec.image_field: [image_uri] if spec.image_list else image_uri,
        "aspect_ratio": aspect_ratio_for(size, spec.aspect_ratios),
        **spec.fixed,
    }
    if spec.seeded:
        if seed is None or not 0 <= seed < 2**31:
            raise ValueError("seed out of range")
        fields["seed"] = seed
    if spec.size_by != "aspect_ratio":
        fields[_SIZE_FIELDS[spec.size_by]] = spec.size_value
    if spec.output_format is not None:
        fields["output_format"] = spec.output_format
        if spec.output_quality and spec.output_format != "png":
            fields["output_quality"] = JPEG_QUALITY
    if spec.prompted:
        prompt = prompt_for(style, extend_crop=extend_crop).strip()
        if not prompt or len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"style {style.id} has no usable prompt")
        fields["prompt"] = prompt
    else:
        fields["background"] = background_name(style)
    return fields


def background_name(style: Style) -> str:
    """professional-headshot's backdrop name: the nearest to a chosen colour, else the style's."""
    if style.look.exact_backdrop:
        return nearest_name(Backdrop(hex_of(style.look.background), style.look.background))
    return HEADSHOT_BACKGROUNDS.get(style.id, "neutral")
