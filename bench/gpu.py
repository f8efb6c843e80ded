"""The local engine's models at full size on a GPU, with random weights (decision 0009).

No weights can be downloaded here, on CI or on a lent GPU machine, so each
family's pipeline is built from its published architecture with random
weights, directly on the device, in bfloat16. The time a transformer takes
does not depend on what its weights are, so this measures the real thing's
speed and memory, never its images.

For each family it times, at 1024x1280 with the family's default steps, the
call the engine makes (``flux_local.call_pipeline``): one style (4 seeds in
one batch) and an executive order (6 styles, one batch each, one after the
other, as one GPU worker runs them). It prints one JSON object with seconds
per image, peak GPU memory, and the transformer's model FLOP utilisation:

    MFU = transformer FLOPs per call / measured seconds per call / peak FLOP/s

The FLOPs are counted from the architecture (``transformer_flops``; the
formula is in its docstring and a test checks it against torch's own FLOP
counter); the peak is the GPU's dense bf16 rate (``--peak-tflops``; 989 for
an H200 or H100 SXM, NVIDIA's datasheet). Variants: ``--compile`` (diffusers'
regional ``torch.compile`` of the repeated blocks) and ``--fp8`` (the
transformer's linear layers in float8 e4m3 with per-tensor scales, through
``torch._scaled_mm``; Hopper or newer).

Where each architecture number comes from:

- FLUX.2 [klein] 4B transformer: diffusers' scripts/convert_flux2_to_diffusers.py,
  ``get_flux2_transformer_config("klein-4b")``: 5 double and 20 single blocks,
  24 heads of 128, joint_attention_dim 7680, in_channels 128, mlp_ratio 3,
  rope axes (32, 32, 32, 32), theta 2000, no guidance embedding.
- its text encoder, Qwen3-4B (Qwen/Qwen3-4B config.json): hidden 2560, 36
  layers, 32 heads and 8 key-value heads of 128, intermediate 9728, vocab
  151936, tied embeddings. 3 x 2560 = 7680, the transformer's joint width:
  the pipeline stacks layers 9, 18 and 27.
- its VAE: ``AutoencoderKLFlux2()`` with diffusers' defaults, which is what
  the conversion script builds before loading the published weights.
- FLUX.1 Kontext [dev] transformer: ``FluxTransformer2DModel`` as
  scripts/convert_flux_to_diffusers.py builds FLUX.1 [dev] (Kontext has the
  same architecture): 19 double and 38 single blocks, 24 heads of 128,
  joint_attention_dim 4096, pooled 768, in_channels 64, guidance embedding,
  rope axes (16, 56, 56).
- its text encoders: T5 v1.1 XXL encoder (google/t5-v1_1-xxl config.json:
  d_model 4096, d_ff 10240, 64 heads of 64, 24 layers, gated-gelu, vocab
  32128) and CLIP ViT-L/14's text tower (openai/clip-vit-large-patch14:
  hidden 768, 12 layers, 12 heads, intermediate 3072, quick_gelu, vocab
  49408, projection 768).
- its VAE: FLUX.1's ``AutoencoderKL`` (FLUX.1-dev vae/config.json): channels
  (128, 256, 512, 512), 2 layers per block, 16 latent channels, no quant
  convs, scaling 0.3611, shift 0.1159.

Tokenizers are built in memory from a byte or letter vocabulary: the
pipelines pad every prompt to its full length (512 tokens; 77 for CLIP), so
the sequence lengths are the real ones.

Run on a GPU (see bench/README.md, "GPU"):
    python -m bench.gpu --family klein-4b --family kontext-dev [--compile] [--fp8]
On a CPU, as the tests do:
    python -m bench.gpu --tiny --device cpu
"""

from __future__ import annotations

import argparse
import inspect
import json
import statistics
import string
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from headshots.engines.flux_local import Batch, call_pipeline, generation_size, input_image
from headshots.engines.flux_models import KLEIN, KONTEXT, Family
from headshots.styles import STYLES

WIDTH, HEIGHT = 1024, 1280
SEEDS_PER_STYLE = 4
EXECUTIVE_STYLES = 6
# A 3:4 selfie, as a phone takes it; the engine brings it to about 1 MP.
SELFIE_SIZE = (1536, 2048)
H200_BF16_DENSE_TFLOPS = 989.0


