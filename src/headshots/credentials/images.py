"""Where the service signs: each preview and each clean PNG as it is stored or served.

jobs.storing calls :func:`sign_preview` and jobs.tasks :func:`sign_final_png`;
web.responses calls :func:`downloadable_png`, :func:`shaped_png` (a square or
round download) and :func:`clean_preview` (a paid order's previews). Each is
one call, so the job and web code stay about jobs and answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headshots.config import Settings
from headshots.credentials.manifest import Facts, made_by
from headshots.credentials.signing import sign_jpeg, sign_png, signer_for
from headshots.engines.base import declared
from headshots.imaging import formats, watermark
from headshots.imaging.codecs import PNG_SIGNATURE, clean_png, decode_image, encode_png
from headshots.imaging.faces import Box
from headshots.imaging.formats import Format
from headshots.orders.db import transaction
from headshots.orders.models import Order, Variation


def facts(settings: Settings, engine: str, style: str, details: Mapping[str, Any]) -> Facts:
    # The engine's class says whether it is generative; nothing is built.
    generative = declared(settings, engine).generative
    return made_by(engine, style, details, generative=generative)


def sign_preview(
    settings: Settings, engine: str, style: str, details: Mapping[str, Any], jpeg: bytes
) -> bytes:
    """The watermarked preview JPEG, marked and signed."""
    return sign_jpeg(signer_for(settings), facts(settings, engine, style, details), jpeg)


def sign_final_png(
    settings: Settings, sessions: sessionmaker[Session], variation_id: str, png: bytes
) -> bytes:
    """A variation's final PNG, marked and signed with what its row says made it."""
    with transaction(sessions) as session:
        variation = session.get(Variation, variation_id)
        if variation is None:  # shredded meanwhile: the caller's check drops it
            return png
        made = facts_of(settings, variation.order, variation)
    return sign_png(signer_for(settings), made, png)


def downloadable_png(settings: Settings, made: Facts, stored: bytes) -> bytes:
    """The clean PNG a person downloads.

    A final PNG was signed when stored. Raw pixels (a download before the
    variation is finished) are encoded and signed now.
    """
    if stored.startswith(PNG_SIGNATURE):
        return stored
    return sign_png(signer_for(settings), made, clean_png(stored))


def shaped_png(
    settings: Settings, made: Facts, stored: bytes, wanted: Format, face: Box | None
) -> bytes:
    """A download in another shape (square, round): cut from the final image, signed the same."""
    if wanted is Format.PORTRAIT:
        return downloadable_png(settings, made, stored)
    shaped = formats.shaped(decode_image(stored), wanted, face)
    return sign_png(signer_for(settings), made, encode_png(shaped))


def clean_preview(settings: Settings, made: Facts, stored: bytes, max_side: int) -> bytes:
    """The preview of a paid order: the final image at preview size, no mark, signed."""
    jpeg = watermark.preview_jpeg(decode_image(stored), max_side=max_side)
    return sign_jpeg(signer_for(settings), made, jpeg)


def facts_of(settings: Settings, order: Order, variation: Variation) -> Facts:
    """What made a stored variation (read inside the caller's transaction)."""
    return facts(settings, order.engine, variation.style, variation.details)
