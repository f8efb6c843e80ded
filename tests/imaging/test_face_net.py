"""The numpy port of dlib's face ResNet gives dlib's own descriptors."""

from __future__ import annotations

from pathlib import Path

import dlib
import numpy as np
import pytest
from PIL import Image

from headshots.imaging.face_net import CHIP_SIZE, FaceNet, openblas_env
from headshots.imaging.identity import _model_folder, working_pixels

FIXTURES = Path(__file__).parents[1] / "fixtures"
MODEL = "dlib_face_recognition_resnet_model_v1.dat"


@pytest.fixture(scope="module")
def chips() -> list[tuple[np.ndarray, np.ndarray]]:
    """(aligned chip, dlib's own descriptor) for every face HOG finds in the fixtures."""
    models = _model_folder()
    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
    reference = dlib.face_recognition_model_v1(str(models / MODEL))
    found = []
    for path in sorted(FIXTURES.glob("*.jpg")):
        pixels = working_pixels(Image.open(path))
        for rect in detector(pixels, 1):
            shape = predictor(pixels, rect)
            chip = np.asarray(dlib.get_face_chip(pixels, shape, size=CHIP_SIZE, padding=0.25))
            found.append((chip, np.array(reference.compute_face_descriptor(pixels, shape))))
    assert len(found) >= 10  # the portraits and the five faces of the group photo
    return found


def test_descriptors_are_dlibs(chips: list[tuple[np.ndarray, np.ndarray]]) -> None:
    net = FaceNet.load(_model_folder() / MODEL)
    ours = net.descriptors([chip for chip, _ in chips])
    theirs = np.stack([descriptor for _, descriptor in chips])
    # float32 rounding; the threshold between people is 0.6.
    assert np.abs(ours - theirs).max() < 1e-5
    for (chip, _), batched in zip(chips, ours, strict=True):
        assert np.abs(net.descriptor(chip) - batched).max() < 1e-5
    distances = np.linalg.norm(ours[:, None] - ours[None], axis=2)
    expected = np.linalg.norm(theirs[:, None] - theirs[None], axis=2)
    assert np.abs(distances - expected).max() < 1e-5


def test_a_damaged_model_file_is_refused_with_a_reason(tmp_path: Path) -> None:
    damaged = tmp_path / MODEL
    damaged.write_bytes((_model_folder() / MODEL).read_bytes()[:5_000_000])
    with pytest.raises(ValueError, match="dlib network file"):
        FaceNet.load(damaged)


def test_a_chip_of_the_wrong_size_is_refused() -> None:
    net = FaceNet.load(_model_folder() / MODEL)
    with pytest.raises(ValueError, match="150, 150, 3"):
        net.descriptor(np.zeros((100, 100, 3), np.uint8))


def test_scoring_processes_get_one_thread_and_the_kernels_the_cpu_has(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512cd avx512bw avx512dq avx512vl\n")
    assert openblas_env(cpuinfo) == {"OPENBLAS_NUM_THREADS": "1", "OPENBLAS_CORETYPE": "SkylakeX"}
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 fma\n")
    assert openblas_env(cpuinfo) == {"OPENBLAS_NUM_THREADS": "1"}
    assert openblas_env(tmp_path / "missing") == {"OPENBLAS_NUM_THREADS": "1"}
    # What the operator set is theirs.
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    assert openblas_env(cpuinfo) == {}
