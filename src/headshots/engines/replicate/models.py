"""The Replicate models the hosted engine can call, and the input each takes.

Field names and allowed values are those of the models' published input
schemas (see docs/decisions/0004-replicate-engine.md). Inputs are built and
checked here, before a prediction is paid for: a value the model would
refuse with a 422 is a configuration error we can name at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from headshots.errors import ConfigurationError
from headshots.styles import Style, prompt_for

# The aspect ratios every Kontext model on Replicate accepts, besides
# ``match_input_image``.
ASPECT_RATIOS: tuple[str, ...] = (
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


@dataclass(frozen=True)
class ModelSpec:
    name: str
    # False for professional-headshot, which has no prompt field.
    prompted: bool
    output_formats: tuple[str, ...]
    # None when the model has no ``safety_tolerance`` field.
    safety_tolerance: int | None
    # Published price per output image, in US dollars, when this was written.
    cost_usd: float


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("black-forest-labs/flux-kontext-pro", True, ("jpg", "png"), 2, 0.04),
        ModelSpec("black-forest-labs/flux-kontext-max", True, ("jpg", "png"), 2, 0.08),
        ModelSpec("black-forest-labs/flux-kontext-dev", True, ("webp", "jpg", "png"), None, 0.025),
        ModelSpec("flux-kontext-apps/professional-headshot", False, ("jpg", "png"), 2, 0.04),
    )
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


def aspect_ratio_for(size: tuple[int, int]) -> str:
    """The supported ratio closest to ``size``; a 1024x1280 order gets 4:5."""
    want = size[0] / size[1]

    def distance(ratio: str) -> float:
        w, h = ratio.split(":")
        return abs(int(w) / int(h) - want)

    return min(ASPECT_RATIOS, key=distance)


def build_input(
    spec: ModelSpec,
    style: Style,
    image_uri: str,
    seed: int,
    size: tuple[int, int],
    *,
    extend_crop: bool = False,
) -> dict[str, Any]:
    """The ``input`` object of one prediction, checked against the model's schema."""
    if not image_uri.startswith(("data:image/jpeg;base64,", "data:image/png;base64,")):
        # The selfie goes inline, never as a link someone else could open.
        raise ValueError("the selfie must be sent as a data URI")
    if not 0 <= seed < 2**31:
        raise ValueError("seed out of range")
    fields: dict[str, Any] = {
        "input_image": image_uri,
        "seed": seed,
        "aspect_ratio": aspect_ratio_for(size),
        "output_format": "png",
    }
    if spec.safety_tolerance is not None:
        fields["safety_tolerance"] = spec.safety_tolerance
    if spec.prompted:
        prompt = prompt_for(style, extend_crop=extend_crop).strip()
        if not prompt or len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(f"style {style.id} has no usable prompt")
        fields["prompt"] = prompt
    else:
        # Gender is never guessed from a face: "none" lets the model decide.
        fields["gender"] = "none"
        fields["background"] = HEADSHOT_BACKGROUNDS.get(style.id, "neutral")
    if fields["output_format"] not in spec.output_formats:
        raise ValueError("output format not offered by this model")
    return fields
