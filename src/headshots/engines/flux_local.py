"""The local engine: FLUX.2 [klein] or FLUX.1 Kontext [dev] through diffusers on the operator's GPU.

The weights come from a folder in diffusers layout (``HEADSHOTS_FLUX_WEIGHTS_DIR``)
and never from a hub: loading is ``local_files_only``. Which model it holds
is read from the folder (``flux_models.detect_family``), and with it the
defaults, sizes, prompt wording and licence of that family. Torch and diffusers are
imported on first use, so importing this module costs nothing for a user of
another engine, and a missing install is a sentence with the command to fix it.

The pipeline is loaded once per process and shared by every engine object.
One GPU runs one batch at a time: the seeds of a call are one batch (a
generator per seed, so each image depends on its own seed only), and calls
from several job threads queue for the GPU instead of running out of memory
together.

Nothing leaves the machine, and neither the selfie nor the outputs are
written anywhere by this module.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import math
import threading
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from PIL import Image, ImageOps

from headshots.config import Settings
from headshots.engines.base import (
    EngineDefaults,
    EngineFailure,
    Failed,
    Outcome,
    Rendered,
    Shape,
    Size,
    check_seeds,
)
from headshots.engines.flux_models import Family, detect_family
from headshots.errors import ConfigurationError
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style

log = logging.getLogger(__name__)

# The lock first, with --no-deps: nothing then pulls torch from the index,
# and torch's own install finds its pure-Python requirements already pinned.
INSTALL_COMMAND = "pip install --no-deps -r requirements-local.lock && pip install torch==2.13.0"
# Both families pack latents 2x2 over a VAE that downsamples 8x: every side
# must be a multiple of 16.
MULTIPLE = 16
# Both are trained on images of about one megapixel; the selfie is given at
# that size, and outputs are made at the order's size up to about two
# megapixels (FLUX.1's upper range), then scaled to fit.
INPUT_PIXELS = 1024 * 1024
MAX_GENERATION_PIXELS = 2 * 1024 * 1024
MIN_SIDE = 64
MAX_SIDE = 4096


@dataclass(frozen=True)
class Tuning:
    """Sizes over the family's own. Tests shrink them; operators never need to."""

    input_pixels: int | None = None
    max_generation_pixels: int | None = None


@dataclass
class _Loaded:
    pipeline: Any
    family: Family
    device: str
    # Which optional call arguments this diffusers version takes.
    accepts: frozenset[str]
    # One batch on the device at a time.
    run_lock: threading.Lock


_LOADED: dict[tuple[str, str], _Loaded] = {}
_LOAD_LOCK = threading.Lock()


