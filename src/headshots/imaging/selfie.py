"""The prepared selfie: intake plus face analysis, done once per upload."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from PIL import Image

from headshots.config import Settings
from headshots.imaging.faces import Face, FloatArray, find_one_face, segment_person
from headshots.imaging.intake import Photo, read_photo

if TYPE_CHECKING:
    from headshots.imaging.identity import FaceDescriptor


@dataclass
class PreparedSelfie:
    """What every engine receives.

    ``image`` is clean sRGB at working size with no metadata; ``face`` is
    its one face. The person mask is computed on first use and kept, so the
    seeds and styles of one order share it.
    """

    image: Image.Image
    face: Face
    source_format: str = "JPEG"
    source_size: tuple[int, int] = (0, 0)
    _mask: FloatArray | None = field(default=None, repr=False)
    _descriptor: FaceDescriptor | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def person_mask(self) -> FloatArray:
        with self._lock:
            if self._mask is None:
                self._mask = segment_person(self.image)
            return self._mask

    @property
    def descriptor(self) -> FaceDescriptor:
        """The identity descriptor every output is scored against, computed once."""
        from headshots.imaging.identity import describe

        with self._lock:
            if self._descriptor is None:
                self._descriptor = describe(self.image)
            return self._descriptor


def prepare_photo(photo: Photo) -> PreparedSelfie:
    return PreparedSelfie(
        image=photo.image,
        face=find_one_face(photo.image),
        source_format=photo.source_format,
        source_size=photo.source_size,
    )


def prepare_selfie(data: bytes, settings: Settings) -> PreparedSelfie:
    """Intake and face analysis: the typed errors of both pass through."""
    photo = read_photo(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        working_size=settings.working_size,
    )
    return prepare_photo(photo)
