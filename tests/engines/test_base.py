"""What every engine declares, and what the service refuses to load."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar

import pytest

from headshots.config import Settings
from headshots.engines.base import (
    Engine,
    EngineDefaults,
    Outcome,
    Rendered,
    Shape,
    get_engine,
    register_engine,
)
from headshots.errors import ConfigurationError
from headshots.imaging.selfie import PreparedSelfie
from headshots.styles import Style, get_style


class Undeclared:
    """An engine written before engines declared their abilities."""

    name: ClassVar[str] = "undeclared"
    generative: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        pass

    def shape(self) -> Shape:
        return Shape(calls=1)

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        return []


class Minimal(EngineDefaults):
    """Says only what it must; the defaults say "not this engine" for the rest."""

    name: ClassVar[str] = "minimal-engine"
    description: ClassVar[str] = "Test engine."
    generative: ClassVar[bool] = False
    rerolls_help: ClassVar[bool] = False
    repairs_crop: ClassVar[bool] = False
    changes_clothes: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.threads: list[str] = []

    def shape(self) -> Shape:
        return Shape(calls=1)

    def generate(
        self, selfie: PreparedSelfie, style: Style, seeds: Sequence[int], size: tuple[int, int]
    ) -> list[Outcome]:
        import threading

        self.threads.append(threading.current_thread().name)
        return [Rendered(seed=seed, image=selfie.image, seconds=0.0) for seed in seeds]


register_engine("undeclared", Undeclared)
register_engine("minimal-engine", Minimal)


def test_an_engine_that_does_not_declare_its_abilities_is_refused_with_what_it_lacks(
    settings: Settings,
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        get_engine(settings, "undeclared")
    assert "does not declare" in refused.value.detail
    assert "repairs_crop" in refused.value.detail and "check_ready" in refused.value.detail


def test_the_optional_abilities_default_to_none_of_them(settings: Settings) -> None:
    engine = get_engine(settings, "minimal-engine")
    assert isinstance(engine, Engine)
    assert engine.check_ready() is None
    assert engine.describe() is None
    assert engine.licence_line() is None
    assert engine.takes_backdrop_colour is False


def test_a_synchronous_engine_called_from_an_event_loop_runs_off_it(settings: Settings) -> None:
    from PIL import Image

    from headshots.imaging.intake import Photo
    from headshots.imaging.selfie import prepare_photo

    engine = get_engine(settings, "minimal-engine")
    image = Image.open("tests/fixtures/obama.jpg").convert("RGB")
    selfie = prepare_photo(Photo(image=image, source_format="JPEG", source_size=image.size))
    outcomes = asyncio.run(engine.agenerate(selfie, get_style("minimal"), [1, 2], (64, 80)))
    assert [o.seed for o in outcomes] == [1, 2]
    assert isinstance(engine, Minimal)
    assert engine.threads and engine.threads[0] != "MainThread"


def test_the_built_in_engines_declare_everything(settings: Settings) -> None:
    from headshots.engines.flux_local import FluxLocalEngine
    from headshots.engines.replicate.engine import ReplicateEngine
    from headshots.engines.studio import StudioEngine

    for engine_class in (StudioEngine, FluxLocalEngine, ReplicateEngine):
        for ability in ("repairs_crop", "changes_clothes", "takes_backdrop_colour"):
            assert isinstance(getattr(engine_class, ability), bool), (engine_class, ability)
    assert isinstance(get_engine(settings, "studio"), Engine)
