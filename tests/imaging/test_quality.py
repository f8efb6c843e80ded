"""The picture checks, each pinned on an image made to fail it and on a real one that passes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from headshots.engines.studio import VARIATION_MIN_DISTANCE
from headshots.imaging import quality
from headshots.imaging.faces import find_one_face
from headshots.imaging.matting import weighted_blur

FIXTURES = Path(__file__).parents[1] / "fixtures"


def photo(name: str = "obama.jpg") -> np.ndarray:
    return np.ascontiguousarray(np.asarray(Image.open(FIXTURES / name).convert("RGB")))


def test_a_photo_with_its_last_rows_stretched_is_caught() -> None:
    """What the engine did before: the frame filled by repeating the photo's last row."""
    real = photo()
    height = real.shape[0]
    stretched = real.copy()
    stretched[int(height * 0.8) :] = real[int(height * 0.8) - 1]
    assert not quality.stretched(real)
    assert quality.stretched(stretched)
    # Turned a little, as the engine's levelling turns it, the streaks still show.
    matrix = cv2.getRotationMatrix2D((real.shape[1] / 2, height / 2), 3, 1.0)
    turned = cv2.warpAffine(stretched, matrix, (real.shape[1], height))
    assert quality.stretched(turned)


def test_stretching_sideways_is_caught_too() -> None:
    real = photo("grace_hopper.jpg")
    width = real.shape[1]
    stretched = real.copy()
    stretched[:, int(width * 0.85) :] = real[:, int(width * 0.85) - 1 : int(width * 0.85)]
    assert quality.stretched(stretched)


def test_smooth_backdrops_are_not_streaks() -> None:
    """A painted gradient with grain has rows alike, but no detail in them."""
    rows = np.linspace(60, 160, 1280, dtype=np.float32)[:, None, None]
    gradient = np.broadcast_to(rows, (1280, 1024, 3)).copy()
    gradient += np.random.default_rng(1).normal(0, 1.2, gradient.shape)
    assert not quality.stretched(np.clip(gradient, 0, 255).astype(np.uint8))


def _edge_case() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A bright photo's person and the photo's own background, near a disc's edge."""
    real = photo().astype(np.float32) / 255
    height, width = real.shape[:2]
    alpha = np.zeros((height, width), np.float32)
    cv2.circle(alpha, (width // 2, height // 2), height // 3, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    old = weighted_blur(real, (alpha < 0.01).astype(np.float32), height / 96)
    backdrop = np.full_like(real, 0.1)
    return real, alpha, old, backdrop


def test_a_ring_of_old_background_is_a_halo() -> None:
    real, alpha, old, backdrop = _edge_case()
    # Clean: the edge is a mix of the person's colour and the new backdrop.
    person = weighted_blur(real, (alpha > 0.99).astype(np.float32), 4)
    clean = person * alpha[..., None] + backdrop * (1 - alpha[..., None])
    # Haloed: the edge carries the old background, as a cut-out whose
    # colours were never decontaminated does.
    ring = ((alpha > 0.03) & (alpha < 0.97))[..., None]
    haloed = np.where(ring, 0.3 * clean + 0.7 * old, clean).astype(np.float32)
    assert quality.halo(clean.astype(np.float32), alpha, backdrop, old) < quality.HALO_LIMIT
    assert quality.halo(haloed, alpha, backdrop, old) > quality.HALO_LIMIT


def test_skin_moved_by_a_heavy_grade_is_caught() -> None:
    image = photo()
    face = find_one_face(image)
    assert quality.skin_delta_e(image, face.landmarks, image, face.landmarks) < 1e-6
    warm = np.clip(image.astype(np.float32) * (1.25, 1.0, 0.75), 0, 255).astype(np.uint8)
    assert quality.skin_delta_e(image, face.landmarks, warm, face.landmarks) > (
        quality.SKIN_DELTA_E_MAX
    )


def _framed(image: np.ndarray, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo as a headshot frames it: turned 3 degrees, enlarged, moved."""
    cx, cy = landmarks[:, :2].mean(0)
    matrix = cv2.getRotationMatrix2D((float(cx), float(cy)), 3, 1.6)
    matrix[:, 2] += (512 - cx, 520 - cy)
    output = cv2.warpAffine(image, matrix, (1024, 1280), flags=cv2.INTER_CUBIC)
    carried = landmarks.copy()
    carried[:, :2] = landmarks[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    return np.ascontiguousarray(output), carried


def test_skin_is_read_at_the_same_spots_when_the_mesh_is_read_differently() -> None:
    """A face the mesh reads unsteadily: found again in the headshot, its points land
    elsewhere (here the whole mesh a twelfth of the face up and aside, the patches
    on hair and at the face's edge). The skin has not moved, and the measure says so."""
    image = photo()
    face = find_one_face(image)
    output, true_points = _framed(image, face.landmarks)
    misread = true_points.copy()
    tall = float(np.hypot(*(true_points[152, :2] - true_points[10, :2])))
    misread[:, :2] += (0.08 * tall, -0.08 * tall)
    naive = float(
        np.linalg.norm(
            quality.skin_tone(output, misread) - quality.skin_tone(image, face.landmarks)
        )
    )
    assert naive > quality.SKIN_DELTA_E_MAX
    assert quality.skin_delta_e(image, face.landmarks, output, misread) < 1.0
    # A heavy grade on the same framing is still caught.
    warm = np.clip(output.astype(np.float32) * (1.25, 1.0, 0.75), 0, 255).astype(np.uint8)
    assert quality.skin_delta_e(image, face.landmarks, warm, misread) > quality.SKIN_DELTA_E_MAX


def test_another_face_is_not_matched_to_the_selfie() -> None:
    image, other = photo(), photo("biden.jpg")
    face, other_face = find_one_face(image), find_one_face(other)
    assert quality.matched_landmarks(image, face.landmarks, other, other_face.landmarks) is None


def test_near_copies_are_closer_than_distinct_variations() -> None:
    image = photo()
    shifted = np.roll(image, 3, axis=1)
    darker = (image * 0.8).astype(np.uint8)
    assert quality.variation_distance(image, shifted) < VARIATION_MIN_DISTANCE
    assert quality.variation_distance(image, darker) > VARIATION_MIN_DISTANCE
