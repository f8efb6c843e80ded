"""Identity scoring: does this image show the same person as the selfie?

dlib's 128-d face descriptor (the ResNet model from face-recognition-models,
CC0), computed one way for every image: a square around the face like the
one dlib's HOG frontal detector gives, the 5-point landmarks in it and the
descriptor of the aligned face chip (the network runs in numpy,
imaging.face_net: dlib's own build here has no BLAS and took four times as
long). The square comes from mediapipe's face box, which the "several
people" rule needs anyway, so every face mediapipe counts is described
(also small or bowed ones HOG would miss); only where mediapipe sees no
face does HOG search the whole image. Two photos of one person lie close
together (about 0.25-0.45 on the fixtures), two people far apart (0.68 and
more); dlib's customary threshold of 0.6 sits in that gap.

The models load once per process, on first use. Job workers are threads and
dlib's objects are not documented as thread-safe, so every call holds a lock.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from headshots.errors import ConfigurationError
from headshots.imaging.face_net import CHIP_SIZE, FaceNet
from headshots.imaging.faces import (
    SECOND_FACE_SHARE,
    Box,
    NoFaceError,
    SeveralFacesError,
    detect_faces,
    sitters,
)

# Images are scored at this long side: the descriptor works on a 150 px chip,
# and detection time grows with the pixel count.
WORK_SIZE = 1024
# HOG at upsample 0 finds faces down to about 80 px. Only an image this small
# gets the slower second pass at upsample 1, where a face may really be tiny.
SMALL_IMAGE = 640
# dlib's 5-point model was trained on its HOG detector's squares. For a face
# mediapipe found, the square is taken from its box instead of running HOG
# on a crop around it (about 20 ms an output): on the 46 distinct faces of
# tests/fixtures and tests/fixtures/faces-more that both detectors found,
# HOG's side was 0.95 of the box's width (median; spread 0.08, HOG's own
# sizes step by a fifth) and its centre 0.013 widths right of the box's,
# level with it (medians, 2026-12). Against HOG's squares the fixtures'
# descriptors moved by 0.06 (median; at most 0.16): about what HOG's own
# square made 5% larger does to them.
HOG_SIDE = 0.95
HOG_SHIFT = 0.013
# dlib's customary threshold; on the fixtures same-person pairs reach 0.43
# at most and different people start at 0.68 (see bench/identity.py).
DEFAULT_THRESHOLD = 0.6

LOOKS_DIFFERENT = "This one may not look like you."

Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class FaceDescriptor:
    """One face's 128-d descriptor and where it was found (in WORK_SIZE pixels)."""

    vector: npt.NDArray[np.float64]
    box: Box

    def distance(self, other: FaceDescriptor) -> float:
        return float(np.linalg.norm(self.vector - other.vector))


