"""A person uploads a selfie and orders: the use cases the API and the pages share.

The API takes the photo and the choice in one request (:func:`order_from_upload`);
the pages take the photo first, show its preflight, and take the choice
after (:func:`draft_from_upload`, then :func:`order_from_draft`). Both
paths check the selfie for the engine that will make the order (decision
0008), record the order with that engine, and have its styles enqueued once
the order has committed (orders.effects).
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from headshots.backdrops import Backdrop
from headshots.config import Settings
from headshots.engines.base import declared, default_engine_name, engine_repairs_crop
from headshots.imaging.codecs import encode_png
from headshots.imaging.selfie import PreparedSelfie, prepare_selfie
from headshots.orders import drafts, service
from headshots.orders.db import transaction
from headshots.orders.effects import after_commit
from headshots.orders.teams.service import Joined, check_invite, join
from headshots.storage.vault import EncryptedBlobs
from headshots.tiers import Tier, choose


class Service(Protocol):
    """The parts of the running service that intake uses (the Runtime has them)."""

    settings: Settings
    sessions: sessionmaker[Session]
    blobs: EncryptedBlobs
    tiers: tuple[Tier, ...]


def order_from_upload(
    parts: Service,
    photo: bytes,
    *,
    tier_id: str,
    style_ids: list[str],
    backdrop: Backdrop | None = None,
) -> service.NewOrder:
    """Check a selfie and order at once; the new order and its token.

    A bad choice is refused before the photo is decoded.
    """
    choose(parts.tiers, tier_id, style_ids)
    _check_backdrop(parts.settings, backdrop)
    selfie = _prepare(parts.settings, photo)
    warnings = selfie.preflight.warnings if selfie.preflight else []
    with transaction(parts.sessions) as session:
        created = service.create_order(
            session,
            parts.blobs,
            parts.settings,
            parts.tiers,
            selfie_png=encode_png(selfie.image),
            tier_id=tier_id,
            style_ids=style_ids,
            engine=default_engine_name(parts.settings),
            preflight=[finding.as_dict() for finding in warnings],
            backdrop=backdrop,
        )
        # A worker in this process need not analyse the selfie again.
        after_commit(session).keep_selfie(created.order.id, selfie)
    return created


def order_for_team(parts: Service, photo: bytes, *, code: str, display_name: str | None) -> Joined:
    """A team member's order through the team's invite (orders.teams).

    The invite is checked before the photo is decoded, and the seat is
    taken in the transaction that records the order: a refused photo uses
    no seat.
    """
    with transaction(parts.sessions) as session:
        check_invite(session, code)
    selfie = _prepare(parts.settings, photo)
    warnings = selfie.preflight.warnings if selfie.preflight else []
    with transaction(parts.sessions) as session:
        joined = join(
            session,
            parts.blobs,
            parts.settings,
            code=code,
            selfie_png=encode_png(selfie.image),
            engine=default_engine_name(parts.settings),
            display_name=display_name,
            preflight=[finding.as_dict() for finding in warnings],
        )
        after_commit(session).keep_selfie(joined.created.order.id, selfie)
    return joined


def draft_from_upload(parts: Service, photo: bytes) -> drafts.NewDraft:
    """Check a selfie and keep it, encrypted, until its owner chooses."""
    selfie = _prepare(parts.settings, photo)
    with transaction(parts.sessions) as session:
        return drafts.create_draft(session, parts.blobs, parts.settings, selfie)


def order_from_draft(
    parts: Service,
    draft_id: str,
    token: str | None,
    *,
    tier_id: str,
    style_ids: list[str],
    backdrop: Backdrop | None = None,
) -> service.NewOrder:
    """Order from a checked selfie; the draft is gone once the order commits."""
    _check_backdrop(parts.settings, backdrop)
    with transaction(parts.sessions) as session:
        draft = drafts.open_draft(session, draft_id, token)
        return drafts.order_from_draft(
            session,
            parts.blobs,
            parts.settings,
            parts.tiers,
            draft,
            tier_id=tier_id,
            style_ids=style_ids,
            engine=default_engine_name(parts.settings),
            backdrop=backdrop,
        )


def _check_backdrop(settings: Settings, backdrop: Backdrop | None) -> None:
    """Refuse a colour the engine cannot paint before the photo is read or paid for."""
    if backdrop is not None and not declared(settings).takes_backdrop_colour:
        raise service.BackdropNotOffered()


def _prepare(settings: Settings, photo: bytes) -> PreparedSelfie:
    # The preflight judges for the order's engine (decision 0008).
    return prepare_selfie(photo, settings, repairs_crop=engine_repairs_crop(settings))
