"""Where one style job's images and the records of its variations go.

The job (jobs.tasks) decides; this writes. An image goes to the order's
store, sealed with the order's key, twice: as a watermarked, signed preview
the moment it arrives and as raw pixels right behind it (a preview waits
for no 4 MB write). Each step of a variation is recorded in its own
transaction while the job's claim on it stands (orders.variations), and
what was recorded is handed back for the job to act on.

A file written after its order was shredded would stay, so every write
first looks whether the job was told to stop, and a store that says the
order is gone stops the job too (:class:`Stopped`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import wait
from typing import Any, TypeVar

from PIL import Image

from headshots.credentials import images as credentials
from headshots.engines.base import Failed, Rendered
from headshots.imaging import codecs
from headshots.imaging.formats import recorded_face
from headshots.imaging.identity import IdentityScore
from headshots.imaging.intake import Photo
from headshots.imaging.selfie import PreparedSelfie, prepare_photo
from headshots.imaging.watermark import watermarked_preview
from headshots.orders import service, variations
from headshots.orders.db import transaction
from headshots.orders.variations import Claim, Recorded
from headshots.runtime import Runtime
from headshots.storage.base import OrderDeleted

_T = TypeVar("_T")


class Stopped(Exception):
    """The order was shredded while this job worked on it."""


class StyleStore:
    """The reads and writes of one job, all of one order."""

    def __init__(self, runtime: Runtime, claim: Claim, stop: threading.Event) -> None:
        self.runtime = runtime
        self.order_id = claim.order_id
        self.wrapped_key = claim.wrapped_key
        self.stop = stop

    def selfie(self) -> PreparedSelfie:
        stored = self.runtime.blobs.get(self.order_id, self.wrapped_key, service.SELFIE_BLOB)
        image = codecs.decode_image(stored)
        return prepare_photo(Photo(image=image, source_format="PNG", source_size=image.size))

    def image(self, claim: Claim) -> Image.Image:
        """The stored image of a variation; BlobNotFound if it never was."""
        stored = self.runtime.blobs.get(self.order_id, self.wrapped_key, claim.image_blob)
        return codecs.decode_image(stored)

    def failed(self, claim: Claim, outcome: Failed, seconds: float) -> Recorded:
        with transaction(self.runtime.sessions) as session:
            return variations.failed(
                session,
                claim,
                code=outcome.code,
                reason=outcome.reason,
                seconds=seconds or outcome.seconds,
                details=outcome.details,
            )

    def shown(self, claim: Claim, outcome: Rendered, seconds: float) -> Recorded:
        """Store an arrived image's preview and record it: from then on it shows.

        Its raw pixels follow (:meth:`pixels`). A worker that dies between
        the two leaves a variation whose image is lost, and the next claim
        renders it again.
        """
        self._put(claim.preview_blob, self._preview(claim, outcome))
        with transaction(self.runtime.sessions) as session:
            return variations.preview_stored(
                session, claim, seed=outcome.seed, seconds=seconds, details=outcome.details
            )

    def pixels(self, claim: Claim, image: Image.Image) -> None:
        self._put(claim.image_blob, codecs.encode_pixels(image))

    def replaced(self, claim: Claim, better: Rendered, paid_usd: float) -> Recorded:
        """A better try's preview and raw pixels over the first's, under the same names.

        ``paid_usd``: what the re-rolls since the last record cost, this one too.
        """
        self._put(claim.preview_blob, self._preview(claim, better))
        self.pixels(claim, better.image)
        with transaction(self.runtime.sessions) as session:
            return variations.replaced(
                session, claim, seed=better.seed, details=better.details, paid_usd=paid_usd
            )

    def rerolling(self, claim: Claim, identity: IdentityScore) -> Recorded:
        with transaction(self.runtime.sessions) as session:
            return variations.rerolling(
                session, claim, distance=identity.distance, flag=identity.flag
            )

    def image_lost(self, claim: Claim) -> Recorded:
        with transaction(self.runtime.sessions) as session:
            return variations.image_lost(session, claim)

    def done(
        self,
        claim: Claim,
        identity: IdentityScore | None,
        details: dict[str, Any],
        paid_usd: float = 0.0,
    ) -> Recorded:
        with transaction(self.runtime.sessions) as session:
            return variations.done(
                session,
                claim,
                distance=identity.distance if identity else None,
                flag=identity.flag if identity else None,
                scored=identity is not None,
                details=details,
                paid_usd=paid_usd,
            )

    def side_by_side(self, step: Callable[..., _T], items: list[tuple[Any, ...]]) -> list[_T]:
        """``step`` for each item, several at once: its results, in order.

        Encoding a preview, sealing and writing (to a bucket, too) mostly wait
        or run outside the GIL: several images at once show sooner.
        """
        if len(items) <= 1:
            return [step(*item) for item in items]
        running = [self.runtime.storing.submit(step, *item) for item in items]
        # All of them end before the job goes on or stops: a write still
        # under way after the job deleted its order's files would stay.
        wait(running)
        return [done.result() for done in running]

    def _preview(self, claim: Claim, made: Rendered) -> bytes:
        """The watermarked, signed preview of an image."""
        # The mark thins over the face the engine says it placed (decision 0016).
        preview = watermarked_preview(
            made.image,
            max_side=self.runtime.settings.preview_max,
            face=recorded_face(made.details),
        )
        return credentials.sign_preview(
            self.runtime.settings, claim.engine_name, claim.style_id, made.details, preview
        )

    def _put(self, name: str, data: bytes) -> None:
        if self.stop.is_set():
            raise Stopped()
        try:
            self.runtime.blobs.put(self.order_id, self.wrapped_key, name, data)
        except OrderDeleted:
            raise Stopped() from None
