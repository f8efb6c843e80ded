"""Which model a weights folder holds, read cheaply from its JSON files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from headshots.engines.flux_models import (
    KLEIN,
    KLEIN_REFERENCE,
    KONTEXT,
    Family,
    detect_family,
)
from headshots.errors import ConfigurationError
from headshots.styles import get_style

# The published transformers' shapes (diffusers' convert_flux2_to_diffusers.py).
KLEIN_4B = {"num_layers": 5, "num_single_layers": 20, "num_attention_heads": 24}
KLEIN_9B = {"num_layers": 8, "num_single_layers": 24, "num_attention_heads": 32}


def weights_folder(
    folder: Path,
    family: Family = KLEIN,
    transformer: dict[str, Any] | None = None,
    **index: Any,
) -> Path:
    """A folder shaped like the weights (no real ones): enough for the cheap checks."""
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(
        json.dumps({"_class_name": family.pipeline_class, **index})
    )
    for name in family.components:
        (folder / name).mkdir()
        (folder / name / "model.safetensors").write_bytes(b"not weights")
    config = {"_class_name": family.transformer_class, "attention_head_dim": 128}
    config.update(transformer or {})
    (folder / "transformer" / "config.json").write_text(json.dumps(config))
    return folder


def test_klein_4b_is_apache_and_runs_in_four_steps(tmp_path: Path) -> None:
    family = detect_family(weights_folder(tmp_path / "k", transformer=KLEIN_4B, is_distilled=True))
    assert family.title == "FLUX.2 [klein] 4B"
    assert family.key == "flux2-klein-4b"
    assert family.licence.name == "Apache-2.0"
    assert family.licence.commercial is True
    assert (family.steps, family.guidance) == (4, 1.0)
    assert family.describe() == {
        "family": "flux2-klein-4b",
        "model": "FLUX.2 [klein] 4B",
        "licence": "Apache-2.0",
        "commercial_use": True,
    }


def test_klein_9b_is_non_commercial(tmp_path: Path) -> None:
    family = detect_family(weights_folder(tmp_path / "k", transformer=KLEIN_9B, is_distilled=True))
    assert family.title == "FLUX.2 [klein] 9B"
    assert family.licence.commercial is False
    assert "non-commercial" in family.licence.summary()


def test_an_undistilled_klein_takes_the_base_defaults(tmp_path: Path) -> None:
    family = detect_family(weights_folder(tmp_path / "k", transformer=KLEIN_4B, is_distilled=False))
    assert family.title == "FLUX.2 [klein] base 4B"
    assert (family.steps, family.guidance) == (50, 4.0)
    assert family.licence.commercial is True


def test_a_klein_of_another_size_runs_without_a_licence_claim(tmp_path: Path) -> None:
    family = detect_family(
        weights_folder(tmp_path / "k", transformer={"num_layers": 2}, is_distilled=True)
    )
    assert family.title == "FLUX.2 [klein] (size not recognised)"
    assert family.licence.commercial is None
    assert "read the licence that came with the weights" in family.licence.summary()


def test_kontext_keeps_its_licence_and_defaults(tmp_path: Path) -> None:
    family = detect_family(weights_folder(tmp_path / "k", KONTEXT))
    assert family is KONTEXT
    assert family.licence.commercial is False
    assert (family.steps, family.guidance) == (28, 2.5)


def test_a_folder_mixing_two_models_is_refused(tmp_path: Path) -> None:
    folder = weights_folder(tmp_path / "k", transformer={"_class_name": "FluxTransformer2DModel"})
    with pytest.raises(ConfigurationError, match="the folder mixes two models"):
        detect_family(folder)


def test_a_klein_without_its_tokenizer_is_incomplete(tmp_path: Path) -> None:
    folder = weights_folder(tmp_path / "k", transformer=KLEIN_4B)
    (folder / "tokenizer" / "model.safetensors").unlink()
    (folder / "tokenizer").rmdir()
    (folder / "transformer" / "config.json").unlink()
    with pytest.raises(
        ConfigurationError, match=r"incomplete: tokenizer, transformer/config\.json missing"
    ):
        detect_family(folder)


def test_an_unreadable_index_is_a_sentence(tmp_path: Path) -> None:
    folder = weights_folder(tmp_path / "k")
    (folder / "model_index.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match=r"The model_index\.json in .* cannot be read\."):
        detect_family(folder)


def test_each_family_puts_the_style_its_own_way() -> None:
    style = get_style("executive")
    assert KONTEXT.prompt(style) == style.prompt
    assert KLEIN.prompt(style) == f"{KLEIN_REFERENCE} {style.prompt}"
    # Only Kontext's pipeline takes the sizing arguments.
    accepts = frozenset({"max_area", "_auto_resize"})
    assert KONTEXT.call_options(accepts, 1024, 1280) == {
        "max_area": 1024 * 1280,
        "_auto_resize": False,
    }
    assert KLEIN.call_options(accepts, 1024, 1280) == {}
