"""The flux-local engine on a tiny, randomly initialised FLUX.1 Kontext pipeline.

The tiny pipeline is built here, saved with ``save_pretrained`` and loaded by
the engine's own code (``from_pretrained(..., local_files_only=True)``), so
everything but the size of the weights is what an operator's GPU runs: the
tokenizers, both text encoders, the transformer, the VAE and the scheduler.
The images are noise (the weights are random); what is checked is what a
caller relies on: one image per seed, the size asked for, seeds that matter
and reproduce, and failures that read as sentences.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from headshots.config import Settings
from headshots.engines.base import Engine, EngineFailure, Failed, Rendered, get_engine
from headshots.engines.flux_local import (
    INSTALL_COMMAND,
    FluxLocalEngine,
    Tuning,
    generation_size,
    input_image,
)
from headshots.engines.flux_models import KONTEXT
from headshots.errors import ConfigurationError
from headshots.imaging.selfie import PreparedSelfie, prepare_selfie
from headshots.styles import get_style
from tests.engines.test_flux_models import weights_folder
from tests.support import unavailable

FIXTURES = Path(__file__).parents[1] / "fixtures"
SIZE = (64, 80)
# The engine's sizes scaled down with the tiny model: a selfie of about
# 64x80 pixels in, at most 96x96 pixels drawn.
TINY = Tuning(input_pixels=64 * 80, max_generation_pixels=96 * 96)
STYLE = get_style("corporate")


def needs_ml() -> None:
    for name in ("torch", "diffusers", "transformers"):
        if importlib.util.find_spec(name) is None:
            unavailable(
                f"{name} is not installed; install the local engine with: {INSTALL_COMMAND}"
            )


def save_tiny_kontext(folder: Path, joint_attention_dim: int = 32) -> Path:
    """A FluxKontextPipeline of a few thousand random weights, saved in diffusers layout.

    ``joint_attention_dim`` other than the T5 width (32) makes a pipeline that
    loads but fails when it runs, as a mismatched download would.
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5Tokenizer,
    )

    torch.manual_seed(0)
    # Tokenizers from a vocabulary of single letters: no download, and every
    # prompt still becomes a real sequence of tokens.
    letters = string.ascii_letters + string.digits + string.punctuation
    clip_vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in letters:
        clip_vocab.setdefault(letter, len(clip_vocab))
        clip_vocab.setdefault(letter + "</w>", len(clip_vocab))
    clip_tokenizer = CLIPTokenizer(vocab=clip_vocab, merges=[], model_max_length=77)
    t5_vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    t5_vocab += [(letter, -3.0) for letter in letters]
    t5_vocab += [("\u2581" + letter, -3.0) for letter in letters]
    t5_tokenizer = T5Tokenizer(vocab=t5_vocab, extra_ids=0, model_max_length=512)
    clip = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_vocab),
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=1,
            projection_dim=32,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    t5 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=1,
            num_heads=4,
            relative_attention_num_buckets=8,
        )
    )
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=joint_attention_dim,
        pooled_projection_dim=32,
        axes_dims_rope=[4, 4, 8],
    )
    # Four blocks: the real VAE's 8x downsampling, so sizes round to 16 as on a GPU.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(4, 4, 4, 4),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=1,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.0609,
        scaling_factor=1.5035,
    )
    pipeline = FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=clip,
        tokenizer=clip_tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )
    pipeline.save_pretrained(folder)
    return folder


def flux_settings(weights: Path | None, **values: Any) -> Settings:
    return Settings(
        flux_weights_dir=weights,
        flux_steps=values.pop("flux_steps", 2),
        flux_device=values.pop("flux_device", "cpu"),
        **values,
    )


def fake_weights(folder: Path, pipeline: str = "FluxKontextPipeline") -> Path:
    """A Kontext folder shaped like the weights (no real ones): enough for the cheap checks."""
    return weights_folder(folder, KONTEXT, _class_name=pipeline)


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    needs_ml()
    return save_tiny_kontext(tmp_path_factory.mktemp("flux") / "FLUX.1-Kontext-dev")


@pytest.fixture(scope="module")
def engine(weights: Path) -> FluxLocalEngine:
    return FluxLocalEngine(flux_settings(weights), TINY)


@pytest.fixture(scope="module")
def selfie() -> PreparedSelfie:
    return prepare_selfie((FIXTURES / "obama.jpg").read_bytes(), Settings())


def pixels(image: Image.Image) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.asarray(image.convert("RGB"), dtype=np.float64)


def difference(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


# --- without torch -------------------------------------------------------------


def test_importing_the_engine_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "import headshots.engines.flux_local\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "[]"


def test_no_weights_setting_is_explained() -> None:
    with pytest.raises(ConfigurationError, match="needs HEADSHOTS_FLUX_WEIGHTS_DIR"):
        FluxLocalEngine(flux_settings(None))


def test_a_missing_weights_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"is not a folder\. Download FLUX\.2 \[klein\] 4B or FLUX\.1 Kontext",
    ):
        FluxLocalEngine(flux_settings(tmp_path / "nowhere"))


def test_a_folder_without_model_index_is_refused(tmp_path: Path) -> None:
    (tmp_path / "transformer").mkdir()
    with pytest.raises(ConfigurationError, match=r"has no model_index\.json, so it is not a"):
        get_engine(flux_settings(tmp_path), "flux-local")


def test_another_pipeline_is_refused(tmp_path: Path) -> None:
    folder = fake_weights(tmp_path / "sdxl", pipeline="StableDiffusionXLPipeline")
    with pytest.raises(ConfigurationError, match="holds a StableDiffusionXLPipeline pipeline"):
        FluxLocalEngine(flux_settings(folder))


