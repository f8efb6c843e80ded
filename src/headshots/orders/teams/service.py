"""The team service: create, pay, join, watch, revoke a seat, end.

Functions take a Session and never commit, like the order service: the
request or job that calls them is the transaction. Refusals are typed and
carry their status: an unpaid team 402, no seat left 409, an ended or
expired team 410, each with a sentence for the member holding the link.

Seats are counted by one conditional UPDATE (:func:`claim_seat`), the first
statement of the joining transaction: PostgreSQL re-checks its condition
against the row a concurrent join just committed, and SQLite lets one
writer in at a time, so twenty members racing for ten seats get exactly
ten. A join that fails after its claim (the store, the database) rolls the
claim back with everything else: a refused upload uses no seat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from headshots.backdrops import parse_backdrop
from headshots.config import Settings
from headshots.engines.base import declared
from headshots.errors import HeadshotsError
from headshots.orders import ids, service
from headshots.orders.models import Order, OrderStatus, PaymentRecord, utcnow
from headshots.orders.payment_records import record_payment
from headshots.orders.teams.models import Member, Team, TeamStatus
from headshots.orders.teams.shredding import shred_old_picks, shred_picks
from headshots.payments.base import CheckoutRequest, PaymentApplied, PaymentEvent, Payments
from headshots.storage.vault import EncryptedBlobs
from headshots.styles import STYLE_IDS
from headshots.tiers import OrderChoiceError, Tier, choose

MAX_SEATS = 500
MAX_DAYS = 14
DEFAULT_DAYS = 7
MAX_NAME = 80
# The longest a pick is kept: it is the only image that outlives its order.
PICK_LIFETIME = timedelta(days=14)


class TeamNotFound(HeadshotsError):
    # One answer for "no such team" and "wrong token or code", as for orders.
    status_code = 404
    code = "not_found"
    message = "There is no team here, or your link is not valid for it."


class AdminTokenMissing(HeadshotsError):
    status_code = 401
    code = "unauthorized"
    message = "Send the team's admin token as 'Authorization: Bearer <token>'."
    headers: Mapping[str, str] = {"WWW-Authenticate": "Bearer"}


class TeamUnpaid(HeadshotsError):
    status_code = 402
    code = "team_unpaid"
    message = (
        "This team is not paid for yet, so no seat can be used. Ask the organiser to "
        "finish the payment, then open the invite link again."
    )


class TeamFull(HeadshotsError):
    status_code = 409
    code = "team_full"
    message = "Every seat of this team is taken. Ask the organiser for another seat."


class TeamGone(HeadshotsError):
    status_code = 410
    code = "team_gone"
    message = "This team has ended: its invite link no longer works."


class TeamAlreadyPaid(HeadshotsError):
    status_code = 409
    code = "already_paid"
    message = "This team is already paid: share the invite link with your members."


class NoSeatToRevoke(HeadshotsError):
    status_code = 409
    code = "no_open_seat"
    message = "There is no unused seat to revoke: a seat a member has used stays theirs."


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def invite_code_of(team_id: str, admin_token: str) -> str:
    """The team's invite code: derived from the admin token, telling nothing of it.

    So the organiser's page, which holds the admin token, can show the
    invite link again, while the database keeps only the code's hash.
    """
    mac = hmac.new(admin_token.encode(), b"headshots/team-invite\x00" + team_id.encode(), "sha256")
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


@dataclass(frozen=True)
class NewTeam:
    team: Team
    admin_token: str
    invite_code: str


def _clean_name(text: str | None, *, what: str, required: bool) -> str | None:
    """A name as a person typed it: trimmed, without control characters, bounded."""
    value = " ".join((text or "").split())
    if any(unicodedata.category(c).startswith("C") for c in value):
        raise OrderChoiceError(f"The {what} cannot contain control characters.")
    if not value:
        if required:
            raise OrderChoiceError(f"Give the {what}.")
        return None
    if len(value) > MAX_NAME:
        raise OrderChoiceError(f"The {what} can be at most {MAX_NAME} characters long.")
    return value


def team_choice(
    tiers: tuple[Tier, ...], tier_id: str | None, style_ids: list[str]
) -> tuple[Tier, list[str]]:
    """The tier whose price a seat costs, and the styles every member gets.

    Styles alone take the smallest tier that holds them; a tier alone gives
    its number of styles, first ones first (corporate, creative, ...).
    """
    if tier_id:
        tier = next((t for t in tiers if t.id == tier_id), None)
        if tier is not None and not style_ids:
            style_ids = list(STYLE_IDS[: tier.styles])
        return choose(tiers, tier_id, style_ids)
    if not style_ids:
        raise OrderChoiceError("Choose the styles every member gets, or a tier.")
    fitting = sorted(
        (t for t in tiers if t.styles >= len(style_ids)), key=lambda t: (t.styles, t.price_cents)
    )
    if not fitting:
        raise OrderChoiceError(
            f"No tier includes {len(style_ids)} styles; choose at most "
            f"{max(t.styles for t in tiers)}."
        )
    return choose(tiers, fitting[0].id, style_ids)


def seat_price(settings: Settings, tier: Tier) -> int:
    """One member's price: HEADSHOTS_TEAM_SEAT_PRICES for the tier, else the tier's own."""
    return settings.team_seat_prices.get(tier.id, tier.price_cents)


def create_team(
    session: Session,
    settings: Settings,
    tiers: tuple[Tier, ...],
    *,
    name: str,
    seats: int,
    style_ids: list[str],
    tier_id: str | None = None,
    backdrop: str | None = None,
    expires_in_days: int = DEFAULT_DAYS,
) -> NewTeam:
    team_name = _clean_name(name, what="team's name", required=True)
    assert team_name is not None
    if not 1 <= seats <= MAX_SEATS:
        raise OrderChoiceError(f"A team has 1 to {MAX_SEATS} seats, not {seats}.")
    if not 1 <= expires_in_days <= MAX_DAYS:
        raise OrderChoiceError(f"A team lasts 1 to {MAX_DAYS} days, not {expires_in_days}.")
    tier, style_ids = team_choice(tiers, tier_id, style_ids)
    try:
        chosen = parse_backdrop(backdrop)
    except ValueError as error:
        raise OrderChoiceError(str(error)) from None
    if chosen is not None and not declared(settings).takes_backdrop_colour:
        raise service.BackdropNotOffered()  # before the organiser pays
    team_id = ids.new_id()
    admin_token = secrets.token_urlsafe(32)
    invite_code = invite_code_of(team_id, admin_token)
    now = utcnow()
    price = seat_price(settings, tier)
    team = Team(
        id=team_id,
        admin_token_hash=_digest(admin_token),
        invite_hash=_digest(invite_code),
        name=team_name,
        tier=tier.id,
        styles=style_ids,
        backdrop=chosen.name if chosen else None,
        status=TeamStatus.OPEN,
        seats=seats,
        seats_used=0,
        seats_revoked=0,
        seat_price_cents=price,
        amount_cents=price * seats,
        currency=tier.currency,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days),
    )
    session.add(team)
    session.flush()
    return NewTeam(team=team, admin_token=admin_token, invite_code=invite_code)


def open_team(session: Session, team_id: str, token: str | None) -> Team:
    """The team if ``token`` is its admin token; 401 without one, 404 otherwise."""
    if not token:
        raise AdminTokenMissing()
    team = session.get(Team, team_id) if ids.is_order_id(team_id) else None
    if not ids.token_opens(team.admin_token_hash if team else None, token) or team is None:
        raise TeamNotFound()
    return team


def team_by_invite(session: Session, code: str) -> Team:
    """The team an invite code opens; 404 for any code that opens none."""
    if not code or len(code) > 64:
        raise TeamNotFound("This invite link is not valid. Check it with the organiser.")
    team = session.scalars(select(Team).where(Team.invite_hash == _digest(code))).first()
    if team is None:
        raise TeamNotFound("This invite link is not valid. Check it with the organiser.")
    return team


def refusal(team: Team, now: datetime | None = None) -> HeadshotsError | None:
    """Why a member cannot join ``team`` now; None when a seat can be taken."""
    now = now or utcnow()
    if team.status == TeamStatus.ENDED:
        return TeamGone("The organiser has ended this team: its invite link no longer works.")
    if team.status == TeamStatus.EXPIRED or team.expires_at <= now:
        return TeamGone("This team has expired: its invite link no longer works.")
    if not team.is_paid:
        return TeamUnpaid()
    if team.seats_used >= team.seats:
        return TeamFull()
    return None


def check_invite(session: Session, code: str) -> Team:
    """The team, if a member could join it now: checked before their photo is read."""
    team = team_by_invite(session, code)
    problem = refusal(team)
    if problem is not None:
        raise problem
    return team


def claim_seat(session: Session, code: str, now: datetime) -> Team:
    """Take one seat of the team the code opens, or raise why not.

    The UPDATE is the transaction's first statement, so on SQLite it waits
    for the write lock instead of failing on a stale snapshot, and on
    PostgreSQL a racing join's commit is seen before the condition is
    judged. Of any number of concurrent joins, at most the open seats win.
    """
    invite_hash = _digest(code)
    claimed = session.execute(
        update(Team)
        .where(
            Team.invite_hash == invite_hash,
            Team.status == TeamStatus.OPEN,
            Team.paid_at.is_not(None),
            Team.expires_at > now,
            Team.seats_used < Team.seats,
        )
        .values(seats_used=Team.seats_used + 1)
        .execution_options(synchronize_session=False)
    )
    team = team_by_invite(session, code)
    if not claimed.rowcount:  # type: ignore[attr-defined]
        session.refresh(team)
        raise refusal(team, now) or TeamFull()
    session.refresh(team)
    return team


@dataclass(frozen=True)
class Joined:
    created: service.NewOrder
    member: Member
    team: Team


def join(
    session: Session,
    blobs: EncryptedBlobs,
    settings: Settings,
    *,
    code: str,
    selfie_png: bytes,
    engine: str,
    display_name: str | None = None,
    preflight: list[dict[str, Any]] | None = None,
) -> Joined:
    """A member's order in the team's styles, prepaid by the team; one seat used.

    The order is the member's exactly as a person's own: its token, its 24
    hours, its DELETE. The organiser learns only the display name given and
    how far the order is.
    """
    name = _clean_name(display_name, what="display name", required=False)
    now = utcnow()
    team = claim_seat(session, code, now)
    # The team's price and styles, whatever the tiers are today.
    tier = Tier(team.tier, "Team", team.seat_price_cents, len(team.styles), team.currency)
    created = service.create_order(
        session,
        blobs,
        settings,
        (tier,),
        selfie_png=selfie_png,
        tier_id=tier.id,
        style_ids=list(team.styles),
        engine=engine,
        preflight=preflight,
        # The team's look: one backdrop for everyone (docs/decisions/0017).
        backdrop=parse_backdrop(team.backdrop),
    )
    order = created.order
    order.paid_at = now
    order.amount_paid_cents = team.seat_price_cents
    order.payment_provider = "team"
    member = Member(
        id=ids.new_id(), team_id=team.id, order_id=order.id, display_name=name, joined_at=now
    )
    session.add(member)
    session.flush()
    return Joined(created=created, member=member, team=team)


def member_of_order(session: Session, order_id: str) -> Member | None:
    return session.scalars(select(Member).where(Member.order_id == order_id)).first()


def open_checkout(
    session: Session,
    payments: Payments,
    team_id: str,
    token: str | None,
    *,
    base_url: str,
    page: str,
) -> str:
    """Open the provider's checkout for the team's seats; the URL to pay at.

    ``page`` is where the provider sends the organiser back to (the
    organiser's page, or the API's team address).
    """
    team = open_team(session, team_id, token)
    if team.is_paid:
        raise TeamAlreadyPaid()
    if team.has_ended:
        raise TeamGone()
    base = base_url.rstrip("/")
    opened = payments.create_checkout(
        CheckoutRequest(
            order_id=team.id,
            amount_cents=team.amount_cents,
            currency=team.currency,
            product_name=f"Team headshots ({len(team.styles)} styles per member)",
            success_url=f"{base}{page}?paid=1",
            cancel_url=f"{base}{page}?cancelled=1",
            quantity=team.seats,
        )
    )
    team.checkout_session_id = opened.session_id
    return opened.url


def apply_payment(session: Session, event: PaymentEvent) -> PaymentApplied | None:
    """Apply a verified payment for a team, once per event; None if it is not a team's.

    The only way a team becomes paid. A payment for a team that has ended
    is recorded for a refund, as for a shredded order.
    """
    team = session.get(Team, event.order_id) if ids.is_order_id(event.order_id) else None
    if team is None:
        return None
    if session.get(PaymentRecord, event.event_id) is not None:
        return PaymentApplied(team.id, unlocked=False, duplicate=True, needs_refund=False)
    # An ended team that was paid keeps its payment; an unpaid one is gone.
    live = None if team.has_ended and not team.is_paid else team
    return record_payment(session, event, team.id, live, what="team")


def revoke_seats(session: Session, team_id: str, token: str | None, count: int = 1) -> Team:
    """Take back unused seats: never one a member has used.

    Before payment the price shrinks with the seats; after it, the revoked
    seats are counted for the operator to refund (docs/decisions/0017).
    """
    team = open_team(session, team_id, token)
    if team.has_ended:
        raise TeamGone()
    if not 1 <= count <= MAX_SEATS:
        raise OrderChoiceError(f"Revoke 1 to {MAX_SEATS} seats, not {count}.")
    paid = team.is_paid
    values: dict[str, Any] = {"seats": Team.seats - count}
    if paid:
        values["seats_revoked"] = Team.seats_revoked + count
    else:
        values["amount_cents"] = (Team.seats - count) * Team.seat_price_cents
    # Conditional, like a join: a member joining meanwhile keeps their seat.
    claimed = session.execute(
        update(Team)
        .where(Team.id == team.id, Team.seats - count >= Team.seats_used, Team.seats > count)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        raise NoSeatToRevoke()
    session.refresh(team)
    return team


def end_team(
    session: Session, blobs: EncryptedBlobs, team: Team, status: TeamStatus = TeamStatus.ENDED
) -> list[str]:
    """End the team: every pick shredded, display names forgotten; the picks' ids.

    Members' orders are untouched: they stay theirs until their own 24
    hours end. Two ends at once end it once (the conditional UPDATE).
    """
    claimed = session.execute(
        update(Team)
        .where(Team.id == team.id, Team.status == TeamStatus.OPEN)
        .values(status=status, ended_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.refresh(team)
    if not claimed.rowcount:  # type: ignore[attr-defined]
        return []
    shredded = shred_picks(session, blobs, list(team.picks))
    for member in team.members:
        member.display_name = None
    session.flush()
    return shredded


def sweep_teams(session: Session, blobs: EncryptedBlobs, now: datetime | None = None) -> int:
    """End every team past its days and shred picks past theirs; how many picks went."""
    now = now or utcnow()
    expired = session.scalars(
        select(Team).where(Team.status == TeamStatus.OPEN, Team.expires_at <= now)
    ).all()
    shredded = 0
    for team in expired:
        shredded += len(end_team(session, blobs, team, TeamStatus.EXPIRED))
    return shredded + len(shred_old_picks(session, blobs, now))


# --- the organiser's view: no image, no member's token ------------------------------


@dataclass(frozen=True)
class MemberView:
    id: str
    display_name: str | None
    status: str  # uploaded, ready, picked, gone
    joined_at: datetime
    order_expires_at: datetime | None
    picks: list[tuple[str, str, int, datetime]]  # id, style, index, kept until


def members_of(session: Session, team: Team) -> list[MemberView]:
    orders = {
        order.id: order
        for order in session.scalars(
            select(Order).where(Order.id.in_([m.order_id for m in team.members]))
        )
    }
    views = []
    for member in team.members:
        order = orders.get(member.order_id)
        picks = [(p.id, p.style, p.index, p.expires_at) for p in member.picks]
        if picks:
            status = "picked"
        elif order is None or order.is_tombstone:
            status = "gone"
        elif order.status == OrderStatus.READY:
            status = "ready"
        else:
            status = "uploaded"
        alive = order is not None and not order.is_tombstone
        views.append(
            MemberView(
                id=member.id,
                display_name=member.display_name,
                status=status,
                joined_at=member.joined_at,
                order_expires_at=order.expires_at if alive and order else None,
                picks=picks,
            )
        )
    return views
