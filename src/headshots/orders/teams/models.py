"""The team tables: a team, the members who joined it, the pictures they picked.

A team row is kept after the team ends as a tombstone (id, timestamps,
seats, amount paid), like an order's. Members' display names go when the
team ends; a pick's row goes with its key and its blob.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from headshots.orders.models import Base, DataKey, utcnow


class TeamStatus(enum.StrEnum):
    OPEN = "open"  # members may join once it is paid
    ENDED = "ended"  # the organiser ended it: picks shredded
    EXPIRED = "expired"  # its days ran out: picks shredded by the sweep


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # SHA-256 of the organiser's bearer token, shown once.
    admin_token_hash: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the invite code, which is looked up by it.
    invite_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(80))
    tier: Mapped[str] = mapped_column(String(32))
    styles: Mapped[list[str]] = mapped_column(default=list)
    # A backdrops.parse_backdrop name or #RRGGBB; None keeps each style's own.
    backdrop: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=TeamStatus.OPEN)
    seats: Mapped[int] = mapped_column(Integer)
    # Only ever changed by one conditional UPDATE each (service.claim_seat,
    # service.revoke_seats), so concurrent joins never overfill the team.
    seats_used: Mapped[int] = mapped_column(Integer, default=0)
    seats_revoked: Mapped[int] = mapped_column(Integer, default=0)
    seat_price_cents: Mapped[int] = mapped_column(Integer)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    ended_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    amount_paid_cents: Mapped[int | None] = mapped_column(Integer)
    payment_provider: Mapped[str | None] = mapped_column(String(16))
    checkout_session_id: Mapped[str | None] = mapped_column(String(255), index=True)

    members: Mapped[list[Member]] = relationship(
        back_populates="team", order_by="Member.joined_at", cascade="all, delete-orphan"
    )
    picks: Mapped[list[Pick]] = relationship(
        back_populates="team", order_by="Pick.created_at", cascade="all, delete-orphan"
    )

    @property
    def is_paid(self) -> bool:
        return self.paid_at is not None

    @property
    def has_ended(self) -> bool:
        return self.status != TeamStatus.OPEN


class Member(Base):
    """One used seat: the order a member made through the invite link."""

    __tablename__ = "team_members"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    # The member's order; it stays a tombstone row after its 24 hours.
    order_id: Mapped[str] = mapped_column(String(32), unique=True)
    # What the member chose to be called in the organiser's view; cleared
    # when the team ends.
    display_name: Mapped[str | None] = mapped_column(String(80))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)

    team: Mapped[Team] = relationship(back_populates="members")
    picks: Mapped[list[Pick]] = relationship(back_populates="member", order_by="Pick.created_at")


class Pick(Base):
    """A copy of one final headshot a member handed to the organiser.

    Sealed under a data key of its own (owner id = the pick's id), so each
    of its ends is a crypto-shred: the key row goes, then the blob.
    """

    __tablename__ = "team_picks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    team_id: Mapped[str] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[str] = mapped_column(
        ForeignKey("team_members.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    variation_id: Mapped[str] = mapped_column(String(32), unique=True)
    style: Mapped[str] = mapped_column(String(32))
    index: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # At most 14 days after the pick, and never after the team's end.
    expires_at: Mapped[datetime] = mapped_column(index=True)

    team: Mapped[Team] = relationship(back_populates="picks")
    member: Mapped[Member] = relationship(back_populates="picks")
    data_key: Mapped[DataKey | None] = relationship(
        primaryjoin="Pick.id == foreign(DataKey.owner_id)",
        overlaps="data_key",
        cascade="all, delete-orphan",
        single_parent=True,
    )

    @property
    def wrapped_key(self) -> bytes | None:
        return self.data_key.wrapped_key if self.data_key is not None else None

    @wrapped_key.setter
    def wrapped_key(self, value: bytes | None) -> None:
        _ = self.data_key
        self.data_key = DataKey(wrapped_key=value) if value is not None else None
