"""The flux-local engine on a tiny, randomly initialised FLUX.2 [klein] pipeline.

The pipeline has FLUX.2 [klein]'s architecture at a few thousand weights
(bench/gpu.py builds it from the same description it builds the full-size
one from), is saved in diffusers layout and loaded by the engine's own code,
as an operator's download would be. The images are noise; what is checked is
what the service relies on: the model is recognised, a style's seeds are one
batch, a seed reproduces, the selfie is the reference image, and the output
has the order's size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bench.gpu import TINY_KLEIN, build_pipeline
from PIL import Image

from headshots.engines.base import Rendered, get_engine
from headshots.engines.flux_local import FluxLocalEngine, input_image
from headshots.engines.flux_models import KLEIN_REFERENCE
from headshots.errors import ConfigurationError
from headshots.imaging.intake import Photo
from headshots.imaging.selfie import PreparedSelfie, prepare_photo
from headshots.styles import EXTEND_CROP
from tests import selfie_set
from tests.engines.test_flux_local import (
    SIZE,
    STYLE,
    TINY,
    difference,
    flux_settings,
    needs_ml,
    pixels,
)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    needs_ml()
    folder = tmp_path_factory.mktemp("klein") / "FLUX.2-klein-tiny"
    build_pipeline(TINY_KLEIN).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def engine(weights: Path) -> FluxLocalEngine:
    # Steps and guidance unset: the family's own (4 and 1.0).
    return FluxLocalEngine(flux_settings(weights, flux_steps=None), TINY)


@pytest.fixture(scope="module")
def selfie() -> PreparedSelfie:
    from headshots.config import Settings
    from headshots.imaging.selfie import prepare_selfie

    fixtures = Path(__file__).parents[1] / "fixtures"
    return prepare_selfie((fixtures / "obama.jpg").read_bytes(), Settings())


class TransformerCalls:
    """What the pipeline gives its transformer, recorded by a forward hook."""

    def __init__(self, engine: FluxLocalEngine) -> None:
        self.transformer = engine.load().pipeline.transformer
        self.calls: list[dict[str, Any]] = []

    def __enter__(self) -> TransformerCalls:
        def hook(_module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
            self.calls.append(
                {
                    "batch": kwargs["hidden_states"].shape[0],
                    "tokens": kwargs["hidden_states"].shape[1],
                }
            )

        self.handle = self.transformer.register_forward_pre_hook(hook, with_kwargs=True)
        return self

    def __exit__(self, *_: object) -> None:
        self.handle.remove()


def test_the_model_family_is_read_from_the_folder(engine: FluxLocalEngine) -> None:
    assert engine.family.pipeline_class == "Flux2KleinPipeline"
    # The tiny transformer is no published size: no licence is claimed for it.
    assert engine.describe()["model"] == "FLUX.2 [klein] (size not recognised)"
    assert engine.describe()["commercial_use"] is None
    assert (engine.steps, engine.guidance) == (4, 1.0)
    engine.check_ready()


def test_get_engine_picks_it_from_the_weights_setting(weights: Path) -> None:
    engine = get_engine(flux_settings(weights, flux_steps=None), None)
    assert isinstance(engine, FluxLocalEngine)
    assert engine.family.key == "flux2-klein"


def test_a_style_is_one_batch_with_one_image_per_seed(
    engine: FluxLocalEngine, selfie: PreparedSelfie, weights: Path
) -> None:
    seeds = [7, 3, 11, 5]
    with TransformerCalls(engine) as recorded:
        outcomes = engine.generate(selfie, STYLE, seeds, SIZE)
    # One transformer call per step, each carrying all four seeds.
    assert [call["batch"] for call in recorded.calls] == [4] * 4
    assert [o.seed for o in outcomes] == seeds
    for outcome in outcomes:
        assert isinstance(outcome, Rendered)
        assert outcome.image.size == SIZE
        assert pixels(outcome.image).std() > 1
        assert outcome.details["family"] == "flux2-klein"
        assert outcome.details["steps"] == 4
        assert outcome.details["batch_size"] == 4
        assert str(weights.parent) not in json.dumps(outcome.details)


def test_seeds_differ_and_a_seed_reproduces_in_any_batch(
    engine: FluxLocalEngine, selfie: PreparedSelfie
) -> None:
    first = engine.generate(selfie, STYLE, [21, 22], SIZE)
    again = engine.generate(selfie, STYLE, [22, 23, 24], SIZE)
    images = [o.image for o in first + again if isinstance(o, Rendered)]
    seed21, seed22, seed22_again, seed23, _ = images
    assert difference(seed21, seed22) > 5
    assert difference(seed22_again, seed23) > 5
    assert difference(seed22, seed22_again) < 1


def test_the_selfie_is_the_reference_image(engine: FluxLocalEngine, selfie: PreparedSelfie) -> None:
    with TransformerCalls(engine) as recorded:
        (with_selfie,) = engine.generate(selfie, STYLE, [9], SIZE)
    # The transformer's sequence is the image drawn (64x80 px: 4x5 tokens of
    # 16 px) followed by the selfie at about 64x80 px in its own shape.
    reference = input_image(selfie.image, TINY.input_pixels or 0)
    assert reference.size != selfie.image.size
    assert recorded.calls[0]["tokens"] == 4 * 5 + (reference.width // 16) * (reference.height // 16)
    green = Image.new("RGB", selfie.image.size, (30, 160, 90))
    other = PreparedSelfie(image=green, face=selfie.face)
    (with_other,) = engine.generate(other, STYLE, [9], SIZE)
    assert isinstance(with_selfie, Rendered) and isinstance(with_other, Rendered)
    # Random weights carry little of the reference through, but not nothing.
    assert difference(with_selfie.image, with_other.image) > 0


def test_the_prompt_names_the_reference(
    engine: FluxLocalEngine, selfie: PreparedSelfie, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = engine.load().pipeline
    prompts: list[Any] = []
    real = pipeline.encode_prompt

    def recording(prompt: Any, **kwargs: Any) -> Any:
        prompts.append(prompt)
        return real(prompt=prompt, **kwargs)

    monkeypatch.setattr(pipeline, "encode_prompt", recording)
    engine.generate(selfie, STYLE, [1, 2], SIZE)
    assert prompts == [[f"{KLEIN_REFERENCE} {STYLE.prompt}"] * 2]
    # A selfie that cuts the head off asks for it to be completed.
    photo = selfie_set.forehead_cut("obama.jpg")
    tight = prepare_photo(Photo(image=photo, source_format="PNG", source_size=photo.size))
    engine.generate(tight, STYLE, [3], SIZE)
    assert prompts[-1] == [f"{KLEIN_REFERENCE} {STYLE.prompt} {EXTEND_CROP}"]


def test_a_size_off_the_16_grid_comes_out_exact(
    engine: FluxLocalEngine, selfie: PreparedSelfie
) -> None:
    (outcome,) = engine.generate(selfie, STYLE, [5], (72, 90))
    assert isinstance(outcome, Rendered)
    assert outcome.image.size == (72, 90)


def test_a_folder_with_the_wrong_transformer_is_refused(tmp_path: Path, weights: Path) -> None:
    import shutil

    folder = tmp_path / "mixed"
    shutil.copytree(weights, folder)
    config = json.loads((folder / "transformer" / "config.json").read_text())
    config["_class_name"] = "FluxTransformer2DModel"
    (folder / "transformer" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigurationError) as refused:
        FluxLocalEngine(flux_settings(folder), TINY)
    assert "names Flux2KleinPipeline but its transformer is a FluxTransformer2DModel" in (
        refused.value.detail
    )
    assert refused.value.detail.endswith("(see docs/flux-local.md).")