@dataclass(frozen=True)
class Arch:
    """One family's architecture: keyword arguments of each component's constructor."""

    name: str
    family: Family
    transformer: dict[str, Any]
    vae: dict[str, Any]
    text_encoder: dict[str, Any]
    # Kontext's second text encoder (T5); empty for FLUX.2.
    text_encoder_2: dict[str, Any] = field(default_factory=dict)
    # Sizes the bench draws at; the full ones are the order's.
    width: int = WIDTH
    height: int = HEIGHT
    input_pixels: int = 1024 * 1024


KLEIN_4B = Arch(
    name="klein-4b",
    family=KLEIN,
    transformer={
        "patch_size": 1,
        "in_channels": 128,
        "num_layers": 5,
        "num_single_layers": 20,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 7680,
        "timestep_guidance_channels": 256,
        "mlp_ratio": 3.0,
        "axes_dims_rope": (32, 32, 32, 32),
        "rope_theta": 2000,
        "eps": 1e-6,
        "guidance_embeds": False,
    },
    vae={},
    text_encoder={
        "hidden_size": 2560,
        "intermediate_size": 9728,
        "num_hidden_layers": 36,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 151936,
        "max_position_embeddings": 40960,
        "rope_theta": 1000000,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": True,
    },
)

KONTEXT_DEV = Arch(
    name="kontext-dev",
    family=KONTEXT,
    transformer={
        "patch_size": 1,
        "in_channels": 64,
        "num_layers": 19,
        "num_single_layers": 38,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "guidance_embeds": True,
        "axes_dims_rope": (16, 56, 56),
    },
    vae={
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4,
        "block_out_channels": (128, 256, 512, 512),
        "layers_per_block": 2,
        "latent_channels": 16,
        "norm_num_groups": 32,
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "scaling_factor": 0.3611,
        "shift_factor": 0.1159,
    },
    text_encoder={
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "projection_dim": 768,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
        "vocab_size": 49408,
    },
    text_encoder_2={
        "d_model": 4096,
        "d_ff": 10240,
        "d_kv": 64,
        "num_heads": 64,
        "num_layers": 24,
        "feed_forward_proj": "gated-gelu",
        "relative_attention_num_buckets": 32,
        "vocab_size": 32128,
    },
)

# The same shapes scaled down until a CPU runs them in seconds: what the
# tests and CI run. 28 Qwen3 layers because the pipeline reads layer 27.
TINY_KLEIN = Arch(
    name="klein-tiny",
    family=KLEIN,
    transformer={
        **KLEIN_4B.transformer,
        "in_channels": 16,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 3 * 16,
        "timestep_guidance_channels": 32,
        "axes_dims_rope": (4, 4, 4, 4),
    },
    vae={
        "block_out_channels": (4, 4, 4, 4),
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 1,
    },
    text_encoder={
        **KLEIN_4B.text_encoder,
        "hidden_size": 16,
        "intermediate_size": 16,
        "num_hidden_layers": 28,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 8,
        "max_position_embeddings": 1024,
        "vocab_size": 512,
    },
    width=64,
    height=80,
    input_pixels=64 * 80,
)

TINY_KONTEXT = Arch(
    name="kontext-tiny",
    family=KONTEXT,
    transformer={
        **KONTEXT_DEV.transformer,
        "in_channels": 16,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 32,
        "pooled_projection_dim": 32,
        "axes_dims_rope": (4, 4, 8),
    },
    vae={
        **KONTEXT_DEV.vae,
        "block_out_channels": (4, 4, 4, 4),
        "layers_per_block": 1,
        "latent_channels": 4,
        "norm_num_groups": 1,
    },
    text_encoder={
        **KONTEXT_DEV.text_encoder,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 1,
        "projection_dim": 32,
        "vocab_size": 256,
    },
    text_encoder_2={
        **KONTEXT_DEV.text_encoder_2,
        "d_model": 32,
        "d_ff": 37,
        "d_kv": 8,
        "num_heads": 4,
        "num_layers": 1,
        "relative_attention_num_buckets": 8,
        "vocab_size": 256,
    },
    width=64,
    height=80,
    input_pixels=64 * 80,
)

ARCHS = {a.name: a for a in (KLEIN_4B, KONTEXT_DEV, TINY_KLEIN, TINY_KONTEXT)}
TINY = {"klein-4b": TINY_KLEIN, "kontext-dev": TINY_KONTEXT}


# --- building -------------------------------------------------------------------


