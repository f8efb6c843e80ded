"""Drafts: a checked selfie waiting for the person to pick a tier and styles.

The pages run the preflight right after upload, before anything is chosen,
so the prepared selfie has to wait somewhere. It waits here: encrypted with
its own data key (like an order's blobs), reachable only with the draft's
token, and gone after an hour at most. Turning a draft into an order moves
the selfie under the order's key and shreds the draft.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from headshots.backdrops import Backdrop
from headshots.config import Settings
from headshots.errors import HeadshotsError
from headshots.imaging.codecs import encode_png
from headshots.imaging.selfie import PreparedSelfie
from headshots.orders import ids, service, shredding
from headshots.orders.models import Base, DataKey, utcnow
from headshots.storage.vault import EncryptedBlobs
from headshots.tiers import Tier, choose

# Long enough to read the findings and choose; short enough that an
# abandoned upload does not linger. The sweep deletes drafts past this.
DRAFT_LIFETIME = timedelta(hours=1)


class DraftGone(HeadshotsError):
    status_code = 410
    code = "draft_gone"
    message = (
        "This upload is no longer here: an unused photo is deleted after an hour. "
        "Upload your photo again to continue."
    )


class Draft(Base):
    __tablename__ = "drafts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    # Preflight warnings (codes, measurements, sentences): nothing of the photo.
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # The draft's data key, apart like an order's (see models.DataKey).
    data_key: Mapped[DataKey | None] = relationship(
        primaryjoin="Draft.id == foreign(DataKey.owner_id)",
        # Orders and drafts share the table; an id belongs to one or the other.
        overlaps="data_key",
        cascade="all, delete-orphan",
        single_parent=True,
    )

    @property
    def wrapped_key(self) -> bytes:
        if self.data_key is None:
            raise DraftGone()
        return self.data_key.wrapped_key

    @wrapped_key.setter
    def wrapped_key(self, value: bytes) -> None:
        self.data_key = DataKey(wrapped_key=value)


@dataclass(frozen=True)
class NewDraft:
    draft: Draft
    token: str


def create_draft(
    session: Session, blobs: EncryptedBlobs, settings: Settings, selfie: PreparedSelfie
) -> NewDraft:
    """Store a prepared selfie, encrypted, until the person chooses."""
    draft_id = ids.new_id()
    token = ids.new_token()
    now = utcnow()
    wrapped_key = blobs.new_wrapped_key(draft_id)
    lifetime = min(DRAFT_LIFETIME, timedelta(hours=settings.retention_hours))
    draft = Draft(
        id=draft_id,
        token_hash=ids.hash_token(token),
        wrapped_key=wrapped_key,
        created_at=now,
        expires_at=now + lifetime,
        findings=[f.as_dict() for f in selfie.preflight.warnings] if selfie.preflight else [],
    )
    try:
        blobs.put(draft_id, wrapped_key, service.SELFIE_BLOB, encode_png(selfie.image))
        session.add(draft)
        session.flush()
    except BaseException:
        blobs.shred(draft_id)
        raise
    return NewDraft(draft=draft, token=token)


def open_draft(session: Session, draft_id: str, token: str | None) -> Draft:
    """The draft if ``token`` opens it and it has not expired."""
    if not token or not ids.is_order_id(draft_id):
        raise DraftGone()
    draft = session.get(Draft, draft_id)
    if not ids.token_opens(draft.token_hash if draft else None, token) or draft is None:
        raise DraftGone()
    if draft.expires_at <= utcnow():
        raise DraftGone()
    return draft


def draft_photo(blobs: EncryptedBlobs, draft: Draft) -> bytes:
    """The prepared selfie as PNG, decrypted (to show it back to its owner)."""
    return blobs.get(draft.id, draft.wrapped_key, service.SELFIE_BLOB)


def order_from_draft(
    session: Session,
    blobs: EncryptedBlobs,
    settings: Settings,
    tiers: tuple[Tier, ...],
    draft: Draft,
    *,
    tier_id: str,
    style_ids: list[str],
    engine: str,
    backdrop: Backdrop | None = None,
) -> service.NewOrder:
    """Turn a draft into an order; the draft is shredded in the same transaction.

    The order expires 24 hours (the retention) after the photo was uploaded,
    not after the choice, so the promise on the page holds from upload.
    """
    choose(tiers, tier_id, style_ids)  # refuse a bad choice before decrypting
    # The draft's PNG moves under the order's key as it is: it was checked at
    # upload, and decoding or analysing it again would change nothing.
    created = service.create_order(
        session,
        blobs,
        settings,
        tiers,
        selfie_png=draft_photo(blobs, draft),
        tier_id=tier_id,
        style_ids=style_ids,
        engine=engine,
        preflight=list(draft.findings) or None,
        backdrop=backdrop,
    )
    created.order.expires_at = min(
        created.order.expires_at, draft.created_at + timedelta(hours=settings.retention_hours)
    )
    discard_draft(session, blobs, draft)
    return created


def discard_draft(session: Session, blobs: EncryptedBlobs, draft: Draft) -> None:
    # The row (with the wrapped key) goes first: without it every copy of
    # the blob is unreadable, even one left behind by a failed delete.
    session.delete(draft)
    session.flush()
    shredding.delete_blobs(session, blobs, draft.id)


def sweep_drafts(session: Session, blobs: EncryptedBlobs, now: datetime | None = None) -> int:
    """Delete every draft past its lifetime; returns how many."""
    now = now or utcnow()
    expired = session.scalars(select(Draft).where(Draft.expires_at <= now)).all()
    for draft in expired:
        discard_draft(session, blobs, draft)
    return len(expired)
