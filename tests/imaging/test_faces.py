"""Face analysis on real photos with mediapipe's shipped models."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshots.imaging import faces
from headshots.imaging.faces import NoFaceError, SeveralFacesError, find_one_face

FIXTURES = Path(__file__).parents[1] / "fixtures"


def load(name: str) -> Image.Image:
    return Image.open(FIXTURES / name).convert("RGB")


@pytest.mark.parametrize(
    "name",
    ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "grace_hopper.jpg", "astronaut.png"],
)
def test_one_face_with_its_mesh_is_found_in_each_portrait(name: str) -> None:
    image = load(name)
    face = find_one_face(image)
    assert face.landmarks.shape == (478, 3)
    # The eyes lie inside the detected box, the left one left of the right one.
    (lx, ly), (rx, ry) = face.left_eye, face.right_eye
    box = face.box
    assert box.left < lx < rx < box.right
    assert box.top < ly < box.bottom and box.top < ry < box.bottom
    assert 0.15 * box.width < face.eye_distance < 0.6 * box.width
    assert abs(face.roll_degrees) < 20


def test_a_group_photo_is_refused_with_a_sentence() -> None:
    with pytest.raises(SeveralFacesError, match="more than one person"):
        find_one_face(load("group_of_five.jpg"))
    assert len(faces.detect_faces(load("group_of_five.jpg"))) == 5


def test_a_photo_without_a_face_is_refused_with_a_sentence() -> None:
    with pytest.raises(NoFaceError, match="could not find a face"):
        find_one_face(load("no_face_street.jpg"))


def test_a_small_face_far_behind_the_sitter_does_not_count_as_a_second_person() -> None:
    sitter = faces.Detection(faces.Box(300, 100, 300, 300), 0.9)
    poster = faces.Detection(faces.Box(20, 20, 90, 90), 0.8)
    friend = faces.Detection(faces.Box(700, 120, 200, 200), 0.8)
    assert faces.sitters([sitter, poster]) == [sitter]
    assert faces.sitters([sitter, friend, poster]) == [sitter, friend]


def test_two_people_side_by_side_are_refused() -> None:
    left, right = load("obama.jpg"), load("grace_hopper.jpg").resize((910, 1066))
    both = Image.new("RGB", (1820, 1137), "white")
    both.paste(left, (0, 0))
    both.paste(right, (910, 40))
    with pytest.raises(SeveralFacesError):
        find_one_face(both)


def test_person_mask_covers_the_person_not_the_background() -> None:
    image = load("obama.jpg")
    mask = faces.segment_person(image)
    assert mask.shape == (image.height, image.width)
    face = find_one_face(image)
    cx, cy = (int(v) for v in face.box.center)
    assert mask[cy, cx] > 0.9
    assert mask[5, 5] < 0.1 and mask[5, -5] < 0.1


def test_models_load_once_and_are_safe_across_threads() -> None:
    images = [load(name) for name in ("obama.jpg", "biden.jpg", "grace_hopper.jpg")] * 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(find_one_face, images))
    first = faces._detector._model
    find_one_face(images[0])
    assert faces._detector._model is first
    boxes = [f.box.as_list() for f in found]
    assert boxes[0] == boxes[3] == boxes[6]
    assert np.allclose(found[1].landmarks, found[4].landmarks)
