"""Face analysis on mediapipe's legacy solutions.

Four models, all shipped inside the mediapipe 0.10.21 wheel: the
full-range face detector (finds every face, also small ones in a group
photo), the short-range detector (faces close to the camera, which the
full-range one misses when the face fills the frame), the 478-point face
mesh (eyes, iris, jaw; used for framing and pose), and the selfie segmenter
(the person against the background).

The models are loaded once per process, on first use. A mediapipe graph is
not safe to call from two threads at once, and job workers are threads, so
each model is used under its own lock.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from headshots.errors import HeadshotsError

# mediapipe's C++ logging writes to stderr on every graph start.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

FloatArray = npt.NDArray[np.float32]

# A second face counts only when it is at least this share of the largest
# face's height: a face on a poster far behind the person is not a second
# sitter, a friend next to them is.
SECOND_FACE_SHARE = 0.4
DETECTION_CONFIDENCE = 0.5
# The short-range detector runs on the photo inside a grey border of this
# share of its long side on every side: a close-up whose face fills the
# frame and touches its edges then looks like the selfies the model was
# trained on, and a neighbour's face half cut by the edge is still seen.
# Measured on the selfie set of decision 0008 (bench/selfies.py): without the border 4 of
# 17 close-ups and 3 of 4 half-faces of neighbours were missed; with it none.
SHORT_RANGE_BORDER = 0.25
# Two detections are one face when their boxes overlap this much (IoU).
SAME_FACE_OVERLAP = 0.3
# Photos at least this much longer than wide (or wider than long) are also
# searched in square windows (see _windows).
WINDOWS_ASPECT = 1.3
GREY = (127, 127, 127)

# Face-mesh indices used across the project.
LEFT_EYE = (33, 133, 159, 145)  # the person's right eye, image left
RIGHT_EYE = (362, 263, 386, 374)
LEFT_IRIS = 468
RIGHT_IRIS = 473
NOSE_TIP = 1
CHIN = 152
FOREHEAD = 10
LEFT_CHEEK = 234
RIGHT_CHEEK = 454


class FaceError(HeadshotsError):
    status_code = 422


class NoFaceError(FaceError):
    code = "no_face"
    message = (
        "We could not find a face in this photo. Use a photo of you, facing the camera, "
        "with your whole face visible."
    )


class SeveralFacesError(FaceError):
    code = "several_faces"
    message = (
        "This photo shows more than one person. Use a photo with only you in it, "
        "or crop the others out."
    )


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels."""

    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height

    @property
    def center(self) -> tuple[float, float]:
        return (self.left + self.width / 2, self.top + self.height / 2)

    def as_list(self) -> list[int]:
        return [round(self.left), round(self.top), round(self.width), round(self.height)]


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float
    # Anticlockwise quarter turns that bring this face upright, read from
    # the line through its eyes (a phone photo that lost its orientation tag
    # shows the person lying on their side).
    quarter_turns: int = 0


@dataclass(frozen=True)
class Face:
    """The one face of a selfie: its box, detector score and 478 landmarks.

    ``landmarks`` is (478, 3): x and y in pixels of the analysed image, z in
    the same scale as x (negative is towards the camera).
    """

    box: Box
    score: float
    landmarks: FloatArray

    @property
    def left_eye(self) -> tuple[float, float]:
        x, y = self.landmarks[LEFT_IRIS, :2]
        return (float(x), float(y))

    @property
    def right_eye(self) -> tuple[float, float]:
        x, y = self.landmarks[RIGHT_IRIS, :2]
        return (float(x), float(y))

    @property
    def eye_center(self) -> tuple[float, float]:
        (lx, ly), (rx, ry) = self.left_eye, self.right_eye
        return ((lx + rx) / 2, (ly + ry) / 2)

    @property
    def eye_distance(self) -> float:
        (lx, ly), (rx, ry) = self.left_eye, self.right_eye
        return float(np.hypot(rx - lx, ry - ly))

    @property
    def roll_degrees(self) -> float:
        """Head tilt in the image plane; positive is clockwise."""
        (lx, ly), (rx, ry) = self.left_eye, self.right_eye
        return float(np.degrees(np.arctan2(ry - ly, rx - lx)))

    @property
    def mesh_box(self) -> Box:
        """The tight box around the mesh: forehead to chin, cheek to cheek."""
        xs, ys = self.landmarks[:, 0], self.landmarks[:, 1]
        x0, y0 = float(xs.min()), float(ys.min())
        return Box(x0, y0, float(xs.max()) - x0, float(ys.max()) - y0)


T = TypeVar("T")