def qwen_tokenizer() -> Any:
    """A byte-level tokenizer with Qwen's special tokens and chat template, in memory."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2TokenizerFast

    vocab = {char: i for i, char in enumerate(sorted(ByteLevel.alphabet()))}
    for token in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        vocab[token] = len(vocab)
    tokenizer = Qwen2TokenizerFast(
        vocab=vocab, merges=[], eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    # The shape of Qwen3's template; the pipeline asks for no thinking.
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
        "<think>\n\n</think>\n\n{% endif %}"
    )
    return tokenizer


def letter_tokenizers() -> tuple[Any, Any]:
    """CLIP and T5 tokenizers over single letters: no download, real padded lengths."""
    from transformers import CLIPTokenizer, T5Tokenizer

    letters = string.ascii_letters + string.digits + string.punctuation
    clip_vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for letter in letters:
        clip_vocab.setdefault(letter, len(clip_vocab))
        clip_vocab.setdefault(letter + "</w>", len(clip_vocab))
    clip = CLIPTokenizer(vocab=clip_vocab, merges=[], model_max_length=77)
    t5_vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    t5_vocab += [(letter, -3.0) for letter in letters]
    t5_vocab += [("\u2581" + letter, -3.0) for letter in letters]
    t5 = T5Tokenizer(vocab=t5_vocab, extra_ids=0, model_max_length=512)
    return clip, t5


@contextmanager
def _building(torch: Any, device: str, dtype: Any) -> Iterator[None]:
    # Parameters are made on the device in the final dtype: a 12B
    # transformer never exists in float32 or on the host.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def build_pipeline(arch: Arch, device: str = "cpu", dtype: Any = None, seed: int = 0) -> Any:
    """The family's diffusers pipeline with random weights, built on ``device``."""
    import torch

    dtype = dtype or torch.float32
    torch.manual_seed(seed)
    with _building(torch, device, dtype):
        if arch.family.pipeline_class == KLEIN.pipeline_class:
            return _build_klein(arch)
        return _build_kontext(arch)


def _build_klein(arch: Arch) -> Any:
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = qwen_tokenizer()
    return Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKLFlux2(**arch.vae),
        text_encoder=Qwen3ForCausalLM(Qwen3Config(**arch.text_encoder)),
        tokenizer=tokenizer,
        transformer=Flux2Transformer2DModel(**arch.transformer),
        is_distilled=arch.family.distilled,
    )


def _build_kontext(arch: Arch) -> Any:
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxKontextPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    clip_tokenizer, t5_tokenizer = letter_tokenizers()
    clip = CLIPTextModel(
        CLIPTextConfig(**arch.text_encoder, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    )
    t5 = T5EncoderModel(T5Config(**arch.text_encoder_2))
    return FluxKontextPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKL(**arch.vae),
        text_encoder=clip,
        tokenizer=clip_tokenizer,
        text_encoder_2=t5,
        tokenizer_2=t5_tokenizer,
        transformer=FluxTransformer2DModel(**arch.transformer),
    )


# --- counting -------------------------------------------------------------------


def transformer_flops(arch: Arch, batch: int, image_tokens: int, text_tokens: int) -> int:
    """Matrix-multiply FLOPs of one transformer call (2 per multiply-add).

    With D the width (heads x head size), F the MLP width (mlp_ratio x D),
    N = image tokens (the drawn image's and the selfie's) + text tokens, and
    B the batch, every block costs

        2·B·N·(4·D² + k·D·F)   for Q, K, V, the output and the MLP
      + 4·B·N²·D                for attention (Q·Kᵀ and the weighted sum of V)

    where k = 3 for FLUX.2 (a SwiGLU MLP: a 2F-wide input projection and an
    F-wide output) and k = 2 for FLUX.1 (a GELU MLP). On top come the input
    projections (image channels and text width to D), the output projection
    of the image tokens, and per-sample modulation and time embeddings,
    which are small. Norms, RoPE and activations are not counted.
    """
    t = arch.transformer
    d = t["num_attention_heads"] * t["attention_head_dim"]
    blocks = t["num_layers"] + t["num_single_layers"]
    n = image_tokens + text_tokens
    channels = t["in_channels"]
    if arch.family.pipeline_class == KLEIN.pipeline_class:
        f = int(d * t["mlp_ratio"])
        per_token = 4 * d * d + 3 * d * f
        # time embedding (two linears), double-stream modulation (6D each
        # for image and text), single-stream (3D), final norm (2D).
        time = t["timestep_guidance_channels"] * d + d * d
        if t.get("guidance_embeds"):
            time *= 2
        per_sample = time + d * (6 * d + 6 * d + 3 * d) + d * 2 * d
    else:
        f = 4 * d
        per_token = 4 * d * d + 2 * d * f
        # timestep, guidance and pooled-text embeddings (two linears each),
        # per-block modulation (6D twice per double block, 3D per single),
        # final norm (2D).
        time = 2 * (256 * d + d * d) + t["pooled_projection_dim"] * d + d * d
        modulation = t["num_layers"] * 12 * d * d + t["num_single_layers"] * 3 * d * d
        per_sample = time + modulation + d * 2 * d
    macs = (
        blocks * (n * per_token)
        + image_tokens * channels * d  # image tokens in
        + text_tokens * t["joint_attention_dim"] * d  # text tokens in
        + image_tokens * d * channels  # image tokens out
        + per_sample
    )
    attention = blocks * 4 * n * n * d
    return batch * (2 * macs + attention)


