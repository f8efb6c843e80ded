"""Database records.

The database is the source of truth for every order and variation; the job
queue only delivers work. After an order expires or is deleted only its
tombstone remains: id, timestamps, tier and amount paid.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite has no zones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


class OrderStatus(enum.StrEnum):
    QUEUED = "queued"  # variations waiting or running
    READY = "ready"  # every variation finished (some may have failed)
    EXPIRED = "expired"  # tombstone: shredded at expires_at
    DELETED = "deleted"  # tombstone: shredded at the person's request


class VariationStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    # The image and its preview are stored and the preview can be shown; the
    # identity check and the final PNG are still being made.
    FINISHING = "finishing"
    DONE = "done"
    FAILED = "failed"


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # SHA-256 of the access token; the token itself is shown once.
    token_hash: Mapped[str | None] = mapped_column(String(64))
    tier: Mapped[str] = mapped_column(String(32))
    styles: Mapped[list[str]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.QUEUED)
    engine: Mapped[str] = mapped_column(String(32))
    # The backdrop chosen for every style: a name or "#RRGGBB"; None: each
    # style's own (headshots.backdrops).
    backdrop: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    shredded_at: Mapped[datetime | None]
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    paid_at: Mapped[datetime | None]
    amount_paid_cents: Mapped[int | None] = mapped_column(Integer)
    payment_provider: Mapped[str | None] = mapped_column(String(16))
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), index=True)
    # Preflight findings shown before payment (codes and measurements only).
    preflight: Mapped[list[Any] | None] = mapped_column(JSON)
    # Variations the person may still have made again (orders.redo): set
    # from HEADSHOTS_REDOS_PER_ORDER when the order is made.
    redos_left: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    variations: Mapped[list[Variation]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        order_by="(Variation.style_position, Variation.index)",
    )
    # The order's data key, wrapped by the master key, in a table of its own
    # (see DataKey). Setting wrapped_key to None is the crypto-shred.
    data_key: Mapped[DataKey | None] = relationship(
        primaryjoin="Order.id == foreign(DataKey.owner_id)",
        cascade="all, delete-orphan",
        single_parent=True,
    )

    @property
    def wrapped_key(self) -> bytes | None:
        return self.data_key.wrapped_key if self.data_key is not None else None

    @wrapped_key.setter
    def wrapped_key(self, value: bytes | None) -> None:
        # Load the current key first, so that replacing it deletes its row.
        _ = self.data_key
        self.data_key = DataKey(wrapped_key=value) if value is not None else None

    @property
    def is_tombstone(self) -> bool:
        return self.status in (OrderStatus.EXPIRED, OrderStatus.DELETED)

    @property
    def is_paid(self) -> bool:
        return self.paid_at is not None


class DataKey(Base):
    """A data key (an order's or a draft's), wrapped by the master key.

    Kept apart from the rows that describe orders, in a table that holds
    nothing else, so that deleting one can be made to reach every file of
    the database at once: see orders.scrubbing and docs/decisions/0012.
    """

    __tablename__ = "data_keys"

    # The id of the order or draft whose blobs the key encrypts.
    owner_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


# Variations whose preview can be shown (and, once paid, downloaded).
SHOWABLE = (VariationStatus.FINISHING, VariationStatus.DONE)


class Variation(Base):
    __tablename__ = "variations"
    __table_args__ = (UniqueConstraint("order_id", "style", "index"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    style: Mapped[str] = mapped_column(String(32))
    # Position of the style in the order, so variations list in chosen order.
    style_position: Mapped[int] = mapped_column(Integer)
    index: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=VariationStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # A worker holds a variation until this time; past it, the sweep
    # re-enqueues the variation (the worker may have died).
    lease_until: Mapped[datetime | None]
    # Which process holds the lease ("host:pid:random"), so a process that
    # restarts can release its dead predecessor's work at once.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    identity_distance: Mapped[float | None] = mapped_column(Float)
    identity_flag: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    image_blob: Mapped[str | None] = mapped_column(String(64))
    preview_blob: Mapped[str | None] = mapped_column(String(64))
    # The person's mark: the favourites-only zip holds these.
    favourite: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The seed of a redo under way (orders.redo), None when none is: the
    # image made before stays shown until the redo's image replaces it.
    redo_seed: Mapped[int | None] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="variations")

    @property
    def showable(self) -> bool:
        """Its preview can be shown: made, or kept while it is made again."""
        kept = self.redo_seed is not None and self.preview_blob is not None
        return self.status in SHOWABLE or kept


class PaymentRecord(Base):
    """Every payment notification applied, keyed by the provider's event id."""

    __tablename__ = "payment_events"

    event_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the money arrived for an order that no longer exists: the
    # operator refunds it; the order is never revived.
    needs_refund: Mapped[bool] = mapped_column(default=False)


class Tick(Base):
    """Last run of each periodic task, so one tick runs once across consumers."""

    __tablename__ = "ticks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_run: Mapped[datetime]
