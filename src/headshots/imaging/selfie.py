"""The prepared selfie: intake plus face analysis, done once per upload."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from PIL import Image

from headshots.config import Settings
from headshots.errors import HeadshotsError
from headshots.imaging.faces import Face, FloatArray, find_upright_face, segment_person
from headshots.imaging.intake import Photo, read_photo
from headshots.imaging.preflight import PreflightReport, head_cut_off, preflight

if TYPE_CHECKING:
    from headshots.imaging.identity import FaceDescriptor

T = TypeVar("T")


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
    preflight: PreflightReport | None = None
    _mask: FloatArray | None = field(default=None, repr=False)
    _descriptor: FaceDescriptor | None = field(default=None, repr=False)
    _shared: dict[Hashable, Any] = field(default_factory=dict, repr=False)
    _making: dict[Hashable, threading.Lock] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def shared(self, key: Hashable, make: Callable[[], T]) -> T:
        """Work every seed of a style can reuse (an engine's cut-out), made once.

        It lives as long as the selfie: the seeds of a style arrive as
        separate calls, and only the first should pay for it.
        """
        with self._lock:
            if key in self._shared:
                return cast(T, self._shared[key])
            making = self._making.setdefault(key, threading.Lock())
        with making:
            with self._lock:
                if key in self._shared:
                    return cast(T, self._shared[key])
            value = make()
            with self._lock:
                self._shared[key] = value
                self._making.pop(key, None)
            return value

    @property
    def person_mask(self) -> FloatArray:
        with self._lock:
            if self._mask is None:
                self._mask = segment_person(self.image)
            return self._mask

    @property
    def cropped_tightly(self) -> bool:
        """The frame cuts the head off: a generative engine is asked to complete it."""
        return head_cut_off(self.face, *self.image.size)

    @property
    def descriptor(self) -> FaceDescriptor:
        """The identity descriptor every output is scored against, computed once."""
        return self.described()

    def described(
        self, describe: Callable[[Image.Image], FaceDescriptor] | None = None
    ) -> FaceDescriptor:
        """The descriptor, computed once by ``describe`` (identity.describe, here, by default).

        A service passes its scoring processes' own (imaging.scoring).
        """
        from headshots.imaging.identity import describe as describe_here

        with self._lock:
            if self._descriptor is None:
                self._descriptor = (describe or describe_here)(self.image)
            return self._descriptor


def prepare_photo(photo: Photo) -> PreparedSelfie:
    image, face = find_upright_face(photo.image)
    return PreparedSelfie(
        image=image,
        face=face,
        source_format=photo.source_format,
        source_size=photo.source_size,
    )


class SelfieRefused(HeadshotsError):
    """The preflight found something no engine can work with."""

    status_code = 422
    code = "selfie_refused"


def prepare_selfie(
    data: bytes, settings: Settings, *, repairs_crop: bool = False
) -> PreparedSelfie:
    """Intake, face analysis and the preflight, as every upload goes through them.

    The typed errors of intake and face analysis pass through; a hard
    preflight finding (face cut off, too small) refuses with its sentence.
    ``repairs_crop`` is the capability of the engine that will make the
    headshots (``engines.base.engine_repairs_crop``).
    The report (``selfie.preflight``) keeps the warnings for the person to
    read before paying.
    """
    photo = read_photo(
        data,
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        working_size=settings.working_size,
    )
    selfie = prepare_photo(photo)
    report = preflight(selfie.image, selfie.face, repairs_crop=repairs_crop)
    if not report.ok:
        first = report.errors[0]
        raise SelfieRefused(first.sentence, code=first.code)
    selfie.preflight = report
    return selfie