# --- FP8 --------------------------------------------------------------------------


def float8_linears(module: Any) -> int:
    """Swap the linear layers of ``module`` for float8 ones; returns how many.

    Weights are stored as float8 e4m3 with one scale per tensor; activations
    are scaled per tensor at each call. Layers whose sides are not multiples
    of 16 (what the FP8 matrix units need) stay in bfloat16.
    """
    import torch

    class Float8Linear(torch.nn.Module):
        def __init__(self, linear: torch.nn.Linear) -> None:
            super().__init__()
            weight = linear.weight.detach()
            top = torch.finfo(torch.float8_e4m3fn).max
            scale = (weight.abs().amax().float() / top).clamp(min=1e-12)
            self.register_buffer("weight_scale", scale)
            self.register_buffer("weight", (weight.float() / scale).to(torch.float8_e4m3fn))
            self.bias = linear.bias
            self.out_dtype = weight.dtype

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            top = torch.finfo(torch.float8_e4m3fn).max
            flat = x.reshape(-1, x.shape[-1])
            scale = (flat.abs().amax().float() / top).clamp(min=1e-12)
            x8 = (flat.float() / scale).to(torch.float8_e4m3fn)
            out = torch._scaled_mm(
                x8,
                self.weight.t(),
                scale_a=scale,
                scale_b=self.weight_scale,
                bias=self.bias,
                out_dtype=self.out_dtype,
            )
            return out.reshape(*x.shape[:-1], out.shape[-1])

    swapped = 0
    for _, child in list(module.named_modules()):
        for attribute, layer in list(child.named_children()):
            if (
                isinstance(layer, torch.nn.Linear)
                and layer.in_features % 16 == 0
                and layer.out_features % 16 == 0
            ):
                setattr(child, attribute, Float8Linear(layer))
                swapped += 1
    return swapped


# --- timing ---------------------------------------------------------------------


@dataclass
class Captured:
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


