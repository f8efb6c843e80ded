"""Identity scoring on real photos with dlib's shipped models."""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshots.config import Settings
from headshots.engines.base import Rendered
from headshots.imaging import identity
from headshots.imaging.faces import Box, NoFaceError, SeveralFacesError
from headshots.imaging.identity import FaceDescriptor, compare, describe, describe_all, score
from tests.support import FIXTURE_PEOPLE

FIXTURES = Path(__file__).parents[1] / "fixtures"
THRESHOLD = 0.6


def load(name: str) -> Image.Image:
    return Image.open(FIXTURES / name).convert("RGB")


@pytest.fixture(scope="module")
def faces() -> list[tuple[str, FaceDescriptor]]:
    found = [(person, describe(load(name))) for name, person in FIXTURE_PEOPLE.items()]
    group = describe_all(load("group_of_five.jpg"))
    assert len(group) == 5
    found += [(f"group-{i}", face) for i, face in enumerate(group)]
    return found


def test_every_same_person_pair_is_accepted(faces: list[tuple[str, FaceDescriptor]]) -> None:
    pairs = [(a, b) for (pa, a), (pb, b) in itertools.combinations(faces, 2) if pa == pb]
    assert len(pairs) == 6
    distances = [a.distance(b) for a, b in pairs]
    assert all(distance <= THRESHOLD for distance in distances), distances


def test_every_different_person_pair_is_rejected(faces: list[tuple[str, FaceDescriptor]]) -> None:
    pairs = [(a, b) for (pa, a), (pb, b) in itertools.combinations(faces, 2) if pa != pb]
    assert len(pairs) == 60
    distances = [a.distance(b) for a, b in pairs]
    assert all(distance > THRESHOLD for distance in distances), min(distances)


def test_compare_gives_the_distance_and_the_verdict() -> None:
    same = compare(load("obama.jpg"), load("obama2.jpg"), THRESHOLD)
    assert same.same_person and same.verdict == "same person"
    assert 0.1 < same.distance < THRESHOLD
    other = compare(load("obama.jpg"), load("biden.jpg"), THRESHOLD)
    assert not other.same_person and other.as_dict()["verdict"] == "different people"


def test_a_photo_without_one_face_raises_a_typed_error_with_a_sentence() -> None:
    with pytest.raises(NoFaceError, match="could not find a face"):
        describe(load("no_face_street.jpg"))
    with pytest.raises(SeveralFacesError, match="more than one person"):
        describe(load("group_of_five.jpg"))


def test_score_flags_problems_instead_of_raising() -> None:
    reference = describe(load("obama.jpg"))
    good = score(reference, load("obama3.jpg"), THRESHOLD)
    assert good.passed and good.flag is None and good.sentence is None and good.faces == 1
    stranger = score(reference, load("biden.jpg"), THRESHOLD)
    assert (stranger.passed, stranger.flag) == (False, "different_person")
    assert stranger.sentence == "This one may not look like you."
    empty = score(reference, load("no_face_street.jpg"), THRESHOLD)
    assert (empty.flag, empty.distance, empty.faces) == ("no_face", None, 0)
    crowd = score(reference, load("group_of_five.jpg"), THRESHOLD)
    assert (crowd.flag, crowd.faces, crowd.passed) == ("several_faces", 5, False)


def test_a_small_face_is_found_on_a_second_pass_and_a_large_photo_is_scaled_down() -> None:
    # The astronaut's face is about 100 px; at half size (52 px) mediapipe
    # still finds it, and HOG, where mediapipe sees nothing, only by upsampling.
    small = load("astronaut.png").resize((256, 256), Image.Resampling.LANCZOS)
    full = describe(load("astronaut.png"))
    assert describe(small).distance(full) < THRESHOLD
    (by_hog,) = identity._describe_by_hog(identity.working_pixels(small))
    assert by_hog.distance(full) < THRESHOLD
    big = load("obama3.jpg")  # 1434x2333
    face = describe(big)
    assert max(face.box.right, face.box.bottom) <= identity.WORK_SIZE


