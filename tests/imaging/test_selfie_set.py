"""The selfies people actually have (decision 0008), case by case: tests/selfie_set.py.

Each case is judged twice, as an engine that extends a cropped head
(generative) and as one that cannot (studio) would judge it.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import pytest
from PIL import Image

from headshots.imaging.faces import find_upright_face
from headshots.imaging.preflight import PreflightReport, preflight
from tests.selfie_set import (
    SINGLES,
    Case,
    Pixels,
    as_bgr,
    cases,
    from_bgr,
    head_and_shoulders,
    source,
)

CASES = cases()
PHOTOS = [case for case in CASES if not case.non_photo]
NON_PHOTOS = [case for case in CASES if case.non_photo]
# The kinds the statistics catch (imaging/medium.py, decision 0008).
FLAGGED_KINDS = {"oil_painting", "cartoon", "pencil_sketch", "halftone", "screen_photo"}


def refusal(report: PreflightReport) -> str | None:
    return report.errors[0].code if report.errors else None


@pytest.mark.parametrize("case", PHOTOS, ids=[case.name for case in PHOTOS])
def test_each_photo_gets_its_true_outcome_for_each_kind_of_engine(case: Case) -> None:
    image = case.build()
    generative = preflight(image, repairs_crop=True)
    studio = preflight(image, repairs_crop=False)
    if case.has_face:
        assert "no_face" not in generative.codes
    assert refusal(generative) == case.refusal_generative, generative.codes
    assert refusal(studio) == case.refusal_studio, studio.codes
    assert "not_a_photo" not in studio.codes


def test_a_tight_crop_tells_the_person_what_each_engine_will_do() -> None:
    image = CASES[0].build()  # obama-closeup
    generative = preflight(image, repairs_crop=True)
    studio = preflight(image, repairs_crop=False)
    [warning] = [f for f in generative.findings if f.code == "tight_crop"]
    [error] = [f for f in studio.findings if f.code == "tight_crop"]
    assert warning.severity == "warning" and "extend" in warning.sentence
    assert error.severity == "error" and "cannot add" in error.sentence
    assert warning.value == error.value > warning.limit


@pytest.mark.parametrize("name", SINGLES)
def test_a_photo_on_its_side_is_turned_upright(name: str) -> None:
    upright = head_and_shoulders(name, 640)
    for turns in (1, 3):
        turned, face = find_upright_face(upright.rotate(90 * turns, expand=True))
        assert turned.size == upright.size
        assert abs(face.roll_degrees) < 20
        # The eyes lie above the chin, as in the upright photo.
        assert face.eye_center[1] < face.landmarks[152, 1]


@pytest.mark.parametrize(
    "case",
    [case for case in NON_PHOTOS if case.kind in FLAGGED_KINDS],
    ids=lambda case: case.name,
)
def test_paintings_drawings_and_prints_are_called_what_they_are(case: Case) -> None:
    report = preflight(case.build())
    assert "not_a_photo" in report.codes
    flagged = next(f for f in report.findings if f.code == "not_a_photo")
    assert flagged.severity == "warning" and flagged.value > flagged.limit


@pytest.mark.parametrize("name", SINGLES)
def test_degraded_real_photos_are_never_called_paintings(name: str) -> None:
    from bench.selfies import degraded

    for label, image in degraded(source(name)).items():
        assert "not_a_photo" not in preflight(image).codes, label


def _bgr_filtered(image: Image.Image, smooth: Callable[[Pixels], Pixels]) -> Image.Image:
    return from_bgr(smooth(as_bgr(image)))


# A phone's noise reduction and a beauty filter at a light setting.
LIGHT_SMOOTHING: dict[str, Callable[[Image.Image], Image.Image]] = {
    "denoised": lambda image: _bgr_filtered(
        image, lambda bgr: cv2.fastNlMeansDenoisingColored(bgr, None, 3, 3, 7, 21)
    ),
    "bilateral": lambda image: _bgr_filtered(
        image, lambda bgr: cv2.bilateralFilter(bgr, 5, 30, 30)
    ),
    "beauty_half": lambda image: Image.blend(
        image, _bgr_filtered(image, lambda bgr: cv2.bilateralFilter(bgr, 9, 75, 75)), 0.5
    ),
}


@pytest.mark.parametrize("name", SINGLES)
def test_lightly_smoothed_real_photos_are_not_called_paintings(name: str) -> None:
    for label, smooth in LIGHT_SMOOTHING.items():
        assert "not_a_photo" not in preflight(smooth(source(name))).codes, label


@pytest.mark.xfail(strict=True, reason="strokes/flat: strong denoising looks like paint (0008)")
def test_a_strongly_denoised_photo_is_not_called_a_painting() -> None:
    denoised = _bgr_filtered(
        source("obama.jpg"), lambda bgr: cv2.fastNlMeansDenoisingColored(bgr, None, 10, 10, 7, 21)
    )
    assert "not_a_photo" not in preflight(denoised).codes


def test_no_face_is_said_only_when_there_is_none() -> None:
    street = preflight(source("no_face_street.jpg"))
    assert street.codes == ["no_face"]
    blank = preflight(Image.new("RGB", (640, 480), (200, 190, 180)))
    assert "no_face" in blank.codes
