"""The offline studio engine on real photos."""

from __future__ import annotations

import io
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshots.config import Settings
from headshots.engines.base import Engine, EngineFailure, Rendered, get_engine
from headshots.engines.studio import StudioEngine, plan_variation
from headshots.imaging.faces import find_one_face
from headshots.imaging.selfie import PreparedSelfie, prepare_selfie
from headshots.styles import STYLES, get_style

FIXTURES = Path(__file__).parents[1] / "fixtures"
SIZE = (1024, 1280)
SEEDS = [40, 41, 42, 43]


@pytest.fixture(scope="module")
def studio_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with pytest.MonkeyPatch.context() as patch:
        for name in ("REPLICATE_API_TOKEN", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"):
            patch.delenv(name, raising=False)
        patch.setenv("HEADSHOTS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        yield Settings()


def prepared(name: str, settings: Settings) -> PreparedSelfie:
    return prepare_selfie((FIXTURES / name).read_bytes(), settings)


@pytest.fixture(scope="module")
def obama(studio_settings: Settings) -> PreparedSelfie:
    return prepared("obama.jpg", studio_settings)


@pytest.fixture(scope="module")
def hopper(studio_settings: Settings) -> PreparedSelfie:
    return prepared("grace_hopper.jpg", studio_settings)


@pytest.fixture(scope="module")
def engine(studio_settings: Settings) -> StudioEngine:
    return StudioEngine(studio_settings)


@pytest.fixture(scope="module")
def corporate(engine: StudioEngine, obama: PreparedSelfie) -> list[Rendered]:
    outcomes = engine.generate(obama, get_style("corporate"), SEEDS, SIZE)
    assert all(isinstance(outcome, Rendered) for outcome in outcomes)
    return [outcome for outcome in outcomes if isinstance(outcome, Rendered)]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)


def test_is_an_engine_picked_by_name(studio_settings: Settings) -> None:
    engine = get_engine(studio_settings, "studio")
    assert isinstance(engine, StudioEngine)
    assert isinstance(engine, Engine)
    assert engine.generative is False
    assert "offline" in engine.description and "no generative" in engine.description


def test_one_image_per_seed_at_the_requested_size(corporate: list[Rendered]) -> None:
    assert [outcome.seed for outcome in corporate] == SEEDS
    for outcome in corporate:
        assert outcome.image.size == SIZE
        assert outcome.image.mode == "RGB"
        assert outcome.details["generative"] is False


def test_four_variations_differ_visibly(corporate: list[Rendered]) -> None:
    for first, second in combinations(corporate, 2):
        difference = np.abs(pixels(first.image) - pixels(second.image)).mean()
        assert difference > 6, (first.details, second.details, difference)
    sides = {outcome.details["light_side"] for outcome in corporate}
    tightness = sorted(outcome.details["crop_tightness"] for outcome in corporate)
    assert sides == {"left", "right"}
    assert tightness[-1] - tightness[0] > 0.05


def test_variations_of_a_tight_photo_differ_in_composition_too(
    engine: StudioEngine, hopper: PreparedSelfie
) -> None:
    """A photo already cropped close leaves little room to vary the crop."""
    outcomes = engine.generate(hopper, get_style("minimal"), SEEDS, SIZE)
    rendered = [outcome for outcome in outcomes if isinstance(outcome, Rendered)]
    assert len(rendered) == 4
    for first, second in combinations(rendered, 2):
        difference = np.abs(pixels(first.image) - pixels(second.image)).mean()
        assert difference > 12, (first.details, second.details, difference)
    # The face sits left of centre in some, right of centre in others.
    centres = [find_one_face(outcome.image).box.center[0] for outcome in rendered]
    assert min(centres) < SIZE[0] / 2 < max(centres)
    assert max(centres) - min(centres) > 0.05 * SIZE[0]


def test_same_seed_gives_the_same_image(
    engine: StudioEngine, obama: PreparedSelfie, corporate: list[Rendered]
) -> None:
    again = engine.generate(obama, get_style("corporate"), [SEEDS[2]], SIZE)[0]
    assert isinstance(again, Rendered)
    assert again.image.tobytes() == corporate[2].image.tobytes()
    assert again.details == corporate[2].details
    assert plan_variation(SEEDS[2]) == plan_variation(SEEDS[2])


@pytest.mark.parametrize("style", STYLES, ids=lambda style: style.id)
def test_every_style_renders(engine: StudioEngine, hopper: PreparedSelfie, style) -> None:
    (outcome,) = engine.generate(hopper, style, [7], (768, 960))
    assert isinstance(outcome, Rendered)
    assert outcome.image.size == (768, 960)
    image = pixels(outcome.image)
    # Neither murky nor washed out, and the dark uniform keeps its folds
    # rather than clipping to black.
    assert 40 < image.mean() < 220
    assert (image.max(axis=2) < 4).mean() < 0.02


@pytest.mark.parametrize(
    ("style_id", "colour"),
    [("minimal", "background"), ("corporate", "background"), ("executive", "background_accent")],
)
def test_backdrop_is_the_presets(corporate, engine, obama, style_id: str, colour: str) -> None:
    style = get_style(style_id)
    (outcome,) = engine.generate(obama, style, [3], SIZE)
    assert isinstance(outcome, Rendered)
    image = pixels(outcome.image)
    expected = np.array(getattr(style.look, colour), np.float32)
    # The top corners are backdrop in a headshot; the photo there was a
    # red curtain and a window.
    for corner in (image[:40, :40], image[:40, -40:]):
        assert np.abs(corner.mean(axis=(0, 1)) - expected).max() < 30, corner.mean(axis=(0, 1))


def test_face_still_matches_the_selfie(corporate: list[Rendered], obama: PreparedSelfie) -> None:
    """dlib's face descriptor: a retouched photo is far closer than another photo would be."""
    import importlib.util

    import dlib

    # The model files, found without importing the package (its __init__
    # needs pkg_resources, which newer setuptools no longer ship).
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None and spec.origin is not None
    models = Path(spec.origin).parent / "models"
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))

    def descriptor(image: Image.Image) -> np.ndarray:
        array = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        (rect,) = detector(array, 0)
        return np.array(net.compute_face_descriptor(array, predictor(array, rect)))

    reference = descriptor(obama.image)
    distances = [np.linalg.norm(descriptor(o.image) - reference) for o in corporate]
    assert max(distances) < 0.2, distances
    assert float(np.median(distances)) <= 0.15, distances