@dataclass(frozen=True)
class IdentityScore:
    """How one output compares with the selfie.

    ``distance`` is to the closest face (None when there is no face);
    ``flag`` is a stable code when the output should be looked at again:
    "no_face", "several_faces" or "different_person".
    """

    distance: float | None
    faces: int
    passed: bool
    flag: str | None
    sentence: str | None
    threshold: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "distance": None if self.distance is None else round(self.distance, 4),
            "faces": self.faces,
            "passed": self.passed,
            "flag": self.flag,
            "message": self.sentence,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class Comparison:
    distance: float
    threshold: float

    @property
    def same_person(self) -> bool:
        return self.distance <= self.threshold

    @property
    def verdict(self) -> str:
        return "same person" if self.same_person else "different people"

    def as_dict(self) -> dict[str, Any]:
        return {
            "distance": round(self.distance, 4),
            "threshold": self.threshold,
            "same_person": self.same_person,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class _Loaded:
    detector: Any
    predictor: Any
    net: FaceNet
    face_chip: Any  # dlib.get_face_chip
    rectangle: Any  # dlib.rectangle

    def descriptor(self, pixels: Pixels, rect: Any) -> npt.NDArray[np.float64]:
        """The descriptor of the face in ``rect``.

        The chip is the one dlib's compute_face_descriptor aligns and cuts
        itself (150 px, padding 0.25), so the numbers are dlib's.
        """
        shape = self.predictor(pixels, rect)
        chip = self.face_chip(pixels, shape, size=CHIP_SIZE, padding=0.25)
        return self.net.descriptor(np.asarray(chip, dtype=np.uint8))


class _Models:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._loaded: _Loaded | None = None

    def get(self) -> _Loaded:
        """The detector, shape predictor and descriptor net; call with the lock held."""
        if self._loaded is None:
            import dlib

            models = _model_folder()
            self._loaded = _Loaded(
                detector=dlib.get_frontal_face_detector(),
                predictor=dlib.shape_predictor(
                    str(models / "shape_predictor_5_face_landmarks.dat")
                ),
                net=FaceNet.load(models / "dlib_face_recognition_resnet_model_v1.dat"),
                face_chip=dlib.get_face_chip,
                rectangle=dlib.rectangle,
            )
        return self._loaded


_models = _Models()


def _model_folder() -> Path:
    """The model files of face-recognition-models, found without importing it.

    Its ``__init__`` imports ``pkg_resources``, which new setuptools releases
    no longer ship; the files themselves are all we need.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(
            "The face-recognition-models package is missing: run scripts/setup again."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def working_pixels(image: Image.Image | Pixels) -> Pixels:
    """RGB pixels with the long side at most WORK_SIZE."""
    pixels: Pixels
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2:] == (3,):
        pixels = image
    else:
        picture = image if isinstance(image, Image.Image) else Image.fromarray(image)
        # np.asarray copies out of Pillow already: no converted copy first.
        pixels = np.asarray(picture if picture.mode == "RGB" else picture.convert("RGB"))
    height, width = pixels.shape[:2]
    if max(height, width) > WORK_SIZE:
        ratio = WORK_SIZE / max(height, width)
        size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
        # OpenCV, outside the GIL: this runs in the busy process for every
        # output. Area averaging for a large reduction (a phone's selfie);
        # bilinear, eight times faster, is as good for an engine's output
        # a little over the size.
        method = cv2.INTER_AREA if ratio < 0.5 else cv2.INTER_LINEAR
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=method), np.uint8)
    return np.ascontiguousarray(pixels)


def describe_all(image: Image.Image | Pixels) -> list[FaceDescriptor]:
    """A descriptor for every face that counts as a person, largest first.

    A face much smaller than the largest (a poster, a passer-by far behind)
    does not count, by the same rule as the face detector's.
    """
    pixels = working_pixels(image)
    people = sitters(detect_faces(pixels))
    if people:
        return [_describe_near(pixels, person.box) for person in people]
    return _describe_by_hog(pixels)


def _describe_near(pixels: Pixels, box: Box) -> FaceDescriptor:
    """Landmarks and descriptor of a face mediapipe found, in HOG's square for it.

    No detector runs again: the square is mediapipe's box scaled and moved
    as HOG's squares lie on the fixtures (HOG_SIDE, HOG_SHIFT). The
    landmarks and the chip are read from the working pixels themselves:
    dlib shrinks a large face to its 150 px chip through an image pyramid,
    so no scaled crop is needed first.
    """
    cx, cy = box.center
    side = max(1, round(box.width * HOG_SIDE))
    left = round(cx + box.width * HOG_SHIFT - side / 2)
    top = round(cy - side / 2)
    with _models.lock:
        models = _models.get()
        rect = models.rectangle(left, top, left + side - 1, top + side - 1)
        vector = models.descriptor(pixels, rect)
    return FaceDescriptor(vector=vector, box=Box(left, top, side, side))


def _describe_by_hog(pixels: Pixels) -> list[FaceDescriptor]:
    """The whole image through HOG: for faces mediapipe did not see."""
    with _models.lock:
        models = _models.get()
        rects = list(models.detector(pixels, 0))
        if not rects and max(pixels.shape[:2]) <= SMALL_IMAGE:
            rects = list(models.detector(pixels, 1))
        if not rects:
            return []
        rects.sort(key=lambda rect: rect.height(), reverse=True)
        largest = rects[0].height()
        people = [rect for rect in rects if rect.height() >= SECOND_FACE_SHARE * largest]
        found = []
        for rect in people:
            vector = models.descriptor(pixels, rect)
            box = Box(rect.left(), rect.top(), rect.width(), rect.height())
            found.append(FaceDescriptor(vector=vector, box=box))
    return found


def describe(image: Image.Image | Pixels) -> FaceDescriptor:
    """The descriptor of the one face in ``image``; a typed error otherwise."""
    return only_face(describe_all(image))


def only_face(found: list[FaceDescriptor]) -> FaceDescriptor:
    """The one face of an image's descriptors; a typed error for none or several."""
    if not found:
        raise NoFaceError()
    if len(found) > 1:
        raise SeveralFacesError()
    return found[0]


def score(
    reference: FaceDescriptor,
    image: Image.Image | Pixels,
    threshold: float = DEFAULT_THRESHOLD,
) -> IdentityScore:
    """Score an output against the selfie's descriptor; problems are flags, never errors."""
    found = describe_all(image)
    if not found:
        return IdentityScore(None, 0, False, "no_face", LOOKS_DIFFERENT, threshold)
    distance = min(reference.distance(face) for face in found)
    if len(found) > 1:
        return IdentityScore(
            distance, len(found), False, "several_faces", LOOKS_DIFFERENT, threshold
        )
    if distance > threshold:
        return IdentityScore(distance, 1, False, "different_person", LOOKS_DIFFERENT, threshold)
    return IdentityScore(distance, 1, True, None, None, threshold)


def compare(
    first: Image.Image | Pixels,
    second: Image.Image | Pixels,
    threshold: float = DEFAULT_THRESHOLD,
) -> Comparison:
    """Distance and verdict for two photos of one face each (typed errors otherwise)."""
    return Comparison(describe(first).distance(describe(second)), threshold)
