"""The engine protocol, the outcome types and the registry.

An engine has one entry point, :meth:`Engine.generate`: a prepared selfie, a
style, a list of seeds and an output size in, one :class:`Rendered` or
:class:`Failed` per seed out, in the order of the seeds. A failure of one
seed never hides the others. An engine checks its inputs and its
configuration before it spends money or GPU time, and raises
:class:`~headshots.errors.ConfigurationError` for a setup that cannot work.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from PIL import Image

from headshots.config import Settings
from headshots.errors import ConfigurationError, HeadshotsError
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import OWN_CLOTHES, Style

if TYPE_CHECKING:
    from headshots.imaging.identity import IdentityScore

Size = tuple[int, int]


@dataclass(frozen=True)
class Rendered:
    seed: int
    image: Image.Image
    seconds: float
    # Engine-specific facts worth keeping: provider prediction ids, model,
    # cost, what the studio engine varied. Never pixels or secrets.
    details: dict[str, Any] = field(default_factory=dict)
    # How the face compares with the selfie; set by the identity gate in
    # render.py, never by an engine.
    identity: IdentityScore | None = None


@dataclass(frozen=True)
class Failed:
    seed: int
    # A sentence for the person ("The provider's safety filter refused this
    # image."); the code is stable for programs.
    reason: str
    code: str = "engine_failed"
    # Whether a new seed may succeed where this one failed.
    retryable: bool = False
    seconds: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)


Outcome = Rendered | Failed


@dataclass(frozen=True)
class Shape:
    """How an engine wants its work, so the service schedules by it.

    The service never runs more than ``calls`` calls of one engine at once in
    a process, and gives each call at most ``batch`` seeds of one style. An
    ``asynchronous`` engine also has ``agenerate``, a coroutine with the
    same contract as ``generate``: its calls share one event loop per process
    instead of a thread each.
    """

    calls: int
    batch: int = 1
    asynchronous: bool = False

    def __post_init__(self) -> None:
        if self.calls < 1 or self.batch < 1:
            raise ValueError("an engine shape needs at least one call of one seed")


class EngineFailure(HeadshotsError):
    """A failure of a whole call, not of one seed (bad input, bad setup)."""

    status_code = 502
    code = "engine_failed"
    message = "The image engine failed."


@runtime_checkable
class Engine(Protocol):
    """What every engine is and can do, declared: callers never probe for a method.

    The abilities are class attributes, so they are read without building
    the engine (:func:`declared`), and methods with a meaning for every
    engine; :class:`EngineDefaults` gives each optional one its "cannot"
    answer, so an engine states only what it adds.
    """

    name: ClassVar[str]
    # One line a person reads in `headshots generate` and report.json.
    description: ClassVar[str]
    generative: ClassVar[bool]
    # Whether a new seed can change the face (generative engines), so a
    # variation that drifted from the selfie is worth one more try.
    rerolls_help: ClassVar[bool]
    # Whether the engine can extend a head or shoulders that the photo cuts
    # off (generative engines paint them in; the studio engine keeps the
    # real photo and cannot), so the preflight judges a tight crop per engine.
    repairs_crop: ClassVar[bool]
    # Whether the engine dresses the person in the style's wardrobe
    # (generative engines follow the prompt) or keeps their own clothes (the
    # studio engine), so every style text says what this engine will do.
    changes_clothes: ClassVar[bool]
    # Whether the engine can put the person before a backdrop colour a
    # person picks (#RRGGBB) instead of the style's own.
    takes_backdrop_colour: ClassVar[bool]

    def shape(self) -> Shape:
        """How many calls may be in flight per process, and how many seeds each takes."""
        ...

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]: ...

    async def agenerate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        """``generate`` as a coroutine; the scheduler calls it when ``shape().asynchronous``."""
        ...

    def check_ready(self) -> None:
        """Raise a :class:`HeadshotsError` saying why the engine cannot serve now (/readyz)."""
        ...

    def describe(self) -> dict[str, Any] | None:
        """The model the engine runs and its licence, for /readyz; None when there is none."""
        ...

    def licence_line(self) -> str | None:
        """One line for the start-up log: whether its images may be sold; None if nothing to say."""
        ...


class EngineDefaults:
    """The optional abilities of :class:`Engine`, each answered "not this engine"."""

    takes_backdrop_colour: ClassVar[bool] = False

    async def agenerate(
        self: Engine, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: Size
    ) -> list[Outcome]:
        # A synchronous engine on the event loop: on a thread, so the loop
        # keeps moving.
        return await asyncio.to_thread(self.generate, selfie, style, seeds, size)

    def check_ready(self) -> None:
        return None

    def describe(self) -> dict[str, Any] | None:
        return None

    def licence_line(self) -> str | None:
        return None


EngineFactory = Callable[[Settings], Engine]

# Built-in engines are imported only when picked, so a user of the studio
# engine never imports the Replicate client, and nobody imports torch.
_BUILTIN: dict[str, str] = {
    "studio": "headshots.engines.studio:StudioEngine",
    "replicate": "headshots.engines.replicate.engine:ReplicateEngine",
    "flux-local": "headshots.engines.flux_local:FluxLocalEngine",
}
_REGISTERED: dict[str, EngineFactory] = {}


def register_engine(name: str, factory: EngineFactory) -> None:
    """Add an engine under ``name`` (tests and plugins use this)."""
    _REGISTERED[name] = factory


def available_engines() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def default_engine_name(settings: Settings) -> str:
    if settings.engine:
        return settings.engine
    if settings.replicate_api_token is not None:
        return "replicate"
    if settings.flux_weights_dir is not None:
        return "flux-local"
    return "studio"


@dataclass(frozen=True)
class Declared:
    """What an engine says of itself, read from its class: nothing is built."""

    generative: bool
    changes_clothes: bool
    repairs_crop: bool
    takes_backdrop_colour: bool = False


def declared(settings: Settings, name: str | None = None) -> Declared:
    """What the engine called ``name`` (default: the configured one) declares.

    An engine that cannot be loaded here, or does not say, counts as
    generative (its images are marked as AI-made: over-disclosing misleads
    less than hiding it), as changing clothes when generative, and as unable
    to extend a cropped head.
    """
    name = name or default_engine_name(settings)
    factory: object = _REGISTERED.get(name)
    target = _BUILTIN.get(name) or (name if ":" in name else None)
    if factory is None and target is not None:
        module_name, _, class_name = target.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError):
            factory = None
    generative = bool(getattr(factory, "generative", True))
    return Declared(
        generative=generative,
        changes_clothes=bool(getattr(factory, "changes_clothes", generative)),
        repairs_crop=bool(getattr(factory, "repairs_crop", False)),
        takes_backdrop_colour=bool(getattr(factory, "takes_backdrop_colour", False)),
    )


def describe_style(style: Style, settings: Settings, engine: str | None = None) -> str:
    """What ``style`` gives with the engine called ``engine`` (default: the configured one).

    The one text the pages, ``headshots styles`` and the API show, so none
    of them can promise a suit from an engine that keeps the photo's clothes.
    """
    made = declared(settings, engine)
    scene = style.scene if made.generative else style.studio
    if made.changes_clothes:
        return f"{style.wardrobe} {scene}"
    return f"{scene} {OWN_CLOTHES}"


def engine_repairs_crop(settings: Settings, name: str | None = None) -> bool:
    """Whether the engine that will make the order can extend a cropped head."""
    return declared(settings, name).repairs_crop


def get_engine(settings: Settings, name: str | None = None) -> Engine:
    """The engine called ``name``, or a third-party one given as ``module:Class``."""
    name = name or default_engine_name(settings)
    if name in _REGISTERED:
        return _declaring(name, _REGISTERED[name](settings))
    target = _BUILTIN.get(name) or (name if ":" in name else None)
    if target is None:
        raise ConfigurationError(
            f"There is no engine called {name[:40]!r}. "
            f"Choose from: {', '.join(available_engines())}."
        )
    module_name, _, class_name = target.partition(":")
    try:
        factory: EngineFactory = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as error:
        raise ConfigurationError(
            f"The engine {name[:80]!r} could not be loaded ({type(error).__name__})."
        ) from error
    return _declaring(name, factory(settings))


def _declaring(name: str, engine: object) -> Engine:
    """``engine``, refused at once if it does not declare everything an engine may be asked."""
    if not isinstance(engine, Engine):
        members = set(Engine.__annotations__) | {
            member for member, value in vars(Engine).items() if callable(value)
        }
        missing = sorted(m for m in members if not m.startswith("_") and not hasattr(engine, m))
        raise ConfigurationError(
            f"The engine {name[:80]!r} does not declare {', '.join(missing)}: "
            "an engine class takes the optional ones from engines.base.EngineDefaults."
        )
    return engine


def check_seeds(seeds: Sequence[int]) -> None:
    """Seeds every engine accepts: 1 to 16 distinct integers in 0..2**31-1."""
    if not 1 <= len(seeds) <= 16:
        raise EngineFailure("Ask for between 1 and 16 variations at a time.")
    if len(set(seeds)) != len(seeds):
        raise EngineFailure("Each variation needs its own seed.")
    if any(not 0 <= seed < 2**31 for seed in seeds):
        raise EngineFailure("Seeds are whole numbers from 0 to 2147483647.")