def test_tilted_head_is_levelled(engine: StudioEngine, studio_settings: Settings) -> None:
    photo = Image.open(FIXTURES / "obama.jpg").convert("RGB")
    tilted = photo.rotate(
        4, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=(90, 40, 40)
    )
    buffer = io.BytesIO()
    tilted.save(buffer, format="JPEG", quality=92)
    selfie = prepare_selfie(buffer.getvalue(), studio_settings)
    assert abs(selfie.face.roll_degrees) > 3
    (outcome,) = engine.generate(selfie, get_style("minimal"), [1], SIZE)
    assert isinstance(outcome, Rendered)
    assert abs(find_one_face(outcome.image).roll_degrees) < 1.0


def test_tight_selfie_fills_past_the_edge_with_backdrop(
    engine: StudioEngine, studio_settings: Settings
) -> None:
    photo = Image.open(FIXTURES / "obama.jpg").convert("RGB")
    tight = photo.crop((330, 60, 650, 520))  # the face and little else
    buffer = io.BytesIO()
    tight.save(buffer, format="JPEG", quality=92)
    selfie = prepare_selfie(buffer.getvalue(), studio_settings)
    style = get_style("minimal")
    (outcome,) = engine.generate(selfie, style, [0], SIZE)
    assert isinstance(outcome, Rendered)
    assert outcome.details["extends_past_photo"] is True
    image = pixels(outcome.image)
    white = np.array(style.look.background, np.float32)
    # Beside the head, where the photo ran out: backdrop, not black.
    for corner in (image[:60, :60], image[:60, -60:], image[500:560, :30], image[500:560, -30:]):
        assert np.abs(corner.mean(axis=(0, 1)) - white).max() < 25


@pytest.mark.parametrize("size", [(100, 100), (1024, 5000)])
def test_refuses_sizes_it_cannot_make(engine, obama, size) -> None:
    with pytest.raises(EngineFailure):
        engine.generate(obama, get_style("minimal"), [1], size)
