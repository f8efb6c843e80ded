"""Selfie preflight on real photos and on synthetic degradations of a good selfie."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from headshots.imaging.faces import (
    LEFT_EYE,
    LEFT_IRIS,
    NOSE_TIP,
    RIGHT_EYE,
    RIGHT_IRIS,
    Face,
    find_one_face,
)
from headshots.imaging.preflight import CHECKS, WITHOUT_CROP_REPAIR, PreflightReport, preflight
from tests.group_set import SINGLE_CROPS, crop
from tests.selfie_set import (
    head_and_shoulders,
    shoulder_cut,
    with_microphone,
    with_neighbour,
    with_phone,
)

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
    ("name", "warnings"),
    [
        ("obama.jpg", []),
        # Caught mid-word, looking at someone beside the camera.
        # A narrow photo: even the studio engine's closest frame is wider,
        # and his shoulders fade out at its sides.
        ("obama2.jpg", ["mouth_open", "eyes_off_camera", "cut_at_side"]),
        ("obama3.jpg", []),
        ("biden.jpg", []),
        ("grace_hopper.jpg", []),
    ],
)
def test_clean_selfies_raise_no_hard_error(name: str, warnings: list[str]) -> None:
    # At the service's working size (1536 px), as intake hands them over.
    report = preflight(load(name, 1536))
    assert report.ok, report.findings
    assert report.codes == warnings


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


# --- what a person can change: mouth, eyes, what is in front of them (decision 0008) ---

NEW_CODES = {"mouth_open", "eyes_off_camera", "face_covered", "other_person"}
# Portraits without any of those problems (looked at: mouth closed or a
# smile with the teeth together, eyes on the lens, nothing in front of the
# face, no one else in the frame), beards and black-and-white among them.
ORDINARY = [
    "obama.jpg",
    "obama3.jpg",
    "biden.jpg",
    "grace_hopper.jpg",
    "astronaut.png",
    "shards_avatar-1.jpg",
    "shards_avatar-3.jpg",
    "sneat_avatar-1.png",
    "sneat_avatar-7.png",
    "blackdash_mike.jpg",
]


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_portraits_get_none_of_the_new_warnings(name: str) -> None:
    for image in (load(name), head_and_shoulders(name, 640)):
        for repairs_crop in (False, True):
            found = set(preflight(image, repairs_crop=repairs_crop).codes)
            assert not found & NEW_CODES, found


@pytest.mark.parametrize(
    "name", ["shards_avatar-2.jpg", "obama2.jpg", "sblanding_testimonials-1.jpg"]
)
def test_a_mouth_open_in_speech_or_laughter_is_noticed(name: str) -> None:
    report = preflight(load(name))
    [found] = [f for f in report.findings if f.code == "mouth_open"]
    assert found.severity == "warning" and found.value > found.limit
    assert report.ok


@pytest.mark.parametrize("name", ["blackdash_james.jpg", "obama2.jpg"])
def test_eyes_looking_aside_are_noticed(name: str) -> None:
    report = preflight(load(name))
    assert "eyes_off_camera" in report.codes and report.ok


def test_irises_moved_to_the_eye_corners_read_as_looking_aside(selfie: Image.Image) -> None:
    face = find_one_face(selfie)
    assert "eyes_off_camera" not in preflight(selfie, face).codes
    aside = face.landmarks.copy()
    # Both irises two thirds of the way to the corner on the image's left.
    for (left_point, right_point, _, _), iris in ((LEFT_EYE, LEFT_IRIS), (RIGHT_EYE, RIGHT_IRIS)):
        corner = (
            aside[left_point]
            if aside[left_point, 0] < aside[right_point, 0]
            else aside[right_point]
        )
        aside[iris] = aside[iris] + (corner - aside[iris]) * 0.67
    report = preflight(selfie, Face(box=face.box, score=face.score, landmarks=aside))
    assert "eyes_off_camera" in report.codes


@pytest.mark.parametrize("cover", [with_microphone, with_phone], ids=["microphone", "phone"])
@pytest.mark.parametrize(
    "name", ["obama.jpg", "biden.jpg", "grace_hopper.jpg", "sneat_avatar-7.png"]
)
def test_something_in_front_of_the_chin_is_refused_by_the_studio_and_warned_of_by_others(
    cover: Callable[[str], Image.Image], name: str
) -> None:
    image = cover(name)
    generative = preflight(image, repairs_crop=True)
    studio = preflight(image, repairs_crop=False)
    [warning] = [f for f in generative.findings if f.code == "face_covered"]
    [error] = [f for f in studio.findings if f.code == "face_covered"]
    assert warning.severity == "warning" and generative.ok
    assert error.severity == "error" and "every headshot would show it" in error.sentence
    assert error.sentence == WITHOUT_CROP_REPAIR["face_covered"].sentence
    assert warning.value == error.value > error.limit


@pytest.mark.parametrize("name", ["obama.jpg", "sneat_avatar-7.png"])
def test_part_of_another_person_at_the_edge_is_noticed(name: str) -> None:
    report = preflight(with_neighbour(name, "shards_avatar-1.jpg"))
    assert "other_person" in report.codes and report.ok


def test_a_person_cut_from_a_group_with_the_neighbours_shoulders_is_told() -> None:
    report = preflight(crop("ons_people-mob.png", SINGLE_CROPS["ons_people-mob.png"][1], 400))
    assert "other_person" in report.codes and report.ok


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "grace_hopper.jpg"])
def test_a_shoulder_cut_at_the_side_is_told_for_the_studio_engine_only(name: str) -> None:
    image = shoulder_cut(name)
    studio = preflight(image, repairs_crop=False)
    assert studio.ok and studio.codes == ["cut_at_side"]
    assert "studio engine" in studio.warnings[0].sentence
    # A generative engine paints the rest of the shoulder in.
    assert preflight(image, repairs_crop=True).codes == []
    # With room beside the shoulders, the studio's frame fits. (Grace
    # Hopper's tall cap makes her closest frame wider than that crop.)
    if name != "grace_hopper.jpg":
        assert "cut_at_side" not in preflight(head_and_shoulders(name, 640)).codes


@pytest.mark.parametrize("name", ["obama.jpg", "biden.jpg", "grace_hopper.jpg"])
def test_the_studio_engine_shows_what_the_preflight_warned_of(name: str) -> None:
    """The preflight frames with the engine's own framing: where it warns, the
    engine's headshots fade the shoulder out at the side; where it does not, they
    keep the body to the frame's sides."""
    from headshots.config import Settings
    from headshots.engines.base import Rendered
    from headshots.engines.studio import StudioEngine
    from headshots.imaging.selfie import PreparedSelfie
    from headshots.styles import get_style

    engine = StudioEngine(Settings())
    roomy = head_and_shoulders(name, 640)
    cases = [(shoulder_cut(name), True), (roomy, "cut_at_side" in preflight(roomy).codes)]
    for image, warned in cases:
        selfie = PreparedSelfie(image=image, face=find_one_face(image))
        (outcome,) = engine.generate(selfie, get_style("corporate"), [3], (1024, 1280))
        assert isinstance(outcome, Rendered)
        fades = set(outcome.details["fades_into_backdrop"])
        assert bool(fades & {"left", "right"}) is warned, fades
