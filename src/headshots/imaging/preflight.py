"""Selfie preflight: measured checks that tell a person how to take a better photo.

Runs at upload (and in ``headshots check``) before anything is paid. Each
finding carries a stable code, the measured value, the limit it crossed and
one sentence the person can act on. Errors mean the photo cannot work (no
face, several, cut off, too small): the upload is refused when the report is
not ``ok``. Warnings are shown and the person decides.

The limits were set on the fixture photos and on synthetic degradations of a
good selfie (blur, darkening, one-sided shading, rotation, crops, flat-colour
"drawings"); the values measured are noted beside each limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from headshots.imaging.faces import (
    CHIN,
    FOREHEAD,
    LEFT_CHEEK,
    LEFT_EYE,
    LEFT_IRIS,
    NOSE_TIP,
    RIGHT_CHEEK,
    RIGHT_EYE,
    RIGHT_IRIS,
    Box,
    Face,
    FaceError,
    NoFaceError,
    as_array,
    find_upright_face,
    segment_person,
)
from headshots.imaging.framing import HEAD_MAX, frame, subject_of
from headshots.imaging.medium import measure as measure_medium

Severity = Literal["error", "warning"]
Pixels = npt.NDArray[np.uint8]

# --- limits -----------------------------------------------------------------
# Two kinds of cut, told apart because engines differ in what they can mend.
# Part of the face itself (an eye, the nose, the mouth, the chin) outside the
# frame: no engine may invent it, so the photo is refused. The mesh places
# the points of a missing part past the edge; a point counts as cut when it
# lies more than this share of the face's height outside.
FEATURE_OUT_SHARE = 0.01
# The head or hair cut by the edge (a close-up, a crop of a profile picture):
# the head is the mesh box grown upwards by HEAD_ABOVE_HAIRLINE of the face's
# height (the mesh ends at the hairline). A generative engine extends it; the
# studio engine cannot, and refuses it (decision 0008). The six fixture portraits have 0.42
# to 1.0 of the face's height above the hairline; close-ups cut 4% of the
# face into the hair reach 0.1-0.2 past the frame.
HEAD_ABOVE_HAIRLINE = 0.15
CUT_OFF_SHARE = 0.03
# Eye corners and irises, nose tip, mouth corners and lips, chin.
FEATURE_POINTS = [
    *LEFT_EYE[:2],
    *RIGHT_EYE[:2],
    LEFT_IRIS,
    RIGHT_IRIS,
    NOSE_TIP,
    61,
    291,
    13,
    14,
    CHIN,
]
# Face box height below which no engine can work: the mesh and the identity
# descriptor need about this many pixels, and a face under 6% of the photo's
# height is a person in the distance, not a selfie.
FACE_MIN_PIXELS = 64
FACE_MIN_SHARE = 0.06
# Face box height below which an engine must invent detail when it enlarges
# the face to headshot size (about 450 px in a 1024x1280 output). The
# 512 px astronaut photo has a 104 px face.
FACE_DETAIL_PIXELS = 200
# Sharpness: Laplacian spread over intensity spread on the face scaled to
# FACE_SCALE px wide, so it is independent of face size and exposure. Clean
# fixtures 0.30-0.76; Gaussian blur of 2 px on a 1024 px selfie gives 0.15.
FACE_SCALE = 128
SHARPNESS_MIN = 0.2
# Face luminance (0-255). The 90th percentile catches underexposure without
# penalising dark skin, whose highlights stay bright in good light (fixtures
# 132-195; the good selfie darkened to 45% gives 84).
DARK_P90_MAX = 80.0
# Median face luminance above which skin loses its modelling (fixtures up to 176).
BRIGHT_MEDIAN_MIN = 215.0
# Share of face pixels blown to (near) white, in percent.
CLIPPED_LEVEL = 250
CLIPPED_PERCENT_MAX = 5.0
# Difference between the two halves of the face, in stops (fixtures 0.03-0.32;
# a window light from one side is about one stop).
UNEVEN_STOPS_MAX = 0.6
# Head pose, degrees. Fixtures: yaw up to 26 (obama2.jpg, a three-quarter
# view), roll up to 12, pitch up to 14.
YAW_MAX = 30.0
ROLL_MAX = 18.0
PITCH_MAX = 25.0
# Eye aspect ratio (lid gap over eye width), mean of both eyes; open eyes on
# the fixtures measure 0.20-0.37.
EYES_OPEN_MIN = 0.12
# Mouth open as in speech: the gap between the inner lips over the face's
# height (forehead to chin). Closed and smiling with the teeth together on
# the 36 portraits of the fixtures (faces/ and faces-more/): 0.00-0.094;
# speaking (obama2.jpg) 0.121, laughing with the mouth open 0.138-0.197.
MOUTH_OPEN_MAX = 0.11
# Eyes not on the camera: where the irises sit between the eye corners,
# 0 in the middle, +-0.5 at a corner (mean of both eyes, signed the same
# way). Eyes turned the way the head is turned (or in a head facing the
# camera, within GAZE_FRONTAL_YAW degrees) look further away from the lens:
# limit GAZE_OFF_MAX. Eyes turned against the head's turn come back
# towards the lens (a look over the shoulder into the camera): the larger
# GAZE_BACK_MAX. Measured on the 20 portraits of tests/fixtures, whole and
# as head-and-shoulders crops: eyes on the camera up to 0.088 in a frontal
# head (sunglasses, voltreact_profile-picture-1.jpg) and 0.094 turned with
# the head (adminkit_avatar-2.jpg), 0.10-0.12 turned against it
# (adminkit_avatar-3.jpg, over the shoulder); looking aside 0.124-0.134
# (obama2.jpg, with the head), 0.133-0.149 (blackdash_james.jpg), 0.163
# against the head (nikola_tesla4_lg.jpg). A head turned away together with
# eyes that follow it only a little (adminkit_avatar.jpg: 0.057) is missed.
GAZE_OFF_MAX = 0.11
GAZE_BACK_MAX = 0.15
GAZE_FRONTAL_YAW = 10.0
# Something in front of the mouth or chin: how far the colour of the chin
# below the lips lies from the cheeks' (Lab a/b distance of the medians),
# counted only when the chin is also darker than the cheeks by more than
# COVERED_DARKER (a lit chin in hard sun measures 18.6 and is brighter).
# Ordinary colour portraits 0.0-14.4 (beards included: 2.8-8.5); a dark
# microphone or a phone pasted over the chin of nine of them 17.9-43.4,
# except on a dark beard (10.2-10.3: missed). Grey photos are not judged.
COVERED_MIN = 15.0
COVERED_DARKER = 40.0
GREY_CHROMA = 4.0
# Part of another person at the frame's edge: in the rows of the face, the
# share of them that is person (segmenter probability over
# OTHER_PERSON_PROBABILITY), more than OTHER_PERSON_GAP face widths beside
# the face, in a patch reaching the left or right edge. Ordinary portraits
# (faces/, faces-more/, whole and as head-and-shoulders crops): at most
# 0.036 (a thumb raised beside the face, shards_avatar-2.jpg; a blurred
# lamp, 0.028); a neighbour's shoulders on both sides of a person cut from
# ons_people-mob.png 0.18; the side of a neighbour's head cut in at the
# edge of ten portraits 0-0.064, caught on three (see decision 0008: a
# neighbour touching the sitter's own outline is one patch with them).
OTHER_PERSON_PROBABILITY = 0.9
OTHER_PERSON_GAP = 0.6
OTHER_PERSON_MIN = 0.045
# The studio engine's closest headshot (imaging.framing at HEAD_MAX, the
# 4:5 output). Where even that frame leaves the photo at a side and the
# person reaches that side, the studio engine's headshots show the shoulder
# fading out at the side: not well framed for it. A generative engine
# paints the rest in.
STUDIO_SIZE = (1024, 1280)
# Share of the frame's rows beside the photo that may show person at the
# photo's edge before it counts as cut (a strand of hair, a soft mask edge).
CUT_AT_SIDE_MIN = 0.1
# Paintings, drawings, prints, screens and masks: imaging.medium's statistics, as a score
# that passes 1 past the nearest of its limits.
NOT_A_PHOTO_SCORE = 1.0


@dataclass(frozen=True)
class Check:
    code: str
    severity: Severity
    unit: str
    sentence: str


CHECKS: dict[str, Check] = {
    check.code: check
    for check in (
        Check(
            "no_face",
            "error",
            "faces",
            "We could not find a face: take a photo of just you, facing the camera, "
            "with your whole face in the frame.",
        ),
        Check(
            "several_faces",
            "error",
            "faces",
            "More than one person is in the photo: take one of just you, or crop the others out.",
        ),
        Check(
            "face_cut_off",
            "error",
            "share of face",
            "Part of your face (an eye, your mouth or your chin) is outside the photo: use a "
            "photo with your whole face in it, or crop with more room around it.",
        ),
        Check(
            "tight_crop",
            "warning",
            "share of head",
            "The photo is cropped tightly around your face: the engine will extend your hair "
            "and shoulders; for the most faithful result, use a photo with room above your head.",
        ),
        Check(
            "face_too_small",
            "error",
            "px",
            "Your face is too small in this photo to work with: move closer, or crop the "
            "photo to your head and shoulders.",
        ),
        Check(
            "low_resolution",
            "warning",
            "px",
            "Your face has few pixels, so detail will be invented when it is enlarged: "
            "use the main camera and let your head and shoulders fill the frame.",
        ),
        Check(
            "blurry",
            "warning",
            "sharpness",
            "Your face is blurry: hold the camera steady, tap your face to focus and try again.",
        ),
        Check(
            "too_dark",
            "warning",
            "luminance",
            "Your face is too dark: face a window or a lamp and try again.",
        ),
        Check(
            "too_bright",
            "warning",
            "luminance",
            "Your face is overexposed: step out of direct sun or away from the lamp and try again.",
        ),
        Check(
            "clipped",
            "warning",
            "%",
            "Parts of your face are blown out to white: use softer light, such as a window "
            "without direct sun.",
        ),
        Check(
            "uneven_light",
            "warning",
            "stops",
            "Light falls from one side: face a window and try again.",
        ),
        Check(
            "head_turned",
            "warning",
            "degrees",
            "Your head is turned away from the camera: look straight into the lens.",
        ),
        Check(
            "head_tilted",
            "warning",
            "degrees",
            "Your head is tilted to one side: hold it upright and keep the camera level.",
        ),
        Check(
            "head_pitched",
            "warning",
            "degrees",
            "Your chin is raised or lowered: hold the camera at eye level and look straight ahead.",
        ),
        Check(
            "eyes_closed",
            "warning",
            "eye openness",
            "Your eyes look closed: take another photo with your eyes open.",
        ),
        Check(
            "mouth_open",
            "warning",
            "share of face",
            "Your mouth is open, as if you were speaking: close your lips, or smile with them "
            "together.",
        ),
        Check(
            "eyes_off_camera",
            "warning",
            "iris offset",
            "Your eyes are looking away from the camera: look straight into the lens.",
        ),
        Check(
            "face_covered",
            "warning",
            "colour distance",
            "Something covers your mouth or chin (a hand, a microphone, a phone): take a photo "
            "with nothing in front of your face.",
        ),
        Check(
            "other_person",
            "warning",
            "share of photo",
            "Part of another person is at the edge of the photo: crop them out, or take one of "
            "just you.",
        ),
        Check(
            "cut_at_side",
            "warning",
            "share of frame",
            "Your shoulders reach the side of the photo, and the studio engine keeps your real "
            "photo, so its headshots would show them cut off: use a photo with room beside your "
            "shoulders.",
        ),
        Check(
            "not_a_photo",
            "warning",
            "score",
            "This looks like a painting, a drawing, a print, a photo of a screen or a face "
            "behind a mask or paint: use a real photo of your bare face.",
        ),
    )
}


# The findings whose meaning depends on the engine, as an engine that cannot
# extend a cropped head (``repairs_crop = False``: studio) gives them.
WITHOUT_CROP_REPAIR: dict[str, Check] = {
    # Refused rather than accepted: on every tight crop measured, the studio
    # engine's headshot showed the head cut flat against the backdrop
    # (bench/studio_crops.py, decision 0008).
    "tight_crop": Check(
        "tight_crop",
        "error",
        "share of head",
        "The photo cuts off the top of your head, and the studio engine cannot add what is "
        "not in the photo: use one with room above your head and your shoulders in it.",
    ),
    # The engine that cannot extend a crop is the one that keeps the
    # photo's own pixels: whatever covers the mouth or chin is in every one
    # of its headshots (an outside tester's 24 headshots all showed the
    # microphone held in front of the chin), so it is refused, not warned.
    "face_covered": Check(
        "face_covered",
        "error",
        "colour distance",
        "Something covers your mouth or chin (a hand, a microphone, a phone), and the studio "
        "engine keeps your real photo, so every headshot would show it: take a photo with "
        "nothing in front of your face.",
    ),
    # The engine that keeps the photo's own pixels enlarges them: a face
    # under FACE_DETAIL_PIXELS keeps 60-94% of its detail in a 1024x1280
    # headshot, one of 100 px 40-60% (bench/README.md, decision 0013), and no
    # upscaler ships its weights in a package we could install.
    "low_resolution": Check(
        "low_resolution",
        "warning",
        "px",
        "Your photo is small: your headshots will be soft. For sharp ones, use the main camera "
        "and let your head and shoulders fill the frame.",
    ),
}


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    value: float
    limit: float
    unit: str
    sentence: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "message": self.sentence,
        }


@dataclass(frozen=True)
class PreflightReport:
    findings: tuple[Finding, ...]
    size: tuple[int, int]
    face_box: Box | None = None

    @property
    def ok(self) -> bool:
        """True when nothing refuses the upload (warnings may remain)."""
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.severity == "warning"]

    @property
    def codes(self) -> list[str]:
        return [finding.code for finding in self.findings]

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": list(self.size),
            "face_box": self.face_box.as_list() if self.face_box else None,
            "findings": [finding.as_dict() for finding in self.findings],
        }


def finding(code: str, value: float, limit: float) -> Finding:
    check = CHECKS[code]
    return Finding(
        code=code,
        severity=check.severity,
        value=round(float(value), 3),
        limit=float(limit),
        unit=check.unit,
        sentence=check.sentence,
    )


def preflight(
    image: Image.Image | Pixels, face: Face | None = None, *, repairs_crop: bool = False
) -> PreflightReport:
    """Check a selfie; pass ``face`` when it is already known (a PreparedSelfie's).

    ``repairs_crop`` is the capability of the engine that will make the
    headshots (``Engine.repairs_crop``): a tight crop is a warning for an
    engine that extends a cut head, a refusal for one that cannot.
    Without ``face``, a photo lying on its side is checked turned upright,
    as the service would use it.
    """
    if face is None:
        photo = image if isinstance(image, Image.Image) else Image.fromarray(as_array(image))
        width, height = photo.size
        try:
            photo, face = find_upright_face(photo)
        except FaceError as error:
            code = "no_face" if isinstance(error, NoFaceError) else "several_faces"
            refused = finding(code, 0 if code == "no_face" else 2, 1)
            # A drawing's face often escapes the detectors: say what it is.
            return PreflightReport((refused, *_medium(as_array(photo))), (width, height))
        image = photo
    pixels = as_array(image)
    height, width = pixels.shape[:2]
    found = [
        *_framing(face, width, height, repairs_crop),
        *_light_and_focus(pixels, face),
        *_pose(face),
        *_mouth_and_eyes(face),
        *_covered(pixels, face, repairs_crop),
    ]
    people = segment_person(pixels)
    found += _other_person(people, face)
    cut = {"face_cut_off", "tight_crop"} & {finding.code for finding in found}
    if not repairs_crop and not cut:  # a cut head already says it all
        found += _cut_at_side(people, face)
    return PreflightReport(tuple(found), (width, height), face.box)


def _framing(face: Face, width: int, height: int, repairs_crop: bool) -> list[Finding]:
    found = []
    mesh = face.mesh_box
    # How far the eyes, nose, mouth and chin lie past the frame, as a share
    # of the face's height (0 when they are all inside).
    points = face.landmarks[FEATURE_POINTS, :2]
    past = np.maximum.reduce(
        [-points[:, 0], points[:, 0] - width, -points[:, 1], points[:, 1] - height]
    )
    missing = float(past.max()) / max(mesh.height, 1.0)
    if missing > FEATURE_OUT_SHARE:
        found.append(finding("face_cut_off", missing, FEATURE_OUT_SHARE))
    else:
        overshoot = _head_overshoot(face, width, height)
        if overshoot > CUT_OFF_SHARE:
            found.append(_for_engine("tight_crop", overshoot, CUT_OFF_SHARE, repairs_crop))
    face_height = face.box.height
    smallest = max(FACE_MIN_PIXELS, FACE_MIN_SHARE * height)
    if face_height < smallest:
        found.append(finding("face_too_small", face_height, round(smallest)))
    elif face_height < FACE_DETAIL_PIXELS:
        found.append(_for_engine("low_resolution", face_height, FACE_DETAIL_PIXELS, repairs_crop))
    return found


def _for_engine(code: str, value: float, limit: float, repairs_crop: bool) -> Finding:
    """A finding as the engine in use gives it (see WITHOUT_CROP_REPAIR)."""
    if repairs_crop:
        return finding(code, value, limit)
    check = WITHOUT_CROP_REPAIR[code]
    return Finding(
        code=check.code,
        severity=check.severity,
        value=round(float(value), 3),
        limit=float(limit),
        unit=check.unit,
        sentence=check.sentence,
    )


def head_cut_off(face: Face, width: int, height: int) -> bool:
    """Whether the frame cuts the head (hair, forehead) off: what a tight crop is."""
    return _head_overshoot(face, width, height) > CUT_OFF_SHARE


def _head_overshoot(face: Face, width: int, height: int) -> float:
    mesh = face.mesh_box
    above = HEAD_ABOVE_HAIRLINE * mesh.height
    head = Box(mesh.left, mesh.top - above, mesh.width, mesh.height + above)
    return _overshoot(head, width, height)


def _overshoot(box: Box, width: int, height: int) -> float:
    """How far the box reaches past the frame, as a share of its own size."""
    past_x = max(0.0, -box.left, box.right - width) / max(box.width, 1.0)
    past_y = max(0.0, -box.top, box.bottom - height) / max(box.height, 1.0)
    return max(past_x, past_y)


def _light_and_focus(pixels: Pixels, face: Face) -> list[Finding]:
    height, width = pixels.shape[:2]
    box = face.mesh_box
    x0, y0 = max(0, int(box.left)), max(0, int(box.top))
    x1, y1 = min(width, math.ceil(box.right)), min(height, math.ceil(box.bottom))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return []
    gray: Pixels = np.asarray(
        cv2.cvtColor(np.ascontiguousarray(pixels[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY), np.uint8
    )
    # The face itself: the hull of the mesh, without hair and background.
    mask = np.zeros(gray.shape, np.uint8)
    hull = cv2.convexHull((face.landmarks[:, :2] - (x0, y0)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, (1,))
    inside = mask > 0
    if inside.sum() < 64:
        return []
    luma = gray[inside]
    found = []

    p90 = float(np.percentile(luma, 90))
    median = float(np.median(luma))
    if p90 < DARK_P90_MAX:
        found.append(finding("too_dark", p90, DARK_P90_MAX))
    elif median > BRIGHT_MEDIAN_MIN:
        found.append(finding("too_bright", median, BRIGHT_MEDIAN_MIN))
    clipped = 100.0 * float(np.mean(luma >= CLIPPED_LEVEL))
    if clipped > CLIPPED_PERCENT_MAX:
        found.append(finding("clipped", clipped, CLIPPED_PERCENT_MAX))

    # Split at the nose, so a turned head still compares cheek with cheek.
    split = round(float(face.landmarks[NOSE_TIP, 0])) - x0
    columns = np.arange(gray.shape[1])[None, :]
    left, right = gray[inside & (columns < split)], gray[inside & (columns >= split)]
    if left.size >= 32 and right.size >= 32:
        stops = abs(math.log2((float(np.median(left)) + 1) / (float(np.median(right)) + 1)))
        if stops > UNEVEN_STOPS_MAX:
            found.append(finding("uneven_light", stops, UNEVEN_STOPS_MAX))

    sharpness = _sharpness(gray, mask)
    if sharpness < SHARPNESS_MIN:
        found.append(finding("blurry", sharpness, SHARPNESS_MIN))

    found += _medium(np.ascontiguousarray(pixels[y0:y1, x0:x1]), face=True)
    return found


def _sharpness(gray: Pixels, mask: Pixels) -> float:
    scale = FACE_SCALE / gray.shape[1]
    size = (FACE_SCALE, max(8, round(gray.shape[0] * scale)))
    small = cv2.resize(gray, size, interpolation=cv2.INTER_AREA).astype(np.float32)
    # Erode so the hull's own edge against the background is not counted.
    inner = cv2.erode(cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), np.ones((5, 5)))
    inside = inner > 0
    if inside.sum() < 64:
        return 1.0
    spread = float(small[inside].std())
    if spread < 1e-3:
        return 0.0
    return float(cv2.Laplacian(small, cv2.CV_32F)[inside].std()) / spread


def _medium(pixels: Pixels, *, face: bool = False) -> list[Finding]:
    score = measure_medium(pixels, face=face).score
    if score > NOT_A_PHOTO_SCORE:
        return [finding("not_a_photo", score, NOT_A_PHOTO_SCORE)]
    return []


def _pose(face: Face) -> list[Finding]:
    points = face.landmarks
    found = []
    yaw = _yaw(points)
    if abs(yaw) > YAW_MAX:
        found.append(finding("head_turned", abs(yaw), YAW_MAX))
    roll = face.roll_degrees
    if abs(roll) > ROLL_MAX:
        found.append(finding("head_tilted", abs(roll), ROLL_MAX))
    # Pitch from the forehead-chin line's depth: upright, it lies nearly in
    # the image plane; a raised or lowered chin tips it towards the camera.
    forehead, chin = points[FOREHEAD], points[CHIN]
    pitch = math.degrees(
        math.atan2(float(chin[2] - forehead[2]), float(np.hypot(*(chin[:2] - forehead[:2]))))
    )
    if abs(pitch) > PITCH_MAX:
        found.append(finding("head_pitched", abs(pitch), PITCH_MAX))
    openness = (_eye_openness(points, LEFT_EYE) + _eye_openness(points, RIGHT_EYE)) / 2
    if openness < EYES_OPEN_MIN:
        found.append(finding("eyes_closed", openness, EYES_OPEN_MIN))
    return found


def _yaw(points: npt.NDArray[np.float32]) -> float:
    """Degrees the head is turned, positive towards the image's right.

    From where the nose tip sits between the cheeks: half-way when facing
    the camera, towards one cheek as the head turns.
    """
    left_x, right_x = float(points[LEFT_CHEEK, 0]), float(points[RIGHT_CHEEK, 0])
    if abs(right_x - left_x) <= 1:
        return 0.0
    ratio = (float(points[NOSE_TIP, 0]) - left_x) / (right_x - left_x)
    return math.degrees(math.asin(max(-1.0, min(1.0, 2 * ratio - 1))))


def _eye_openness(points: npt.NDArray[np.float32], eye: tuple[int, int, int, int]) -> float:
    outer, inner, upper, lower = eye
    width = float(np.hypot(*(points[outer, :2] - points[inner, :2])))
    gap = float(np.hypot(*(points[upper, :2] - points[lower, :2])))
    return gap / width if width > 0 else 0.0


# Mesh points of the lips and the cheeks (mediapipe's face-mesh topology).
OUTER_LIPS = [
    61,
    185,
    40,
    39,
    37,
    0,
    267,
    269,
    270,
    409,
    291,
    375,
    321,
    405,
    314,
    17,
    84,
    181,
    91,
    146,
]
LOWER_FACE = [57, 287, 422, 430, 394, 395, 369, 396, 175, 171, 140, 170, 169, 210, 202, 212]
LEFT_CHEEK_PATCH = [50, 101, 118, 117, 123, 147, 187, 205]
RIGHT_CHEEK_PATCH = [280, 330, 347, 346, 352, 376, 411, 425]
INNER_LIP_TOP, INNER_LIP_BOTTOM = 13, 14


def _mouth_and_eyes(face: Face) -> list[Finding]:
    points = face.landmarks
    found = []
    height = float(np.hypot(*(points[CHIN, :2] - points[FOREHEAD, :2])))
    if height > 0:
        gap = float(np.hypot(*(points[INNER_LIP_TOP, :2] - points[INNER_LIP_BOTTOM, :2])))
        if gap / height > MOUTH_OPEN_MAX:
            found.append(finding("mouth_open", gap / height, MOUTH_OPEN_MAX))
    # Both eyes' first two points run from image left to image right
    # (LEFT_EYE outer to inner, RIGHT_EYE inner to outer), so the offsets add.
    gaze = (
        _iris_offset(points, LEFT_EYE, LEFT_IRIS) + _iris_offset(points, RIGHT_EYE, RIGHT_IRIS)
    ) / 2
    yaw = _yaw(points)
    with_head = abs(yaw) < GAZE_FRONTAL_YAW or gaze * yaw > 0
    limit = GAZE_OFF_MAX if with_head else GAZE_BACK_MAX
    if abs(gaze) > limit:
        found.append(finding("eyes_off_camera", abs(gaze), limit))
    return found


def _iris_offset(
    points: npt.NDArray[np.float32], eye: tuple[int, int, int, int], iris: int
) -> float:
    """Where the iris lies between the eye's first two points, -0.5..0.5 (0: in the middle)."""
    outer, inner = points[eye[0], :2], points[eye[1], :2]
    line = inner - outer
    length = float(line @ line)
    if length <= 0:
        return 0.0
    return float((points[iris, :2] - outer) @ line) / length - 0.5


def _covered(pixels: Pixels, face: Face, repairs_crop: bool) -> list[Finding]:
    points = face.landmarks[:, :2]
    height, width = pixels.shape[:2]
    x0, y0 = (max(0, int(v)) for v in points.min(axis=0))
    x1, y1 = (
        min(limit, math.ceil(v) + 1)
        for v, limit in zip(points.max(axis=0), (width, height), strict=True)
    )
    if x1 - x0 < 16 or y1 - y0 < 16:
        return []
    lab = np.asarray(
        cv2.cvtColor(np.ascontiguousarray(pixels[y0:y1, x0:x1]), cv2.COLOR_RGB2LAB), np.float32
    )
    local = points - (x0, y0)

    def region(indices: list[int]) -> npt.NDArray[np.bool_]:
        mask = np.zeros(lab.shape[:2], np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(local[indices].astype(np.int32)), (1,))
        return mask > 0

    lips = np.zeros(lab.shape[:2], np.uint8)
    cv2.fillPoly(lips, [local[OUTER_LIPS].astype(np.int32)], (1,))
    chin = region(LOWER_FACE) & (lips == 0)
    cheeks = region(LEFT_CHEEK_PATCH) | region(RIGHT_CHEEK_PATCH)
    if chin.sum() < 32 or cheeks.sum() < 32:
        return []
    skin = np.median(lab[cheeks], axis=0)
    below = np.median(lab[chin], axis=0)
    # OpenCV's 8-bit Lab: L scaled to 0-255, a and b offset by 128.
    if math.hypot(skin[1] - 128, skin[2] - 128) < GREY_CHROMA:
        return []  # a grey photo: colour says nothing
    darker = float(skin[0] - below[0])
    distance = math.hypot(float(below[1] - skin[1]), float(below[2] - skin[2]))
    if darker > COVERED_DARKER and distance > COVERED_MIN:
        return [_for_engine("face_covered", distance, COVERED_MIN, repairs_crop)]
    return []


def _other_person(people: npt.NDArray[np.float32], face: Face) -> list[Finding]:
    """Person beside the sitter's head, reaching the left or right edge.

    Looked for in the rows of the face only: below them the sitter's own
    shoulders fill the width, and a neighbour's shoulder joins them. In
    those rows a patch of person that touches a side edge is counted only
    where it lies more than OTHER_PERSON_GAP face widths beside the face,
    further than the sitter's own head and hair reach.
    """
    certain = people > OTHER_PERSON_PROBABILITY
    height, width = certain.shape
    box = face.mesh_box
    top, bottom = max(0, int(box.top)), min(height, math.ceil(box.bottom))
    if bottom - top < 8:
        return []
    rows = np.ascontiguousarray(certain[top:bottom]).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(rows, connectivity=8)
    columns = np.arange(width)
    gap = OTHER_PERSON_GAP * box.width
    beside = (columns < box.left - gap) | (columns > box.right + gap)
    largest = 0.0
    for index in range(1, count):
        left, _, patch_width, _, _ = stats[index]
        if left == 0 or left + patch_width == width:
            area = int(((labels == index) & beside[None, :]).sum())
            largest = max(largest, area / rows.size)
    if largest > OTHER_PERSON_MIN:
        return [finding("other_person", largest, OTHER_PERSON_MIN)]
    return []


def _cut_at_side(people: npt.NDArray[np.float32], face: Face) -> list[Finding]:
    """Whether the studio engine's closest frame still leaves the photo where the person is.

    The engine's own framing (imaging.framing) at its closest: where it
    reaches past a side of the photo that the body touches, the shoulder
    would fade out there. The value is the share of the frame's rows in
    which the person touches that side.
    """
    subject = subject_of(face, people)
    framing = frame(subject, HEAD_MAX, STUDIO_SIZE)
    height, width = people.shape
    inverse = cv2.invertAffineTransform(framing.matrix)
    corners = [
        inverse @ np.array([x, y, 1.0]) for x in (0, STUDIO_SIZE[0]) for y in (0, STUDIO_SIZE[1])
    ]
    top, bottom = min(c[1] for c in corners), max(c[1] for c in corners)
    rows = slice(max(0, int(top)), min(height, math.ceil(bottom)))
    cut = 0.0
    if "left" in framing.fades and subject.touches_left:
        cut = max(cut, float((people[rows, 0] > 0.5).mean()))
    if "right" in framing.fades and subject.touches_right:
        cut = max(cut, float((people[rows, width - 1] > 0.5).mean()))
    if cut > CUT_AT_SIDE_MIN:
        return [finding("cut_at_side", cut, CUT_AT_SIDE_MIN)]
    return []