def _capture_transformer_call(pipeline: Any) -> tuple[Captured, Callable[[], None]]:
    """Keep the first transformer call's inputs, to time the transformer alone."""
    captured = Captured()

    def hook(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not captured.kwargs and not captured.args:
            captured.args, captured.kwargs = args, dict(kwargs)

    handle = pipeline.transformer.register_forward_pre_hook(hook, with_kwargs=True)
    return captured, handle.remove


def _sync(torch: Any, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(torch: Any, device: str, work: Callable[[], object]) -> float:
    _sync(torch, device)
    started = time.perf_counter()
    work()
    _sync(torch, device)
    return time.perf_counter() - started


def bench_family(
    arch: Arch,
    *,
    device: str,
    runs: int,
    compile: bool = False,
    fp8: bool = False,
    peak_tflops: float = H200_BF16_DENSE_TFLOPS,
    steps: int | None = None,
    styles: int = EXECUTIVE_STYLES,
) -> dict[str, Any]:
    """Times of one style and one executive order for ``arch``; see the module's docstring."""
    import torch

    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    pipeline = build_pipeline(arch, device, dtype)
    pipeline.set_progress_bar_config(disable=True)
    build_seconds = time.perf_counter() - started
    swapped = float8_linears(pipeline.transformer) if fp8 else 0
    if compile:
        pipeline.transformer.compile_repeated_blocks()
    family = arch.family
    steps = steps or family.steps
    accepts = frozenset(inspect.signature(pipeline.__call__).parameters)
    width, height = generation_size((arch.width, arch.height), family.max_generation_pixels)
    selfie = input_image(Image.effect_noise(SELFIE_SIZE, 64).convert("RGB"), arch.input_pixels)

    def style_batch(index: int) -> Batch:
        seeds = tuple(range(index * SEEDS_PER_STYLE, (index + 1) * SEEDS_PER_STYLE))
        prompt = family.prompt(STYLES[index % len(STYLES)])
        return Batch(selfie, prompt, seeds, width, height, steps, family.guidance)

    def run(index: int) -> None:
        with warnings.catch_warnings():
            # Random weights give extreme pixels; PIL's cast warning is noise here.
            warnings.simplefilter("ignore", RuntimeWarning)
            call_pipeline(torch, pipeline, family, accepts, style_batch(index), device)

    captured, stop_capture = _capture_transformer_call(pipeline)
    warmup = _timed(torch, device, lambda: run(0))  # includes compiling, if asked
    stop_capture()
    style = [_timed(torch, device, lambda: run(0)) for _ in range(runs)]
    executive = [
        _timed(torch, device, lambda: [run(i) for i in range(styles)])
        for _ in range(max(1, runs // 2))
    ]

    hidden = captured.kwargs.get("hidden_states", captured.args[0] if captured.args else None)
    text = captured.kwargs["encoder_hidden_states"]
    batch, image_tokens, text_tokens = hidden.shape[0], hidden.shape[1], text.shape[1]
    flops = transformer_flops(arch, batch, image_tokens, text_tokens)

    def transformer_call() -> None:
        with torch.inference_mode():
            pipeline.transformer(*captured.args, **captured.kwargs)

    transformer_call()
    transformer = [_timed(torch, device, transformer_call) for _ in range(max(3, runs))]
    per_call = statistics.median(transformer)
    images_per_order = styles * SEEDS_PER_STYLE
    return {
        "family": family.title,
        "arch": arch.name,
        "device": torch.cuda.get_device_name() if device == "cuda" else device,
        "dtype": str(dtype).removeprefix("torch."),
        "compile": compile,
        "fp8_linears": swapped,
        "size": [width, height],
        "selfie": list(selfie.size),
        "steps": steps,
        "guidance": family.guidance,
        "build_s": round(build_seconds, 2),
        "first_style_s": round(warmup, 3),
        "style_x4_s": round(statistics.median(style), 3),
        "style_s_per_image": round(statistics.median(style) / SEEDS_PER_STYLE, 3),
        # 6 styles x 4 unless --styles says otherwise.
        "order_styles": styles,
        "executive_6x4_s": round(statistics.median(executive), 3),
        "executive_s_per_image": round(statistics.median(executive) / images_per_order, 3),
        "transformer": {
            "batch": batch,
            "image_tokens": image_tokens,
            "text_tokens": text_tokens,
            "flop_per_call": flops,
            "tflop_per_call": _figure(flops / 1e12),
            "s_per_call": _figure(per_call),
            "tflops": _figure(flops / per_call / 1e12),
            "mfu_vs_bf16_peak": _figure(flops / per_call / (peak_tflops * 1e12)),
            "share_of_style_s": round(per_call * steps / statistics.median(style), 3),
        },
        "peak_gpu_gib": (
            round(torch.cuda.max_memory_allocated() / 2**30, 1) if device == "cuda" else None
        ),
        "runs": runs,
    }


def _figure(value: float) -> float:
    """Three significant digits: enough for a GPU's figures and a CPU's tiny ones."""
    return float(f"{value:.3g}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", action="append", choices=["klein-4b", "kontext-dev"])
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, for a CPU")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--fp8", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=H200_BF16_DENSE_TFLOPS)
    parser.add_argument("--steps", type=int, help="default: the family's own")
    parser.add_argument("--styles", type=int, default=EXECUTIVE_STYLES, help="styles per order")
    args = parser.parse_args(argv)
    results = []
    for name in args.family or ["klein-4b", "kontext-dev"]:
        arch = TINY[name] if args.tiny else ARCHS[name]
        results.append(
            bench_family(
                arch,
                device=args.device,
                runs=args.runs,
                compile=args.compile,
                fp8=args.fp8,
                peak_tflops=args.peak_tflops,
                steps=args.steps,
                styles=args.styles,
            )
        )
        if args.device == "cuda":
            import gc

            import torch

            gc.collect()
            torch.cuda.empty_cache()
    report = {"bench": "gpu", "results": results}
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
