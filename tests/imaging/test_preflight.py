"""Selfie preflight on real photos and on synthetic degradations of a good selfie."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from headshots.imaging.faces import LEFT_EYE, NOSE_TIP, RIGHT_EYE, Face, find_one_face
from headshots.imaging.preflight import CHECKS, WITHOUT_CROP_REPAIR, PreflightReport, preflight

FIXTURES = Path(__file__).parents[1] / "fixtures"
GUIDE = Path(__file__).parents[2] / "docs" / "selfie-guide.md"


def load(name: str, size: int = 1024) -> Image.Image:
    image = Image.open(FIXTURES / name).convert("RGB")
    if max(image.size) > size:
        ratio = size / max(image.size)
        image = image.resize((round(image.width * ratio), round(image.height * ratio)))
    return image


def errors(report: PreflightReport) -> list[str]:
    return [finding.code for finding in report.errors]


@pytest.fixture(scope="module")
def selfie() -> Image.Image:
    return load("obama.jpg")


@pytest.mark.parametrize(
    "name", ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "grace_hopper.jpg"]
)
def test_clean_selfies_raise_no_hard_error(name: str) -> None:
    # At the service's working size (1536 px), as intake hands them over.
    report = preflight(load(name, 1536))
    assert report.ok, report.findings
    assert report.findings == ()


def test_a_small_face_is_allowed_with_a_resolution_warning() -> None:
    report = preflight(load("astronaut.png"))
    assert report.ok
    assert report.codes == ["low_resolution"]
    warning = report.warnings[0]
    assert warning.value < warning.limit == 200


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("group_of_five.jpg", "several_faces"),
        ("no_face_street.jpg", "no_face"),
        ("obama_partial_face.jpg", "tight_crop"),
    ],
)
def test_unusable_photos_are_refused_with_their_reason(name: str, code: str) -> None:
    # As the studio engine judges them (it cannot extend a cut head).
    report = preflight(load(name))
    assert not report.ok
    assert errors(report) == [code]
    check = WITHOUT_CROP_REPAIR.get(code, CHECKS[code])
    assert report.as_dict()["findings"][0]["message"] == check.sentence


def test_a_head_cut_at_the_side_is_a_warning_for_an_engine_that_extends_it() -> None:
    # obama_partial_face.jpg: the edge runs through the cheek; eyes, mouth and chin are in.
    report = preflight(load("obama_partial_face.jpg"), repairs_crop=True)
    assert report.ok and report.codes == ["tight_crop"]
    assert "extend" in report.warnings[0].sentence


def shade_one_side(image: Image.Image) -> Image.Image:
    """Light falling from the left: the right half of the face about a stop darker."""
    face = find_one_face(image)
    nose, width = float(face.landmarks[NOSE_TIP, 0]), face.mesh_box.width
    x = np.arange(image.width, dtype=np.float32)
    gain = np.clip(1 - 0.7 * (x - (nose - width / 2)) / width, 0.3, 1.0)
    return Image.fromarray((np.asarray(image) * gain[None, :, None]).astype(np.uint8))


def crop_through_face(image: Image.Image) -> Image.Image:
    box = find_one_face(image).mesh_box
    return image.crop((int(box.left + 0.25 * box.width), 0, image.width, image.height))


DEGRADATIONS = {
    "blurry": lambda image: image.filter(ImageFilter.GaussianBlur(4)),
    "too_dark": lambda image: ImageEnhance.Brightness(image).enhance(0.3),
    "uneven_light": shade_one_side,
    "head_tilted": lambda image: image.rotate(30, Image.Resampling.BICUBIC, fillcolor=(90,) * 3),
    "face_cut_off": crop_through_face,
    "not_a_photo": lambda image: (
        Image.fromarray(cv2.medianBlur(np.asarray(image), 7)).quantize(12).convert("RGB")
    ),
    "too_bright": lambda image: ImageEnhance.Brightness(image).enhance(1.8),
}


@pytest.mark.parametrize("code", sorted(DEGRADATIONS))
def test_each_degradation_raises_its_finding_and_no_other_hard_error(
    selfie: Image.Image, code: str
) -> None:
    report = preflight(DEGRADATIONS[code](selfie))
    assert code in report.codes
    assert set(errors(report)) <= {code}
    found = next(finding for finding in report.findings if finding.code == code)
    assert found.sentence == CHECKS[code].sentence
    assert found.value != found.limit


def test_one_sided_light_says_what_to_do(selfie: Image.Image) -> None:
    report = preflight(shade_one_side(selfie))
    finding = next(f for f in report.findings if f.code == "uneven_light")
    assert finding.sentence == "Light falls from one side: face a window and try again."
    assert finding.value > finding.limit and finding.unit == "stops"


def test_a_tiny_face_is_too_small_to_work_with(selfie: Image.Image) -> None:
    report = preflight(selfie.resize((160, 200), Image.Resampling.LANCZOS))
    assert errors(report) == ["face_too_small"]


def test_closed_eyes_are_noticed(selfie: Image.Image) -> None:
    face = find_one_face(selfie)
    assert "eyes_closed" not in preflight(selfie, face).codes
    # The same face with each upper lid moved onto the lower one.
    lids = face.landmarks.copy()
    for eye in (LEFT_EYE, RIGHT_EYE):
        _, _, upper, lower = eye
        lids[upper] = lids[lower]
    closed = Face(box=face.box, score=face.score, landmarks=lids)
    assert "eyes_closed" in preflight(selfie, closed).codes


def test_a_turned_head_is_noticed(selfie: Image.Image) -> None:
    face = find_one_face(selfie)
    # Move the nose tip most of the way towards one cheek, as in a profile.
    turned = face.landmarks.copy()
    turned[NOSE_TIP, 0] = turned[NOSE_TIP, 0] * 0.2 + turned[234, 0] * 0.8
    report = preflight(selfie, Face(box=face.box, score=face.score, landmarks=turned))
    assert "head_turned" in report.codes and report.ok


def test_the_selfie_guide_lists_every_finding_with_its_sentence() -> None:
    guide = GUIDE.read_text()
    for check in [*CHECKS.values(), *WITHOUT_CROP_REPAIR.values()]:
        assert f"`{check.code}`" in guide, check.code
        assert check.sentence in guide, check.code