class _Lazy:
    """One mediapipe model, built on first use and used under a lock."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._model: Any = None
        self._lock = threading.Lock()

    def run(self, image: npt.NDArray[np.uint8]) -> Any:
        with self._lock:
            if self._model is None:
                with _native_stderr_silenced():
                    self._model = self._build()
                    return self._model.process(image)
            return self._model.process(image)


@contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Hide the TFLite/absl start-up chatter that mediapipe's C++ code prints.

    It goes straight to file descriptor 2, around Python's logging, once per
    model per process; a person running the CLI should see our messages only.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _solutions() -> Any:
    import mediapipe as mp  # slow import (~1 s): only when a face is first needed

    return mp.solutions


_detector = _Lazy(
    lambda: _solutions().face_detection.FaceDetection(
        model_selection=1, min_detection_confidence=DETECTION_CONFIDENCE
    )
)
_short_range = _Lazy(
    lambda: _solutions().face_detection.FaceDetection(
        model_selection=0, min_detection_confidence=DETECTION_CONFIDENCE
    )
)
_mesh = _Lazy(
    lambda: _solutions().face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=1, refine_landmarks=True
    )
)
_segmenter = _Lazy(lambda: _solutions().selfie_segmentation.SelfieSegmentation(model_selection=0))


def as_array(image: Image.Image | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if isinstance(image, Image.Image):
        return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    return np.ascontiguousarray(image)


def detect_faces(image: Image.Image | npt.NDArray[np.uint8]) -> list[Detection]:
    """Every face either detector sees, largest first.

    The full-range model finds small and distant faces; the short-range one,
    run on the photo inside a grey border, finds faces that fill the frame
    or are cut by its edge. A wide or tall photo is also looked at in square
    windows, where the full-range model sees its faces larger (each model shrinks the
    whole photo to its small square input first). A face seen more than
    once counts once; no run can lower the count another run found.
    """
    pixels = as_array(image)
    height, width = pixels.shape[:2]
    found = _read(_detector.run(pixels), width, height, 0)
    border = round(SHORT_RANGE_BORDER * max(width, height))
    framed = np.asarray(
        cv2.copyMakeBorder(pixels, border, border, border, border, cv2.BORDER_CONSTANT, value=GREY),
        np.uint8,
    )
    for near in _read(_short_range.run(framed), width + 2 * border, height + 2 * border, border):
        # Where both see a face, the full-range box is kept (the limits on
        # face size were set on its boxes) with the short-range eye line,
        # which stays right on a face lying on its side.
        same = _match(found, near)
        if same is None:
            found.append(near)
        else:
            found[same] = replace(found[same], quarter_turns=near.quarter_turns)
    for x, y, window in _windows(pixels):
        # The full-range model only: the short-range one, made for faces
        # that fill its view, took a hand on a sleeve for a face in a window
        # of obama3.jpg (0.63).
        side = window.shape[0]
        for seen in _read(_detector.run(window), side, side, 0):
            box = replace(seen.box, left=seen.box.left + x, top=seen.box.top + y)
            if _match(found, replace(seen, box=box)) is None:
                found.append(replace(seen, box=box))
    return sorted(found, key=lambda d: d.box.width * d.box.height, reverse=True)


def _windows(pixels: npt.NDArray[np.uint8]) -> Iterator[tuple[int, int, npt.NDArray[np.uint8]]]:
    """Square windows as tall as the photo's short side, overlapping by half.

    Only for photos longer than WINDOWS_ASPECT to one side: a group in a
    panorama, shrunk whole into the detectors' 128-192 px input, leaves each
    face a few pixels wide (decision 0008: four hikers in a 1366x400 photo were
    seen as one face).
    """
    height, width = pixels.shape[:2]
    side = min(width, height)
    long = max(width, height)
    if side < 32 or long < WINDOWS_ASPECT * side:
        return
    count = math.ceil(2 * long / side) - 1
    for index in range(count):
        start = round(index * (long - side) / (count - 1))
        if width > height:
            yield start, 0, np.ascontiguousarray(pixels[:, start : start + side])
        else:
            yield 0, start, np.ascontiguousarray(pixels[start : start + side, :])


def _match(found: list[Detection], seen: Detection) -> int | None:
    """The index of the face in ``found`` that ``seen`` is, or None for a new face."""
    best, index = SAME_FACE_OVERLAP, None
    for i, known in enumerate(found):
        overlap = _overlap(known.box, seen.box)
        if overlap > best:
            best, index = overlap, i
    return index


def _read(result: Any, width: int, height: int, border: int) -> list[Detection]:
    """Detections in pixels of the photo (less the border it was framed in)."""
    found = []
    for detection in result.detections or []:
        rel = detection.location_data.relative_bounding_box
        box = Box(
            rel.xmin * width - border,
            rel.ymin * height - border,
            rel.width * width,
            rel.height * height,
        )
        # Keypoint 0 is the right eye (image left on an upright face), 1 the left.
        right_eye, left_eye = detection.location_data.relative_keypoints[:2]
        angle = math.degrees(
            math.atan2((left_eye.y - right_eye.y) * height, (left_eye.x - right_eye.x) * width)
        )
        turns = round(angle / 90) % 4
        found.append(Detection(box=box, score=float(detection.score[0]), quarter_turns=turns))
    return found


def _overlap(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a.right, b.right) - max(a.left, b.left)
    h = min(a.bottom, b.bottom) - max(a.top, b.top)
    if w <= 0 or h <= 0:
        return 0.0
    both = w * h
    return both / (a.width * a.height + b.width * b.height - both)


def sitters(detections: list[Detection]) -> list[Detection]:
    """The faces that count as people in the photo (see SECOND_FACE_SHARE)."""
    if not detections:
        return []
    largest = detections[0].box.height
    return [d for d in detections if d.box.height >= SECOND_FACE_SHARE * largest]


def find_one_face(image: Image.Image | npt.NDArray[np.uint8]) -> Face:
    """The single face of a selfie, with its mesh; a typed error otherwise."""
    pixels = as_array(image)
    return _one_face(pixels, sitters(detect_faces(pixels)))


def find_upright_face(image: Image.Image) -> tuple[Image.Image, Face]:
    """The photo turned so its person stands upright, and their one face.

    A phone photo that lost its orientation tag shows the person on their
    side; the detectors still find the face and read its eye line, and the
    photo is turned by the quarter turns that level it. Most photos are
    returned as they are.
    """
    people = sitters(detect_faces(image))
    if len(people) == 1 and people[0].quarter_turns:
        turn = {
            1: Image.Transpose.ROTATE_90,
            2: Image.Transpose.ROTATE_180,
            3: Image.Transpose.ROTATE_270,
        }[people[0].quarter_turns]
        image = image.transpose(turn)
        people = sitters(detect_faces(image))
    return image, _one_face(as_array(image), people)


def _one_face(pixels: npt.NDArray[np.uint8], people: list[Detection]) -> Face:
    if not people:
        raise NoFaceError()
    if len(people) > 1:
        raise SeveralFacesError()
    detection = people[0]
    landmarks = face_landmarks(pixels, detection.box)
    if landmarks is None:
        raise NoFaceError(
            "We found something like a face but could not make out its features. "
            "Use a clear, well-lit photo of your face, looking at the camera."
        )
    return Face(box=detection.box, score=detection.score, landmarks=landmarks)


def face_landmarks(pixels: npt.NDArray[np.uint8], box: Box) -> FloatArray | None:
    """The 478-point mesh of the face in ``box``, in image pixels.

    The mesh runs on a square crop around the detected face, so a small face
    in a large photo is seen as large as the model wants it. Where the square
    reaches past the photo it is filled with grey, so a face that fills the
    frame still sits in the middle of the model's view, and the points of a
    part cut off by the edge are placed past it (which the preflight reads).
    """
    height, width = pixels.shape[:2]
    cx, cy = box.center
    side = max(box.width, box.height) * 2.2
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    x1, y1 = int(cx + side / 2), int(cy + side / 2)
    crop = np.ascontiguousarray(pixels[max(0, y0) : min(height, y1), max(0, x0) : min(width, x1)])
    crop = np.asarray(
        cv2.copyMakeBorder(
            crop,
            max(0, -y0),
            max(0, y1 - height),
            max(0, -x0),
            max(0, x1 - width),
            cv2.BORDER_CONSTANT,
            value=GREY,
        ),
        np.uint8,
    )
    result = _mesh.run(crop)
    if not result.multi_face_landmarks:
        return None
    points = result.multi_face_landmarks[0].landmark
    crop_w, crop_h = x1 - x0, y1 - y0
    mesh = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)
    mesh[:, 0] = mesh[:, 0] * crop_w + x0
    mesh[:, 1] = mesh[:, 1] * crop_h + y0
    mesh[:, 2] = mesh[:, 2] * crop_w
    return mesh


def segment_person(image: Image.Image | npt.NDArray[np.uint8]) -> FloatArray:
    """Person probability per pixel (0..1), at the image's own size.

    The model works at 256 px; callers that need clean edges refine this at
    full size (see imaging.matting).
    """
    pixels = as_array(image)
    mask = _segmenter.run(pixels).segmentation_mask
    return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
