"""The model families the flux-local engine runs, read from the weights folder.

A folder in diffusers layout names its pipeline in ``model_index.json``
(``_class_name``); the transformer's ``config.json`` tells the sizes of one
pipeline apart (FLUX.2 [klein] 4B and 9B share ``Flux2KleinPipeline`` but
not a licence). Each family carries what differs between them: the parts of
the folder, the defaults (steps, guidance), the sizes it works at, how the
style's prompt is put to it, and its licence, which decides whether an
operator may sell its images.

Nothing here imports torch or diffusers: the checks read JSON files only, so
``/readyz`` and start-up can run them cheaply.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from headshots.errors import ConfigurationError
from headshots.styles import Style, prompt_for

WEIGHT_SUFFIXES = (".safetensors", ".bin")
MEGAPIXEL = 1024 * 1024


@dataclass(frozen=True)
class Licence:
    name: str
    url: str
    # Whether images made with the weights may be sold without a separate
    # licence from the model's maker; None when the weights are not recognised.
    commercial: bool | None

    def summary(self) -> str:
        if self.commercial is None:
            return f"{self.name}: read the licence that came with the weights before selling"
        if self.commercial:
            return f"{self.name}: commercial use allowed"
        return f"{self.name}: non-commercial; selling images needs a licence from Black Forest Labs"


FLUX1_DEV_NON_COMMERCIAL = Licence(
    "FLUX.1 [dev] Non-Commercial License",
    "https://huggingface.co/black-forest-labs/FLUX.1-Kontext-dev/blob/main/LICENSE.md",
    commercial=False,
)
APACHE_2 = Licence("Apache-2.0", "https://www.apache.org/licenses/LICENSE-2.0", commercial=True)
FLUX_NON_COMMERCIAL = Licence(
    "FLUX Non-Commercial License",
    "https://huggingface.co/black-forest-labs/FLUX.2-klein-9B/blob/main/LICENSE.md",
    commercial=False,
)
UNKNOWN_LICENCE = Licence("licence not recognised", "", commercial=None)

KONTEXT_PIPELINE = "FluxKontextPipeline"
KLEIN_PIPELINE = "Flux2KleinPipeline"

# FLUX.2 is a multi-reference editor; saying which image is the person keeps
# it from treating the selfie as a loose style reference. Kontext edits the
# one image it is given and reads the prompt as is.
KLEIN_REFERENCE = "The reference image is a photo of the person to portray."


def kontext_prompt(style: Style, *, extend_crop: bool = False) -> str:
    return prompt_for(style, extend_crop=extend_crop)


def klein_prompt(style: Style, *, extend_crop: bool = False) -> str:
    return f"{KLEIN_REFERENCE} {prompt_for(style, extend_crop=extend_crop)}"


@dataclass(frozen=True)
class Family:
    """One kind of weights folder and everything the engine does differently for it."""

    key: str
    title: str
    pipeline_class: str
    transformer_class: str
    # Folders the pipeline loads; the models among them must hold weights.
    components: tuple[str, ...]
    models: tuple[str, ...]
    licence: Licence
    steps: int
    guidance: float
    # The selfie is given at about this many pixels (what the model was
    # trained to read), and outputs are drawn up to this many, then scaled.
    input_pixels: int = MEGAPIXEL
    max_generation_pixels: int = 2 * MEGAPIXEL
    # Whether the pipeline's sampling is step-distilled (guidance is ignored).
    distilled: bool = False

    def prompt(self, style: Style, *, extend_crop: bool = False) -> str:
        if self.pipeline_class == KLEIN_PIPELINE:
            return klein_prompt(style, extend_crop=extend_crop)
        return kontext_prompt(style, extend_crop=extend_crop)

    def call_options(self, accepts: frozenset[str], width: int, height: int) -> dict[str, Any]:
        """Pipeline arguments only this family takes (checked against the installed pipeline)."""
        options: dict[str, Any] = {}
        if self.pipeline_class == KONTEXT_PIPELINE:
            if "max_area" in accepts:
                # Without it Kontext rescales every request to one megapixel.
                options["max_area"] = width * height
            if "_auto_resize" in accepts:
                # The selfie is already at Kontext's size; keep its exact shape.
                options["_auto_resize"] = False
        return options

    def describe(self) -> dict[str, Any]:
        """What /readyz and the start-up log say about the weights."""
        return {
            "family": self.key,
            "model": self.title,
            "licence": self.licence.name,
            "commercial_use": self.licence.commercial,
        }


KONTEXT = Family(
    key="flux1-kontext-dev",
    title="FLUX.1 Kontext [dev]",
    pipeline_class=KONTEXT_PIPELINE,
    transformer_class="FluxTransformer2DModel",
    components=(
        "scheduler",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "transformer",
        "vae",
    ),
    models=("text_encoder", "text_encoder_2", "transformer", "vae"),
    licence=FLUX1_DEV_NON_COMMERCIAL,
    # What Kontext [dev] is usually run with (its model card's example).
    steps=28,
    guidance=2.5,
)

# The step-distilled [klein] models run in 4 steps without guidance (their
# model cards' example: num_inference_steps=4, guidance_scale=1.0); the
# undistilled "base" ones at diffusers' defaults, 50 steps and guidance 4.
KLEIN = Family(
    key="flux2-klein",
    title="FLUX.2 [klein]",
    pipeline_class=KLEIN_PIPELINE,
    transformer_class="Flux2Transformer2DModel",
    components=("scheduler", "text_encoder", "tokenizer", "transformer", "vae"),
    models=("text_encoder", "transformer", "vae"),
    licence=UNKNOWN_LICENCE,
    steps=4,
    guidance=1.0,
    distilled=True,
)

# (double blocks, single blocks, width) of the published transformers, from
# diffusers' scripts/convert_flux2_to_diffusers.py (klein-4b, klein-9b).
KLEIN_SIZES: dict[tuple[int, int, int], tuple[str, Licence]] = {
    (5, 20, 3072): ("4B", APACHE_2),
    (8, 24, 4096): ("9B", FLUX_NON_COMMERCIAL),
}

FAMILIES = (KONTEXT, KLEIN)


def _where(path: Path) -> str:
    return f"HEADSHOTS_FLUX_WEIGHTS_DIR ({path})"


def _read_json(path: Path, where: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigurationError(f"The {path.name} in {where} cannot be read.") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"The {path.name} in {where} is not a JSON object.")
    return data


def detect_family(path: Path) -> Family:
    """The family of the weights in ``path``, or a sentence saying why they cannot be used.

    Reads JSON files only: cheap enough for every ``/readyz``.
    """
    where = _where(path)
    if not path.is_dir():
        raise ConfigurationError(
            f"{where} is not a folder. Download FLUX.2 [klein] 4B or FLUX.1 Kontext [dev] "
            "in diffusers layout into it (see docs/flux-local.md)."
        )
    index_path = path / "model_index.json"
    if not index_path.is_file():
        raise ConfigurationError(
            f"{where} has no model_index.json, so it is not a diffusers pipeline folder. "
            "Download the model with all its files (see docs/flux-local.md)."
        )
    index = _read_json(index_path, where)
    found = index.get("_class_name")
    family = next((f for f in FAMILIES if f.pipeline_class == found), None)
    if family is None:
        supported = " or ".join(f"{f.pipeline_class} ({f.title})" for f in FAMILIES)
        raise ConfigurationError(
            f"{where} holds a {str(found)[:60]} pipeline; the flux-local engine runs {supported}."
        )
    _check_parts(path, family)
    config = _read_json(path / "transformer" / "config.json", where)
    transformer = config.get("_class_name")
    if transformer != family.transformer_class:
        raise ConfigurationError(
            f"{where} names {family.pipeline_class} but its transformer is a "
            f"{str(transformer)[:60]}, not a {family.transformer_class}: the folder mixes two "
            "models. Download it again (see docs/flux-local.md)."
        )
    if family is KLEIN:
        return _klein_variant(index, config)
    return family


def _check_parts(path: Path, family: Family) -> None:
    missing = [name for name in family.components if not (path / name).is_dir()]
    missing += [
        name
        for name in family.models
        if name not in missing
        and not any(p.name.endswith(WEIGHT_SUFFIXES) for p in (path / name).iterdir())
    ]
    if "transformer" not in missing and not (path / "transformer" / "config.json").is_file():
        missing.append("transformer/config.json")
    if missing:
        raise ConfigurationError(
            f"{_where(path)} is incomplete: {', '.join(missing)} missing or without weights. "
            "Finish the download (see docs/flux-local.md)."
        )


def _klein_variant(index: dict[str, Any], config: dict[str, Any]) -> Family:
    try:
        shape = (
            int(config["num_layers"]),
            int(config["num_single_layers"]),
            int(config["num_attention_heads"]) * int(config["attention_head_dim"]),
        )
    except (KeyError, TypeError, ValueError):
        shape = (0, 0, 0)
    size, licence = KLEIN_SIZES.get(shape, ("", UNKNOWN_LICENCE))
    # diffusers' Flux2KleinPipeline defaults to undistilled when the index is silent.
    distilled = index.get("is_distilled") is True
    title = "FLUX.2 [klein]" + (" base" if not distilled else "")
    title += f" {size}" if size else " (size not recognised)"
    key = "flux2-klein" + ("-base" if not distilled else "") + (f"-{size.lower()}" if size else "")
    return replace(
        KLEIN,
        key=key,
        title=title,
        licence=licence,
        distilled=distilled,
        steps=KLEIN.steps if distilled else 50,
        guidance=KLEIN.guidance if distilled else 4.0,
    )
