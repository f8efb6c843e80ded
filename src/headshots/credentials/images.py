"""Where the service signs: each preview and each clean PNG as it is stored or served.

jobs.tasks calls :func:`sign_preview` and :func:`sign_final_png`; web.responses
calls :func:`downloadable_png`. Each is one call, so the job code stays
about jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from headshots.config import Settings
from headshots.credentials.manifest import Facts, made_by
from headshots.credentials.signing import sign_jpeg, sign_png, signer_for
from headshots.engines.base import declared
from headshots.imaging.codecs import PNG_SIGNATURE, clean_png
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


def facts_of(settings: Settings, order: Order, variation: Variation) -> Facts:
    """What made a stored variation (read inside the caller's transaction)."""
    return facts(settings, order.engine, variation.style, variation.details)
