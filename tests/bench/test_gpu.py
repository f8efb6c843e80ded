"""bench/gpu.py on a CPU: the architecture numbers, the FLOP count, FP8, one tiny run.

The GPU figures themselves are in bench/README.md; what runs here is what
they rest on: that the full-size pipelines are the published sizes, that the
FLOPs MFU divides by are the FLOPs torch counts, and that the bench runs
end to end.
"""

from __future__ import annotations

from typing import Any

import pytest
from bench.gpu import (
    KLEIN_4B,
    KONTEXT_DEV,
    TINY_KLEIN,
    TINY_KONTEXT,
    Arch,
    bench_family,
    float8_linears,
    transformer_flops,
)

from tests.engines.test_flux_local import needs_ml


def parameters_on_meta(arch: Arch) -> int:
    import torch
    from diffusers import Flux2Transformer2DModel, FluxTransformer2DModel

    cls = Flux2Transformer2DModel if arch is KLEIN_4B else FluxTransformer2DModel
    with torch.device("meta"):
        model = cls(**arch.transformer)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("arch", "billions"), [(KLEIN_4B, 4), (KONTEXT_DEV, 12)])
def test_the_full_size_transformers_have_the_published_size(arch: Arch, billions: int) -> None:
    needs_ml()
    assert parameters_on_meta(arch) / 1e9 == pytest.approx(billions, rel=0.05)


def test_klein_reads_three_layers_of_its_text_encoder() -> None:
    # The pipeline stacks Qwen3 layers 9, 18 and 27 into the transformer's text width.
    assert KLEIN_4B.transformer["joint_attention_dim"] == 3 * KLEIN_4B.text_encoder["hidden_size"]
    assert KLEIN_4B.text_encoder["num_hidden_layers"] > 27
    assert (
        TINY_KLEIN.transformer["joint_attention_dim"] == 3 * TINY_KLEIN.text_encoder["hidden_size"]
    )


def counted_by_torch(arch: Arch, batch: int, image_tokens: int, text_tokens: int) -> int:
    import torch
    from bench.gpu import build_pipeline
    from torch.utils.flop_counter import FlopCounterMode

    transformer = build_pipeline(arch).transformer
    t = arch.transformer
    width = len(t["axes_dims_rope"])
    inputs: dict[str, Any] = {
        "hidden_states": torch.randn(batch, image_tokens, t["in_channels"]),
        "encoder_hidden_states": torch.randn(batch, text_tokens, t["joint_attention_dim"]),
        "timestep": torch.full((batch,), 0.5),
        "img_ids": torch.zeros(batch, image_tokens, width),
        "txt_ids": torch.zeros(batch, text_tokens, width),
        "return_dict": False,
    }
    if arch is TINY_KONTEXT:
        inputs["img_ids"], inputs["txt_ids"] = inputs["img_ids"][0], inputs["txt_ids"][0]
        inputs["pooled_projections"] = torch.randn(batch, t["pooled_projection_dim"])
        inputs["guidance"] = torch.full((batch,), 2.5)
    from torch.nn.attention import SDPBackend, sdpa_kernel

    counter = FlopCounterMode(display=False)
    # The math backend spells attention out in matrix products, which the
    # counter sees; the CPU's fused kernel it does not count.
    with sdpa_kernel(SDPBackend.MATH), counter, torch.inference_mode():
        transformer(**inputs)
    return int(counter.get_total_flops())


@pytest.mark.parametrize("arch", [TINY_KLEIN, TINY_KONTEXT], ids=["klein", "kontext"])
def test_the_flop_formula_matches_torchs_count(arch: Arch) -> None:
    needs_ml()
    counted = counted_by_torch(arch, batch=2, image_tokens=40, text_tokens=24)
    assert transformer_flops(arch, 2, 40, 24) == pytest.approx(counted, rel=0.01)


def test_fp8_linears_stay_close_to_the_float_ones() -> None:
    needs_ml()
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Linear(32, 10))
    x = torch.randn(8, 64)
    expected = model(x)
    assert float8_linears(model) == 1  # 10 outputs is not a multiple of 16
    got = model(x)
    assert (got - expected).norm() / expected.norm() < 0.1


def test_a_tiny_klein_order_runs_on_the_cpu() -> None:
    needs_ml()
    result = bench_family(TINY_KLEIN, device="cpu", runs=1, steps=1, styles=2)
    assert result["family"] == "FLUX.2 [klein]"
    assert result["size"] == [64, 80]
    # Times are reported, never compared here (benchmarks, not timed tests).
    assert result["executive_6x4_s"] > 0 and result["style_x4_s"] > 0
    assert result["executive_s_per_image"] == pytest.approx(result["executive_6x4_s"] / 8, abs=1e-3)
    transformer = result["transformer"]
    # Four seeds per call; the drawn image's 20 tokens and the selfie's.
    assert transformer["batch"] == 4
    assert transformer["image_tokens"] == 2 * 4 * 5
    assert transformer["text_tokens"] == 512
    assert transformer["flop_per_call"] == transformer_flops(TINY_KLEIN, 4, 40, 512)
    assert 0 < transformer["mfu_vs_bf16_peak"] < 1