def test_an_unfinished_download_is_refused(tmp_path: Path) -> None:
    folder = fake_weights(tmp_path / "weights")
    shutil.rmtree(folder / "text_encoder_2")
    (folder / "transformer" / "model.safetensors").unlink()
    with pytest.raises(ConfigurationError, match="incomplete: text_encoder_2, transformer"):
        FluxLocalEngine(flux_settings(folder))


def test_missing_packages_name_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FluxLocalEngine(flux_settings(fake_weights(tmp_path / "weights")))
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setitem(sys.modules, "diffusers", None)
    selfie = PreparedSelfie(image=Image.new("RGB", (64, 80)), face=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as refused:
        engine.generate(selfie, STYLE, [1], SIZE)
    assert "torch is not installed" in refused.value.detail
    assert INSTALL_COMMAND in refused.value.detail
    with pytest.raises(ConfigurationError, match="needs torch, which is not installed"):
        engine.check_ready()


def test_sizes_are_multiples_of_16_in_the_order_shape() -> None:
    assert generation_size((1024, 1280)) == (1024, 1280)
    assert generation_size((1000, 1250)) == (992, 1248)
    # Past two megapixels the model draws smaller and the output is scaled up.
    width, height = generation_size((4096, 4096))
    assert (width, height) == (1456, 1456)
    assert input_image(Image.new("RGB", (1536, 2048))).size == (880, 1184)


# --- the tiny pipeline ---------------------------------------------------------


def test_is_a_generative_engine(engine: FluxLocalEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.generative and engine.rerolls_help
    assert "FLUX.1 Kontext [dev]" in engine.description
    assert "own GPU" in engine.description
    engine.check_ready()


def test_one_image_per_seed_at_the_requested_size(
    engine: FluxLocalEngine, selfie: PreparedSelfie, weights: Path
) -> None:
    seeds = [7, 3, 11]
    outcomes = engine.generate(selfie, STYLE, seeds, SIZE)
    assert [o.seed for o in outcomes] == seeds
    assert all(isinstance(o, Rendered) for o in outcomes)
    for outcome in outcomes:
        assert isinstance(outcome, Rendered)
        assert outcome.image.size == SIZE
        assert outcome.image.mode == "RGB"
        assert pixels(outcome.image).std() > 1  # not a blank frame
        assert outcome.details["model"] == weights.name
        assert str(weights.parent) not in json.dumps(outcome.details)
        assert outcome.details["steps"] == 2
        assert outcome.details["guidance"] == 2.5
        assert outcome.details["device"] == "cpu"
        assert outcome.details["batch_size"] == 3
        assert outcome.seconds > 0


def test_generating_logs_nothing_above_info(
    engine: FluxLocalEngine, selfie: PreparedSelfie, caplog: pytest.LogCaptureFixture
) -> None:
    # The style prompts are longer than CLIP reads; that is no news for the log.
    with caplog.at_level(logging.INFO):
        engine.generate(selfie, STYLE, [8, 9], SIZE)
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.INFO] == []


def test_a_size_off_the_16_grid_comes_out_exact(
    engine: FluxLocalEngine, selfie: PreparedSelfie
) -> None:
    (outcome,) = engine.generate(selfie, STYLE, [5], (72, 90))
    assert isinstance(outcome, Rendered)
    assert outcome.image.size == (72, 90)


def test_seeds_differ_and_a_seed_reproduces_in_any_batch(
    engine: FluxLocalEngine, selfie: PreparedSelfie
) -> None:
    first = engine.generate(selfie, STYLE, [21, 22], SIZE)
    again = engine.generate(selfie, STYLE, [22, 23], SIZE)
    images = [o.image for o in first + again if isinstance(o, Rendered)]
    assert len(images) == 4
    seed21, seed22, seed22_again, seed23 = images
    assert difference(seed21, seed22) > 5
    assert difference(seed22_again, seed23) > 5
    assert difference(seed22, seed22_again) < 1


def test_seeds_and_size_are_checked_before_loading(tmp_path: Path, selfie: PreparedSelfie) -> None:
    # Weights that cannot load: only a refusal before loading gets past them.
    engine = FluxLocalEngine(flux_settings(fake_weights(tmp_path / "broken")), TINY)
    with pytest.raises(EngineFailure, match="its own seed"):
        engine.generate(selfie, STYLE, [4, 4], SIZE)
    with pytest.raises(EngineFailure, match="between 64 and 4096 pixels"):
        engine.generate(selfie, STYLE, [4], (32, 4000))
    needs_ml()
    with pytest.raises(ConfigurationError, match=r"could not be loaded \("):
        engine.generate(selfie, STYLE, [4], SIZE)


def test_a_failing_model_gives_one_failure_per_seed(tmp_path: Path, selfie: PreparedSelfie) -> None:
    needs_ml()
    folder = save_tiny_kontext(tmp_path / "mismatched", joint_attention_dim=24)
    engine = FluxLocalEngine(flux_settings(folder), TINY)
    outcomes = engine.generate(selfie, STYLE, [1, 2], SIZE)
    assert [o.seed for o in outcomes] == [1, 2]
    for outcome in outcomes:
        assert isinstance(outcome, Failed)
        assert outcome.code == "generation_failed"
        assert outcome.reason.startswith("The local image model failed on this variation")
        assert outcome.reason.endswith(").")


def test_the_selfie_never_goes_over_its_pixel_budget() -> None:
    # Rounding to 16 up on both sides would pass a reference FLUX.2 shrinks again.
    for size in [(1024, 1280), (1536, 2048), (3000, 1000), (1023, 1025)]:
        width, height = input_image(Image.new("RGB", size)).size
        assert width % 16 == 0 and height % 16 == 0
        assert width * height <= 1024 * 1024
        assert (width / height) / (size[0] / size[1]) == pytest.approx(1, abs=0.03)