def test_a_face_mediapipe_found_is_described_in_hogs_square_without_hog(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The square made from mediapipe's box lies where HOG's does and gives its descriptor."""
    names = ("obama.jpg", "obama2.jpg", "biden.jpg", "grace_hopper.jpg", "astronaut.png")
    photos = [identity.working_pixels(load(name)) for name in names]
    by_hog = [identity._describe_by_hog(pixels) for pixels in photos]
    with identity._models.lock:
        loaded = identity._models.get()

    def no_hog(*args: object) -> None:
        raise AssertionError("HOG ran on a face mediapipe had found")

    monkeypatch.setattr(identity._models, "_loaded", dataclasses.replace(loaded, detector=no_hog))
    for name, pixels, (hog,) in zip(names, photos, by_hog, strict=True):
        face = describe(pixels)
        # 0.09 at most on these; a 5% larger HOG square alone moves them about 0.06.
        assert face.distance(hog) < 0.15, name
        assert _overlap(face.box, hog.box) > 0.7, (name, face.box, hog.box)


def test_faces_too_small_for_hog_still_count_as_people() -> None:
    # Five people at 280x200, faces about 20 px: HOG finds none of them.
    reference = describe(load("obama.jpg"))
    crowd = score(reference, load("ons_ons-award-winners.jpg"), THRESHOLD)
    assert (crowd.flag, crowd.faces, crowd.passed) == ("several_faces", 5, False)


def _overlap(a: Box, b: Box) -> float:
    width = min(a.right, b.right) - max(a.left, b.left)
    height = min(a.bottom, b.bottom) - max(a.top, b.top)
    both = max(0.0, width) * max(0.0, height)
    return both / (a.width * a.height + b.width * b.height - both)


def test_threads_share_the_models_safely() -> None:
    images = [load(name) for name in ("obama.jpg", "biden.jpg", "grace_hopper.jpg")] * 2
    with ThreadPoolExecutor(4) as pool:
        vectors = list(pool.map(lambda image: describe(image).vector, images))
    for first, again in zip(vectors[:3], vectors[3:], strict=True):
        np.testing.assert_allclose(first, again, atol=1e-6)


def test_studio_outputs_keep_the_person(settings: Settings) -> None:
    """Studio outputs against their selfie, median <= 0.15, none over the threshold."""
    from headshots.engines.studio import StudioEngine
    from headshots.imaging.intake import Photo
    from headshots.imaging.selfie import prepare_photo
    from headshots.styles import STYLES

    engine = StudioEngine(settings)
    distances = []
    for name in ("obama.jpg", "grace_hopper.jpg"):
        image = load(name)
        selfie = prepare_photo(Photo(image=image, source_format="JPEG", source_size=image.size))
        for style in STYLES[:3]:
            for outcome in engine.generate(selfie, style, [7, 8], (768, 960)):
                assert isinstance(outcome, Rendered), outcome
                found = score(selfie.descriptor, outcome.image, THRESHOLD)
                assert found.flag is None, (name, style.id, found)
                assert found.distance is not None
                distances.append(found.distance)
    assert statistics.median(distances) <= 0.15, distances


def test_scoring_processes_end_with_the_process_that_started_them(tmp_path: Path) -> None:
    # A parent that starts its pool and is then killed outright, as a server
    # can be: its scoring children must not live on (each holds ~200 MB).
    script = (
        "import multiprocessing, sys\n"
        "from headshots.imaging.scoring import ScorePool\n"
        "pool = ScorePool(2)\n"
        "pool.warm()\n"
        "print(' '.join(str(p.pid) for p in multiprocessing.active_children()), flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        assert parent.stdout is not None
        children = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(children) == 2 and all(_alive(pid) for pid in children)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in children)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child that exited but is not yet reaped by init counts as gone.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1][:1] != "Z"


def test_the_selfies_face_is_described_in_a_scoring_process_as_here() -> None:
    # The service finds the selfie's reference face in a scoring process
    # (its tuned BLAS); the outputs must be compared with the same numbers
    # this process would compute, and a photo with no face or several
    # refused the same way.
    from headshots.imaging.scoring import ScorePool

    pool = ScorePool(1)
    try:
        there = pool.describe(load("obama.jpg"))
        here = describe(load("obama.jpg"))
        assert there.distance(here) < 1e-4
        with pytest.raises(SeveralFacesError):
            pool.describe(load("group_of_five.jpg"))
        with pytest.raises(NoFaceError):
            pool.describe(Image.new("RGB", (400, 400), (120, 130, 140)))
    finally:
        pool.close()


def test_scoring_processes_yield_the_cores_to_the_server() -> None:
    # Where both want the cores (an order's outputs landing together), the
    # previews a person waits for come before the checks.
    import multiprocessing

    from headshots.imaging.scoring import CHILD_NICENESS, ScorePool

    others = set(multiprocessing.active_children())  # other tests' pools
    pool = ScorePool(2)
    try:
        pool.warm()
        children = set(multiprocessing.active_children()) - others
        assert len(children) == 2
        # Niceness stops at 19 (a test run itself started nice).
        expected = min(19, os.nice(0) + CHILD_NICENESS)
        for child in children:
            assert os.getpriority(os.PRIO_PROCESS, child.pid or 0) == expected
    finally:
        pool.close()


def test_the_selfies_face_is_still_found_when_a_scoring_process_dies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from headshots.imaging.scoring import ScorePool

    def broken(*_: object) -> Future[object]:
        dead: Future[object] = Future()
        dead.set_exception(BrokenProcessPool("a child was killed"))
        return dead

    pool = ScorePool(1)
    monkeypatch.setattr(pool, "_submit", broken)
    found = pool.describe(load("obama.jpg"))
    assert found.distance(describe(load("obama.jpg"))) < 1e-4