def import_ml() -> tuple[ModuleType, ModuleType]:
    """Torch and diffusers, or a ``ConfigurationError`` that says how to install them."""
    modules = []
    for name in ("torch", "diffusers"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            raise ConfigurationError(
                f"The flux-local engine needs torch and diffusers, and {name} is not "
                f"installed. Install them with: {INSTALL_COMMAND} (see docs/flux-local.md)."
            ) from None
    return modules[0], modules[1]


def check_weights_dir(path: Path) -> Family:
    """The family of the weights in ``path``; a sentence if they cannot be used."""
    return detect_family(path)


def check_size(size: Size) -> Size:
    width, height = size
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise EngineFailure(
            f"Headshots are made between {MIN_SIDE} and {MAX_SIDE} pixels on each side."
        )
    return int(width), int(height)


def _to_multiple(value: float) -> int:
    return max(MULTIPLE, round(value / MULTIPLE) * MULTIPLE)


def generation_size(size: Size, max_pixels: int = MAX_GENERATION_PIXELS) -> Size:
    """The size the model draws at: the order's shape, in multiples of 16, within budget."""
    width, height = size
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    return _to_multiple(width * scale), _to_multiple(height * scale)


def input_image(image: Image.Image, pixels: int = INPUT_PIXELS) -> Image.Image:
    """The selfie at about ``pixels`` and never more, its own shape, sides in multiples of 16."""
    aspect = image.width / image.height
    size = (_to_multiple(math.sqrt(pixels * aspect)), _to_multiple(math.sqrt(pixels / aspect)))
    if size[0] * size[1] > pixels:
        # FLUX.2 shrinks a reference over its budget again, blurring it twice.
        size = (
            max(MULTIPLE, int(math.sqrt(pixels * aspect)) // MULTIPLE * MULTIPLE),
            max(MULTIPLE, int(math.sqrt(pixels / aspect)) // MULTIPLE * MULTIPLE),
        )
    rgb = image.convert("RGB")
    return rgb if rgb.size == size else rgb.resize(size, Image.Resampling.LANCZOS)


def fit(image: Image.Image, size: Size) -> Image.Image:
    """Exactly ``size``: scaled to cover, the overflow cropped more below than above."""
    if image.size == size:
        return image
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS, centering=(0.5, 0.4))


def _pick_device(torch: ModuleType, wanted: str) -> str:
    if wanted == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if wanted == "cuda":
        raise ConfigurationError(
            "HEADSHOTS_FLUX_DEVICE is cuda, but torch sees no CUDA GPU here. Check the "
            "NVIDIA driver and that the CUDA build of torch is installed (docs/flux-local.md)."
        )
    log.warning(
        "flux-local: no CUDA GPU found, running the model on the CPU; expect many minutes per image"
    )
    return "cpu"


def _is_out_of_memory(torch: ModuleType, error: BaseException) -> bool:
    kinds = tuple(
        kind
        for kind in (getattr(torch, "OutOfMemoryError", None), torch.cuda.OutOfMemoryError)
        if isinstance(kind, type)
    )
    return isinstance(error, kinds) or "out of memory" in str(error).lower()


@dataclass(frozen=True)
class Batch:
    """One pipeline call: a style's seeds on one selfie."""

    image: Image.Image
    prompt: str
    seeds: tuple[int, ...]
    width: int
    height: int
    steps: int
    guidance: float


def call_pipeline(
    torch: ModuleType,
    pipeline: Any,
    family: Family,
    accepts: frozenset[str],
    batch: Batch,
    device: str,
) -> list[Image.Image]:
    """One image per seed, in order: the call the engine makes (bench/gpu.py times it too)."""
    # A generator per seed is how diffusers batches different seeds: each
    # image's noise comes from its own seed, whatever else is in the batch.
    generators = [torch.Generator(device=device).manual_seed(s) for s in batch.seeds]
    options = family.call_options(accepts, batch.width, batch.height)
    with torch.inference_mode():
        # Both families take the selfie as ``image``: Kontext as the picture
        # it edits, FLUX.2 as its (only) reference image.
        result = pipeline(
            image=batch.image,
            prompt=[batch.prompt] * len(batch.seeds),
            generator=generators,
            guidance_scale=batch.guidance,
            num_inference_steps=batch.steps,
            width=batch.width,
            height=batch.height,
            output_type="pil",
            **options,
        )
    images = list(result.images)
    if len(images) != len(batch.seeds):
        raise RuntimeError(f"the pipeline returned {len(images)} of {len(batch.seeds)} images")
    return images


class FluxLocalEngine(EngineDefaults):
    name: ClassVar[str] = "flux-local"
    description: ClassVar[str] = (
        "FLUX.2 [klein] or FLUX.1 Kontext [dev] through diffusers on your own GPU (generative)."
    )
    generative: ClassVar[bool] = True
    # A new seed draws a new face: the identity check may re-roll.
    rerolls_help: ClassVar[bool] = True
    repairs_crop: ClassVar[bool] = True
    # The prompt names the style's wardrobe and the model paints it.
    changes_clothes: ClassVar[bool] = True
    # The prompt can name any colour for the backdrop.
    takes_backdrop_colour: ClassVar[bool] = True

    def __init__(self, settings: Settings, tuning: Tuning | None = None) -> None:
        if settings.flux_weights_dir is None:
            raise ConfigurationError(
                "The flux-local engine needs HEADSHOTS_FLUX_WEIGHTS_DIR: a folder with "
                "FLUX.2 [klein] 4B or FLUX.1 Kontext [dev] in diffusers layout "
                "(see docs/flux-local.md)."
            )
        self.weights_dir = settings.flux_weights_dir.expanduser().resolve()
        self.family = check_weights_dir(self.weights_dir)
        # Unset means the family's own: 4 steps suit [klein], 28 Kontext.
        self.steps = settings.flux_steps or self.family.steps
        self.guidance = (
            self.family.guidance if settings.flux_guidance is None else settings.flux_guidance
        )
        self.device_setting = settings.flux_device
        self.batch = settings.variations
        tuning = tuning or Tuning()
        self.input_pixels = tuning.input_pixels or self.family.input_pixels
        self.max_generation_pixels = (
            tuning.max_generation_pixels or self.family.max_generation_pixels
        )

    def shape(self) -> Shape:
        # One GPU, one batch at a time: a style's seeds go through together.
        return Shape(calls=1, batch=self.batch)

    def __repr__(self) -> str:
        return (
            f"FluxLocalEngine(model={self.family.title!r}, weights={self.weights_dir.name!r}, "
            f"steps={self.steps})"
        )

    def describe(self) -> dict[str, Any]:
        """The model and its licence, for /readyz and the start-up log."""
        return self.family.describe()

    def licence_line(self) -> str:
        """One line for the start-up log: the model, and whether its images may be sold."""
        return f"flux-local: {self.family.title}; licence {self.family.licence.summary()}"

    def check_ready(self) -> None:
        """Cheap: the weights folder and the installed packages, without loading anything.

        A probe only looks: the engine keeps the family it was built for (its
        steps, guidance and sizes were chosen for it), and weights swapped
        underneath it since are reported, to be taken up by a restart.
        """
        found = check_weights_dir(self.weights_dir)
        if found != self.family:
            raise ConfigurationError(
                f"HEADSHOTS_FLUX_WEIGHTS_DIR ({self.weights_dir}) now holds {found.title}, but "
                f"this service started with {self.family.title}. Restart it to use the new weights."
            )
        for name in ("torch", "diffusers", "transformers"):
            if importlib.util.find_spec(name) is None:
                raise ConfigurationError(
                    f"The flux-local engine needs {name}, which is not installed. "
                    f"Install it with: {INSTALL_COMMAND} (see docs/flux-local.md)."
                )

    # --- loading -------------------------------------------------------------

    def load(self) -> _Loaded:
        """The process's pipeline for these weights, loaded on first use."""
        torch, diffusers = import_ml()
        device = _pick_device(torch, self.device_setting)
        key = (str(self.weights_dir), device)
        with _LOAD_LOCK:
            loaded = _LOADED.get(key)
            if loaded is None:
                loaded = _LOADED[key] = self._load(torch, diffusers, device)
        return loaded

    def _load(self, torch: ModuleType, diffusers: ModuleType, device: str) -> _Loaded:
        family = check_weights_dir(self.weights_dir)
        started = time.monotonic()
        # Half the memory and the speed GPUs are built for; CPUs lack fast bf16.
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
        pipeline_class = getattr(diffusers, family.pipeline_class, None)
        if pipeline_class is None:
            raise ConfigurationError(
                f"diffusers {diffusers.__version__} has no {family.pipeline_class}, which "
                f"{family.title} needs. Install the locked version with: {INSTALL_COMMAND}."
            )
        # Progress bars are for notebooks; a server's log gets one line per load.
        diffusers.utils.logging.disable_progress_bar()
        importlib.import_module("transformers").utils.logging.disable_progress_bar()
        # The style prompts are longer than CLIP's 77 tokens on purpose (T5
        # reads them whole); without this every call logs the cut-off text.
        # FLUX.2's pipeline warns the same way about sizes we already round.
        for name in (pipeline_class.__module__, "transformers.tokenization_utils_base"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                # Newer diffusers renamed torch_dtype to dtype; the old name
                # works in every version the project allows.
                warnings.simplefilter("ignore", FutureWarning)
                pipeline = pipeline_class.from_pretrained(
                    str(self.weights_dir), torch_dtype=dtype, local_files_only=True
                )
            pipeline.to(device)
        except Exception as error:
            if _is_out_of_memory(torch, error):
                raise ConfigurationError(
                    f"{family.title} does not fit in this GPU's memory "
                    "(see docs/flux-local.md for what each model needs)."
                ) from None
            raise ConfigurationError(
                f"The weights in HEADSHOTS_FLUX_WEIGHTS_DIR ({self.weights_dir}) could not be "
                f"loaded ({type(error).__name__}: {str(error)[:200]})."
            ) from None
        pipeline.set_progress_bar_config(disable=True)
        accepts = frozenset(inspect.signature(pipeline.__call__).parameters)
        log.info(
            "flux-local: loaded %s (%s) on %s in %.1f s",
            family.title,
            self.weights_dir.name,
            device,
            time.monotonic() - started,
        )
        return _Loaded(pipeline, family, device, accepts, threading.Lock())

    # --- generation ------------------------------------------------------------

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        """All seeds as one batch; one outcome per seed, in order."""
        check_seeds(seeds)
        size = check_size(size)
        loaded = self.load()
        torch, _ = import_ml()
        width, height = generation_size(size, self.max_generation_pixels)
        image = input_image(selfie.image, self.input_pixels)
        prompt = loaded.family.prompt(style, extend_crop=selfie.cropped_tightly)
        with loaded.run_lock:
            started = time.monotonic()
            try:
                images = self._run(torch, loaded, image, prompt, seeds, width, height)
            except Exception as error:
                if not _is_out_of_memory(torch, error):
                    return self._failed(torch, style, seeds, error, time.monotonic() - started)
                log.warning("flux-local: out of memory for %d images, one at a time", len(seeds))
                self._free(torch, loaded)
                return [
                    self._one_by_one(torch, loaded, image, style, prompt, seed, size, width, height)
                    for seed in seeds
                ]
            seconds = time.monotonic() - started
        return [
            Rendered(
                seed=seed,
                image=fit(out, size),
                seconds=seconds,
                details=self._details(loaded, style, seed, len(seeds), seconds),
            )
            for seed, out in zip(seeds, images, strict=True)
        ]

    def _one_by_one(
        self,
        torch: ModuleType,
        loaded: _Loaded,
        image: Image.Image,
        style: Style,
        prompt: str,
        seed: int,
        size: Size,
        width: int,
        height: int,
    ) -> Outcome:
        started = time.monotonic()
        try:
            (out,) = self._run(torch, loaded, image, prompt, [seed], width, height)
        except Exception as error:
            self._free(torch, loaded)
            return self._failed(torch, style, [seed], error, time.monotonic() - started)[0]
        seconds = time.monotonic() - started
        details = self._details(loaded, style, seed, 1, seconds)
        return Rendered(seed=seed, image=fit(out, size), seconds=seconds, details=details)

    def _run(
        self,
        torch: ModuleType,
        loaded: _Loaded,
        image: Image.Image,
        prompt: str,
        seeds: Sequence[int],
        width: int,
        height: int,
    ) -> list[Image.Image]:
        return call_pipeline(
            torch,
            loaded.pipeline,
            loaded.family,
            loaded.accepts,
            Batch(image, prompt, tuple(seeds), width, height, self.steps, self.guidance),
            loaded.device,
        )

    @staticmethod
    def _free(torch: ModuleType, loaded: _Loaded) -> None:
        if loaded.device == "cuda":
            torch.cuda.empty_cache()

    def _failed(
        self,
        torch: ModuleType,
        style: Style,
        seeds: Sequence[int],
        error: BaseException,
        seconds: float,
    ) -> list[Outcome]:
        # Only the exception's type is logged: its text can quote tensors.
        log.warning("flux-local: generation failed: %s", type(error).__name__)
        if _is_out_of_memory(torch, error):
            code = "out_of_memory"
            reason = (
                "The GPU ran out of memory making this variation; try a smaller size "
                "or fewer variations at a time."
            )
        else:
            code = "generation_failed"
            reason = f"The local image model failed on this variation ({type(error).__name__})."
        return [
            Failed(
                seed=seed,
                reason=reason,
                code=code,
                retryable=code == "out_of_memory",
                seconds=seconds,
                details={"engine": self.name, "style": style.id, "error": type(error).__name__},
            )
            for seed in seeds
        ]

    def _details(
        self, loaded: _Loaded, style: Style, seed: int, batch: int, seconds: float
    ) -> dict[str, Any]:
        return {
            "engine": self.name,
            "family": loaded.family.key,
            # The folder's name only: the rest of the path is the operator's.
            "model": self.weights_dir.name,
            "style": style.id,
            "seed": seed,
            "steps": self.steps,
            "guidance": self.guidance,
            "device": loaded.device,
            "batch_size": batch,
            "seconds": round(seconds, 3),
        }
